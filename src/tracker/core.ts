/**
 * What every family of transitions (claim, settle, reap, operate) shares: the checked
 * definition, the store, the codec, events and logging, and the wrapper that turns driver
 * errors into StoreErrors. Internal.
 * @module
 */
import type { z } from 'zod';
import { Codec, type Item } from '../codec.js';
import type { Definition, NormalizedStage } from '../definition.js';
import { ConfigError, describeKey, LeaseholdError, StoreError } from '../errors.js';
import { caught, Emitter, type LeaseEventBase, type Logger, type TrackerEvents } from '../events.js';
import { leaseState, type Lease, type LeaseState } from '../lease.js';
import { guardCondition, type GuardedUpdate, type SettleOutcome, type Store, type StoredItem } from '../store.js';
import { errorMessage } from '../transitions.js';
import { describe } from '../validate.js';

/** The events whose payload carries a lease's fields. */
type LeaseEventName = { [E in keyof TrackerEvents]: TrackerEvents[E] extends LeaseEventBase ? E : never }[keyof TrackerEvents];

/**
 * A worker's wake-up callback: `status` became claimable (unknown when absent), at `at` when
 * that is later than now.
 */
export type Waker = (status?: string, at?: Date) => void;

/** Any lease, for the untyped internals. */
export type AnyLease = Lease<string, unknown, unknown, string>;

/** How often unheard errors may reach stderr: a burst, then one line per interval. */
const STDERR_BURST = 5;
const STDERR_INTERVAL_MS = 10_000;

/** The state and helpers shared by the transition families of one Tracker. */
export class Core {
  readonly def: Definition;
  readonly store: Store;
  readonly codec: Codec;
  readonly events: Emitter<TrackerEvents>;
  readonly logger: Logger | undefined;
  readonly #wakers = new Set<Waker>();
  #unwatch: (() => void) | undefined;
  #ready: Promise<void> | undefined;
  #stderr = { printed: 0, suppressed: 0, windowStart: 0 };

  constructor(def: Definition, store: Store, key: z.ZodType, data: z.ZodType | undefined, logger: Logger | undefined) {
    this.def = def;
    this.store = store;
    this.codec = new Codec(def, key, data);
    this.logger = logger && guardLogger(logger, (line) => this.#toStderr(line));
    // a throwing listener is reported as every background error is (logger, `error` event or
    // stderr), except one of `error` itself, which would report again: logger or stderr
    this.events = new Emitter((event, error) => {
      if (event !== 'error') return this.reportError(`a \`${event}\` listener`, error);
      const message = `[leasehold] an \`error\` listener threw: ${errorMessage(error)}`;
      if (this.logger?.error) this.logger.error({ event, error }, message);
      else process.stderr.write(`${message}\n`);
    });
  }

  init(): Promise<void> {
    this.#ready ??= this.call('init', undefined, () => this.store.init({ keyFields: this.def.keyFields, claimable: this.def.fromStatuses })).catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }

  /** Runs one store call; driver errors become StoreErrors naming the operation and key. */
  async call<T>(operation: string, key: unknown, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof LeaseholdError) throw error;
      throw new StoreError({ operation, store: this.store.name, key, cause: error });
    }
  }

  /**
   * Applies guarded updates in one round trip where the store can (`updateEach`), else one
   * guarded `update` each; returns, in order, the updated state or `null` where the guard did
   * not hold. The one place the batch paths (settles, reaps) choose between the two. With
   * `outcome`, only the {@link SettleOutcome} fields of each result are read (batch settles), and
   * the store may return just those.
   */
  async updateEach(operation: string, updates: readonly GuardedUpdate[], outcome: true): Promise<Array<SettleOutcome | null>>;
  async updateEach(operation: string, updates: readonly GuardedUpdate[]): Promise<Array<StoredItem | null>>;
  async updateEach(operation: string, updates: readonly GuardedUpdate[], outcome = false): Promise<Array<StoredItem | null>> {
    const store = this.store;
    if (updates.length === 0) return [];
    if (store.capabilities.batchSettle && store.updateEach) {
      return this.call(operation, undefined, () => store.updateEach!(updates, outcome ? { returning: 'state', outcomeOnly: true } : { returning: 'state' }));
    }
    return Promise.all(
      updates.map(async ({ guard, change }) => {
        const [row] = await this.call(operation, guard.key, () => store.update(guardCondition(guard), change, { limit: 1, returning: 'state' }));
        return row ?? null;
      }),
    );
  }

