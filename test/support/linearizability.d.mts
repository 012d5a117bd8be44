/**
 * One recorded call of one client. Times are milliseconds comparable across processes
 * (the monotonic clock, `process.hrtime`).
 */
export interface Operation {
  /** Unique in the history. */
  readonly id: string;
  /** The client (process, or client within a process) that made the call. */
  readonly process: string;
  /** The operation name, e.g. `claim`. */
  readonly op: string;
  /** What was asked, as plain JSON. */
  readonly input: unknown;
  /** What came back, as plain JSON; absent while `pending`. */
  readonly output?: unknown;
  /**
   * The outcome is unknown: the process was killed before the call returned, or the call failed
   * in a way that leaves open whether it took effect. It may take effect any time after `call`, or
   * never.
   */
  readonly pending: boolean;
  /** Why the outcome is unknown, when the call threw. */
  readonly error?: string;
  /** When the call was made. */
  readonly call: number;
  /** When it returned (absent for a killed process). */
  readonly ret?: number;
}

/** One operation's part in one partition (an operation on several keys has one step per key). */
export interface Step<I = unknown, O = unknown> {
  /** Unique in its partition; names the operation it comes from. */
  readonly id: string;
  readonly process: string;
  /** The model's name for what the step does. */
  readonly kind: string;
  readonly input: I;
  /** `undefined` while pending. */
  readonly output: O | undefined;
  readonly pending: boolean;
  readonly call: number;
  /** `Infinity` while pending. */
  readonly ret: number;
  /**
   * Pending steps with the same symmetry class are interchangeable (same effect, no output): the
   * search tries only the earliest-called unplaced one, which loses no linearization.
   */
  readonly symmetry?: string;
  /** The recorded operation. */
  readonly source: Operation;
}

/** A sequential specification, split into independent partitions (P-compositionality). */
export interface Model<State> {
  /** Splits a history into independent partitions of steps. */
  partition(history: readonly Operation[]): Array<{ key: string; steps: Step[] }>;
  /** The state of a partition before any step. */
  init(key: string): State;
  /**
   * The states the step may lead to from `state` given its output; empty when the output is
   * impossible there. For a pending step: the states its possible effects lead to.
   */
  step(state: State, step: Step): State[];
  /** Equal for equal states (memoisation). */
  hash(state: State): string;
  /** Why `step` cannot happen in `state` (called only when `step` returned nothing). */
  explain(state: State, step: Step): string;
  describe(step: Step): string;
  describeState(state: State): string;
}

/** Options of {@link checkLinearizable}. */
export interface CheckOptions {
  /**
   * Real-time order is enforced only between operations further apart than this, to allow for the
   * error between different processes' clocks.
   * @default 0
   */
  readonly toleranceMs?: number;
  /**
   * Search states explored per partition before giving up (reported as a failure, never as a pass).
   * @default 2000000
   */
  readonly budget?: number;
  /**
   * Lines of the prefix shown per failure.
   * @default 60
   */
  readonly maxLines?: number;
}

/** Why a partition is not linearizable (or could not be checked). */
export interface PartitionFailure<State = unknown> {
  readonly key: string;
  /** Every step of the partition. */
  readonly steps: Step[];
  /** The longest linearizable prefix found, with the state after each step. */
  readonly prefix: Array<{ step: Step; state: State }>;
  /** The state after that prefix. */
  readonly state: State;
  /** The completed step with the earliest return among those not placed. */
  readonly blocking: Step | undefined;
  /** The completed steps that could have come next, with why each could not. */
  readonly candidates: Array<{ step: Step; reason: string }>;
  /** Those of them the model refused outright in that state. */
  readonly unplaced: Array<{ step: Step; reason: string }>;
  /** Every completed step not in the prefix. */
  readonly remaining: Step[];
  /** The search ran out of budget: nothing is known. */
  readonly gaveUp: boolean;
}

/** Result of {@link checkLinearizable}. */
export interface CheckResult {
  readonly ok: boolean;
  readonly partitions: number;
  readonly operations: number;
  readonly steps: number;
  /** Operations without a known outcome. */
  readonly pending: number;
  /** Search states explored over all partitions. */
  readonly explored: number;
  readonly failures: PartitionFailure[];
  /** A readable account of every failure ('' when ok). */
  readonly report: string;
  /** Time the check took. */
  readonly ms: number;
}

/** Checks a history against a model with the Wing–Gong–Lowe search, per partition. */
export function checkLinearizable<State>(model: Model<State>, history: readonly Operation[], options?: CheckOptions): CheckResult;

/** A readable account of one failed partition; times relative to `origin`. */
export function formatFailure<State>(model: Model<State>, failure: PartitionFailure<State>, origin: number, maxLines?: number): string;
