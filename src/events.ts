/**
 * Typed events and the optional logger.
 * @module
 */

/** A pino-like or console-like logger: each method takes `(fields, message)`. */
export interface Logger {
  /** Claims, completions and releases. */
  debug?(fields: object, message: string): void;
  /** Not used by leasehold itself (the CLI's `--json` owns stdout, where `console.info` writes); accepted so that any pino or console logger fits. */
  info?(fields: object, message: string): void;
  /** Failures, reaps and lost leases. */
  warn?(fields: object, message: string): void;
  /** Store faults and listener errors nobody else can see. */
  error?(fields: object, message: string): void;
}

/**
 * Fields every lease event carries.
 * @typeParam K - the item key
 * @typeParam N - the stage names
 */
export interface LeaseEventBase<K = unknown, N extends string = string> {
  /** The stage. */
  readonly stage: N;
  /** The item key. */
  readonly key: K;
  /** The lease holder. */
  readonly owner: string;
  /** The lease's fence. */
  readonly fence: number;
  /** The attempt number (claims so far, including this one). */
  readonly attempt: number;
}

/** Payload of `claimed`. */
export interface ClaimedEvent<K = unknown, N extends string = string> extends LeaseEventBase<K, N> {
  /** When the lease expires (store clock). */
  readonly expiresAt: Date;
  /**
   * How long the item had been claimable before this claim (store clock): from when it was
   * tracked, became due (`notBefore`, a reschedule) or came back (backoff over, released,
   * reaped) to its claim; an item tracked with a `notBefore` in the past counts from then. 0
   * for a store that cannot tell (see `StoreCapabilities.priorDeadline`), and for a claim that
   * was already under way when the first `claimed` listener was added (a claim reads the old
   * deadline only while something listens, as that read costs a little).
   */
  readonly waitedMs: number;
}

/** Payload of `renewed`. */
export interface RenewedEvent<K = unknown, N extends string = string> extends LeaseEventBase<K, N> {
  /** The new expiry (store clock). */
  readonly expiresAt: Date;
}

/** Payload of `completed`. */
export interface CompletedEvent<K = unknown, N extends string = string, S extends string = string> extends LeaseEventBase<K, N> {
  /** The done status reached. */
  readonly status: S;
  /** Time since the claim, measured on this process. */
  readonly durationMs: number;
}

/** Payload of `failed`. */
export interface FailedEvent<K = unknown, N extends string = string, S extends string = string> extends LeaseEventBase<K, N> {
  /** The error message recorded as `lastError`. */
  readonly error: string;
  /** Whether the item went back for another attempt. */
  readonly willRetry: boolean;
  /** When it may be claimed again, if it will retry. */
  readonly nextAttemptAt: Date | null;
  /** The status it moved to. */
  readonly status: S;
  /** Time since the claim, measured on this process. */
  readonly durationMs: number;
}

/** Payload of `released`. */
export interface ReleasedEvent<K = unknown, N extends string = string> extends LeaseEventBase<K, N> {
  /** Time since the claim, measured on this process. */
  readonly durationMs: number;
}

/** Payload of `reaped`: `owner` is the stale holder, `fence` the new fence. */
export interface ReapedEvent<K = unknown, N extends string = string, S extends string = string> extends LeaseEventBase<K, N> {
  /** Whether the item went back for another attempt. */
  readonly willRetry: boolean;
  /** When it may be claimed again, if it will retry. */
  readonly nextAttemptAt: Date | null;
  /** The status it moved to. */
  readonly status: S;
}

/** Payload of `leaseLost`. */
export interface LeaseLostEvent<K = unknown, N extends string = string> extends LeaseEventBase<K, N> {
  /** The operation that found the lease lost. */
  readonly operation: string;
  /** The fence the store holds now (`null` if the item is gone). */
  readonly actualFence: number | null;
  /** The status the store holds now (`null` if the item is gone). */
  readonly status: string | null;
}

/** Payload of `error`: a failure a worker handled with no caller to throw to. */
export interface ErrorEvent<K = unknown, N extends string = string> {
  /** What failed (`claim`, `renew`, `settle`, `reapStale`, ...). */
  readonly operation: string;
  /** The error (usually a StoreError with the driver's `cause`). */
  readonly error: unknown;
  /** The stage, when a lease was involved. */
  readonly stage?: N;
  /** The item key, when a lease was involved. */
  readonly key?: K;
}

/**
 * The events a Tracker emits, by name.
 * @typeParam K - the item key
 * @typeParam N - the stage names
 * @typeParam S - the declared statuses
 */
export interface TrackerEvents<K = unknown, N extends string = string, S extends string = string> {
  /** An item was claimed. */
  claimed: ClaimedEvent<K, N>;
  /** A lease was extended. */
  renewed: RenewedEvent<K, N>;
  /** A lease was completed into a done status. */
  completed: CompletedEvent<K, N, S>;
  /**
   * A lease failed, for a retry or for good; also an item parked at its claim without running
   * (attempts beyond `retry.maxAttempts`, or stored data that no longer fits the schema), with
   * `durationMs` 0 and the key as stored.
   */
  failed: FailedEvent<K, N, S>;
  /** A lease was given back without counting a failure. */
  released: ReleasedEvent<K, N>;
  /** An expired lease was reaped. */
  reaped: ReapedEvent<K, N, S>;
  /** An operation found its lease lost. */
  leaseLost: LeaseLostEvent<K, N>;
  /** An error a worker handled without a caller to throw to (store down, listener threw, ...). */
  error: ErrorEvent<K, N>;
}

/** A listener of event `E`. */
export type Listener<T> = (payload: T) => void;

/** The names of {@link TrackerEvents}, for the check of `on`. */
export const TRACKER_EVENTS: ReadonlyArray<keyof TrackerEvents> = ['claimed', 'renewed', 'completed', 'failed', 'released', 'reaped', 'leaseLost', 'error'];

/**
 * A tiny typed event emitter; a throwing listener never breaks an operation: its error goes to
 * `onListenerError`, as does the rejection of a promise a listener returns (an `async` one),
 * which would otherwise be unhandled and end the process.
 */
export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  readonly #onListenerError: (event: string, error: unknown) => void;

  constructor(onListenerError: (event: string, error: unknown) => void) {
    this.#onListenerError = onListenerError;
  }

  /** Adds a listener; returns a function that removes it. */
  on<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** Whether anyone listens to `event` (lets hot paths skip building payloads). */
  has(event: keyof Events): boolean {
    return (this.#listeners.get(event)?.size ?? 0) > 0;
  }

  emit<E extends keyof Events>(event: E, payload: Events[E]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of set) {
      try {
        caught((listener as (payload: Events[E]) => unknown)(payload), (error) => this.#onListenerError(String(event), error));
      } catch (error) {
        this.#onListenerError(String(event), error);
      }
    }
  }
}

/**
 * Hands the rejection of `result` to `onError`, when it is a promise (or any thenable): what an
 * `async` listener or logger returns. Anything else is left alone.
 */
export function caught(result: unknown, onError: (error: unknown) => void): void {
  if (result === null || (typeof result !== 'object' && typeof result !== 'function')) return;
  try {
    const then = (result as { then?: unknown }).then;
    if (typeof then === 'function') then.call(result, undefined, onError);
  } catch (error) {
    onError(error);
  }
}