  stage(operation: string, name: unknown): NormalizedStage {
    const stage = typeof name === 'string' ? this.def.stages.get(name) : undefined;
    if (!stage) {
      throw new ConfigError(`${operation}.stage`, `${typeof name === 'string' ? `\`${name}\`` : describe(name)} is not a stage of this tracker (${[...this.def.stages.keys()].join(', ')}).`);
    }
    return stage;
  }

  leaseState(operation: string, lease: unknown): LeaseState {
    const state = lease && typeof lease === 'object' ? leaseState(lease) : undefined;
    if (!state) {
      const got = lease === null || lease === undefined ? ` got \`${String(lease)}\` (\`claim\` returns \`null\` when nothing is claimable: check for it before settling)` : ' got another object';
      throw new ConfigError(`${operation}.lease`, `expected a Lease returned by \`claim\`, \`claimBatch\` or a worker,${got}; nothing was written.`);
    }
    // another store's ref, key and fence could match an item here: it would settle that item
    const store = this.store;
    if (state.store !== store && (store.location === undefined || state.store.location !== store.location)) {
      throw new ConfigError(`${operation}.lease`, `the lease of item ${describeKey((lease as { key?: unknown }).key)} was claimed through a tracker on another store; settle it through the tracker that claimed it (or one whose store has the same \`location\`).`);
    }
    return state;
  }

  decode(operation: string, stored: StoredItem): Item {
    return this.codec.item(operation, stored);
  }

  base(lease: AnyLease) {
    return { stage: lease.stage, key: lease.key, owner: lease.owner, fence: lease.fence, attempt: lease.attempt };
  }

  /**
   * Emits a lease event: the lease's fields and `extra` (the event's own fields, checked against
   * its payload type). `Object.assign` onto the fresh base: `{ ...base(lease), x }` took V8
   * (Node 20) about 2 µs per payload, this a few hundredths of that.
   */
  emitLease<E extends LeaseEventName>(event: E, lease: AnyLease, extra: Omit<TrackerEvents[E], keyof LeaseEventBase>): void {
    this.events.emit(event, Object.assign(this.base(lease), extra) as unknown as TrackerEvents[E]);
  }

  log(level: 'debug' | 'warn', lease: AnyLease, message: string): void {
    this.logger?.[level]?.(this.base(lease), `[leasehold] ${lease.stage}: ${message}`);
  }

  /**
   * Registers a callback run when work may have appeared (`status` became claimable, now or at
   * `at`). While any is registered, the tracker also listens to the store's `watch`, so that
   * changes made by other processes wake this one's workers.
   */
  onWake(fn: Waker): () => void {
    this.#wakers.add(fn);
    if (this.#wakers.size === 1 && this.store.watch && !this.#unwatch) {
      this.#unwatch = this.store.watch((change) => this.wake(change.status, change.at));
    }
    return () => {
      // the last worker gone: give the listening connection back (a pool can then end)
      if (this.#wakers.delete(fn) && this.#wakers.size === 0 && this.#unwatch) {
        const unwatch = this.#unwatch;
        this.#unwatch = undefined;
        unwatch();
      }
    };
  }

  /** Tells workers that `status` became claimable (any status when absent), now or at `at` (this process's clock). */
  wake(status?: string, at?: Date): void {
    for (const fn of this.#wakers) fn(status, at);
  }

  /**
   * Tells workers that a write put an item in `status`, claimable at its deadline. The deadline
   * is the store's clock; workers wait on this process's, which may be seconds off (a clock
   * behind woke them late by as much; one ahead by more than the delay dropped the due time, and
   * they slept to their next poll). So the delay the store measured (the deadline less the
   * write's `updatedAt`, both its clock) counts from now. Without `updatedAt` (a batch
   * settle's outcome), the deadline as it is.
   */
  wakeAt(status: string, written: { readonly deadline?: Date; readonly updatedAt?: Date }): void {
    const { deadline, updatedAt } = written;
    this.wake(status, deadline && updatedAt ? new Date(Date.now() + Math.max(0, deadline.getTime() - updatedAt.getTime())) : deadline);
  }

  /** Whether the store tells this process about changes other processes make. */
  get watching(): boolean {
    return typeof this.store.watch === 'function';
  }

  /**
   * When the next item of `stage` that waits (backoff, scheduled) becomes claimable, by the
   * store's clock: one indexed read of the earliest future deadline in its `from` statuses.
   */
  async nextDue(stageName: string): Promise<Date | undefined> {
    const stage = this.stage('nextDue', stageName);
    await this.init();
    const [next] = await this.call('find', undefined, () => this.store.find({ status: stage.from, deadline: 'future' }, { limit: 1, returning: 'state' }));
    return next?.deadline;
  }

  /**
   * Reports an error nobody awaits (worker loops, reapers). With neither a logger nor an
   * `error` listener it goes to stderr, rate-limited, as Node does for an unhandled `error`
   * event: background failures are never silent.
   */
  reportError(operation: string, error: unknown, lease?: AnyLease): void {
    const message = `[leasehold] ${operation} failed${lease ? ` for item ${JSON.stringify(lease.key)} in stage \`${lease.stage}\`` : ''}: ${errorMessage(error)}`;
    this.logger?.error?.({ operation, error, stage: lease?.stage, key: lease?.key }, message);
    this.events.emit('error', { operation, error, stage: lease?.stage, key: lease?.key });
    if (this.logger?.error || this.events.has('error')) return;
    this.#toStderr(`${message}\n  (pass a \`logger\` or listen with tracker.on('error', ...) to handle these yourself)`);
  }

  /** Writes a line to stderr, at most a burst of them per interval (then how many were not shown). */
  #toStderr(line: string): void {
    // the monotonic clock: a wall clock stepped back would keep the window from ever ending
    const now = performance.now();
    const s = this.#stderr;
    if (now - s.windowStart >= STDERR_INTERVAL_MS) {
      if (s.suppressed) process.stderr.write(`[leasehold] (${s.suppressed} more error(s) not shown in the last ${STDERR_INTERVAL_MS / 1000} s)\n`);
      s.windowStart = now;
      s.printed = 0;
      s.suppressed = 0;
    }
    if (s.printed++ < STDERR_BURST) process.stderr.write(`${line}\n`);
    else s.suppressed++;
  }
}

/**
 * The logger as leasehold calls it: the same methods, each of which, should the logger throw
 * (a closed transport, a bad serializer), says so on stderr instead of failing the claim, settle
 * or worker loop that was logging.
 */
function guardLogger(logger: Logger, toStderr: (line: string) => void): Logger {
  const guarded: Logger = {};
  for (const level of ['debug', 'info', 'warn', 'error'] as const) {
    const method = logger[level];
    if (typeof method !== 'function') continue;
    guarded[level] = (fields, message) => {
      const failed = (error: unknown) => toStderr(`[leasehold] the logger's ${level}() threw (${errorMessage(error)}) while logging: ${message}`);
      try {
        caught(method.call(logger, fields, message), failed);
      } catch (error) {
        failed(error);
      }
    };
  }
  return guarded;
}

/** Tracker-typed alias of the events, for the public surface. */
export type Events<K> = TrackerEvents<K>;
