import type { z } from 'zod';
import { Codec, type Item } from './codec.js';
import {
  normalizeDefinition,
  type Definition,
  type DoneStatus,
  type KeySchema,
  type NormalizedStage,
  type StageMap,
  type TrackerOptions,
} from './definition.js';
import { ConfigError, LeaseholdError, LeaseLostError, StoreError, ValidationError } from './errors.js';
import { Emitter, type Listener, type TrackerEvents } from './events.js';
import { abortLease, Lease, leaseState, type LeaseState } from './lease.js';
import type { BatchResult, DataPatch, ReapResult, TrackerStats, TrackResult } from './results.js';
import { guardCondition, type Change, type LeaseGuard, type Store, type StoredItem } from './store.js';
import { claimUpdate, completionChange, errorMessage, failureChange, reapUpdates } from './transitions.js';
import { requirePositiveInt } from './validate.js';
import { Worker, type Handler, type WorkOptions } from './worker.js';

/** The reason a settled lease's signal carries. */
const SETTLED = new Error('[leasehold] lease settled');

/**
 * A typed set of work items moving through a status state machine, shared safely by any
 * number of workers. Every hand-off is one conditional update in the store.
 *
 * @typeParam S - the declared statuses
 * @typeParam K - the key schema
 * @typeParam D - the data schema
 * @typeParam St - the stages
 *
 * @example
 * ```ts
 * const jobs = new Tracker({
 *   store: new MemoryStore(),
 *   statuses: ['queued', 'running', 'done', 'failed'],
 *   initial: 'queued',
 *   key: z.object({ id: z.string() }),
 *   stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } },
 * });
 * await jobs.track({ id: 'a' });
 * const lease = await jobs.claim('run', { owner: 'worker-1' });
 * if (lease) await jobs.complete(lease);
 * ```
 */
export class Tracker<
  const S extends string,
  K extends KeySchema,
  D extends z.ZodType = z.ZodType<Record<string, unknown>>,
  const St extends StageMap<S> = StageMap<S>,
> {
  readonly #def: Definition;
  readonly #store: Store;
  readonly #codec: Codec;
  readonly #events: Emitter<TrackerEvents<z.output<K>>>;
  readonly #wakers = new Set<() => void>();
  #ready: Promise<void> | undefined;

  constructor(options: TrackerOptions<S, K, D, St>) {
    this.#def = normalizeDefinition(options as unknown as TrackerOptions<string, KeySchema, z.ZodType, StageMap>);
    this.#store = options.store;
    this.#codec = new Codec(this.#def, options.key, options.data);
    this.#events = new Emitter(options.logger);
    this.#logger = options.logger;
  }

  readonly #logger: TrackerOptions<S, K, D, St>['logger'];

  /** The store this tracker uses. */
  get store(): Store {
    return this.#store;
  }

  /** The lease time-to-live in milliseconds. */
  get ttlMs(): number {
    return this.#def.ttlMs;
  }

  /** The stage names. */
  get stages(): ReadonlyArray<keyof St & string> {
    return [...this.#def.stages.keys()] as Array<keyof St & string>;
  }

  /**
   * Creates the collection/table and indexes if missing. Idempotent and safe from many
   * processes at once; every other call runs it implicitly the first time.
   */
  init(): Promise<void> {
    this.#ready ??= this.#call('init', undefined, () => this.#store.init({ keyFields: this.#def.keyFields })).catch(
      (error: unknown) => {
        this.#ready = undefined;
        throw error;
      },
    );
    return this.#ready;
  }

  /** Adds a listener for a typed event; returns a function that removes it. */
  on<E extends keyof TrackerEvents>(event: E, listener: Listener<TrackerEvents<z.output<K>>[E]>): () => void {
    return this.#events.on(event, listener);
  }

  /**
   * Inserts the item in the `initial` status unless an item with this key exists. Never
   * changes an existing item. Concurrent calls with one key create exactly one item.
   */
  async track(key: z.input<K>, data?: z.input<D>): Promise<TrackResult<Item<S, z.output<K>, z.output<D>>>> {
    const storeKey = this.#codec.key('track', key);
    const value = this.#codec.data('track', key, data ?? {});
    await this.init();
    const result = await this.#call('track', key, () => this.#store.insert({ key: storeKey, status: this.#def.initial, data: value }));
    if (result.created) this.#wake();
    return { item: this.#decode('track', result.item), created: result.created };
  }

  /**
   * Claims one item for `stage`: the given `key`, or else the oldest eligible item. Returns
   * `null` when nothing is eligible or another worker won the race.
   */
  async claim<N extends keyof St & string>(
    stage: N,
    options: { owner: string; key?: z.input<K> },
  ): Promise<Lease<N, z.output<K>, z.output<D>, S> | null> {
    const [lease] = await this.#claim('claim', stage, options, 1);
    return lease ?? null;
  }

  /**
   * Claims up to `limit` eligible items for `stage` in one round trip where the store can;
   * each gets its own fence and lease.
   */
  async claimBatch<N extends keyof St & string>(
    stage: N,
    options: { owner: string; limit: number },
  ): Promise<Array<Lease<N, z.output<K>, z.output<D>, S>>> {
    const limit = requirePositiveInt('claimBatch.limit', options?.limit);
    if (this.#store.capabilities.batchClaim || limit === 1) return this.#claim('claimBatch', stage, options, limit);
    const leases: Array<Lease<N, z.output<K>, z.output<D>, S>> = [];
    for (let i = 0; i < limit; i++) {
      const [lease] = await this.#claim('claimBatch', stage, options, 1);
      if (!lease) break;
      leases.push(lease);
    }
    return leases;
  }

  /** Extends the lease by the ttl (store clock). Throws LeaseLostError if no longer held. */
  async renew<N extends keyof St & string>(lease: Lease<N, z.output<K>, z.output<D>, S>): Promise<Lease<N, z.output<K>, z.output<D>, S>> {
    const stage = this.#stage('renew', lease?.stage);
    const state = this.#leaseState('renew', lease);
    const stored = await this.#guarded('renew', lease, state, { status: stage.active, deadline: { ms: this.#def.ttlMs } });
    state.expiresAt = stored.deadline;
    if (this.#events.has('renewed')) this.#events.emit('renewed', { ...this.#base(lease), expiresAt: stored.deadline });
    return lease;
  }

  /**
   * Moves the item from the stage's active status to a done status (`to`, default the first),
   * optionally merging a data patch. Throws LeaseLostError if the lease is no longer held.
   */
  async complete<N extends keyof St & string>(
    lease: Lease<N, z.output<K>, z.output<D>, S>,
    options: { to?: DoneStatus<St[N]>; data?: DataPatch<z.input<D>> } = {},
  ): Promise<Item<S, z.output<K>, z.output<D>>> {
    const change = this.#completion('complete', lease, options);
    const state = this.#leaseState('complete', lease);
    const stored = await this.#guarded('complete', lease, state, change);
    return this.#completed(lease, state, stored);
  }

  /**
   * Completes many leases in one round trip where the store can. Each is still guarded by
   * its own fence; a lost lease is reported in its result, never dropped.
   */
  async completeBatch<N extends keyof St & string>(
    leases: ReadonlyArray<Lease<N, z.output<K>, z.output<D>, S>>,
    options: { to?: DoneStatus<St[N]>; data?: DataPatch<z.input<D>> } = {},
  ): Promise<Array<BatchResult<Lease<N, z.output<K>, z.output<D>, S>, Item<S, z.output<K>, z.output<D>>>>> {
    const prepared = leases.map((lease) => ({
      lease,
      state: this.#leaseState('completeBatch', lease),
      change: this.#completion('completeBatch', lease, options),
    }));
    return this.#settleBatch('completeBatch', prepared, (p, stored) => this.#completed(p.lease, p.state, stored), (p) => this.complete(p.lease, options));
  }

  /**
   * Records a failed attempt: back to the stage's first `from` status after backoff while
   * attempts remain, else (or for a `NonRetryableError`, or with `{ retry: false }`) into the
   * stage's failed status. Throws LeaseLostError if the lease is no longer held.
   */
  async fail<N extends keyof St & string>(
    lease: Lease<N, z.output<K>, z.output<D>, S>,
    error: unknown,
    options: { retry?: boolean } = {},
  ): Promise<Item<S, z.output<K>, z.output<D>>> {
    const { change, willRetry, lastError } = this.#failure('fail', lease, error, options);
    const state = this.#leaseState('fail', lease);
    const stored = await this.#guarded('fail', lease, state, change);
    return this.#failed(lease, state, stored, willRetry, lastError);
  }

  /**
   * Fails many leases in one round trip where the store can (one statement per outcome on
   * PostgreSQL). Each is still guarded by its own fence; a lost lease is reported in its result.
   */
  async failBatch<N extends keyof St & string>(
    failures: ReadonlyArray<{ readonly lease: Lease<N, z.output<K>, z.output<D>, S>; readonly error: unknown; readonly retry?: boolean }>,
  ): Promise<Array<BatchResult<Lease<N, z.output<K>, z.output<D>, S>, Item<S, z.output<K>, z.output<D>>>>> {
    const prepared = failures.map(({ lease, error, retry }) => ({
      lease,
      error,
      retry,
      state: this.#leaseState('failBatch', lease),
      ...this.#failure('failBatch', lease, error, { retry }),
    }));
    return this.#settleBatch(
      'failBatch',
      prepared,
      (p, stored) => this.#failed(p.lease, p.state, stored, p.willRetry, p.lastError),
      (p) => this.fail(p.lease, p.error, { retry: p.retry }),
    );
  }

  /**
   * Gives the item back to the stage's first `from` status without counting the attempt,
   * claimable again after `delayMs` (default at once).
   */
  async release<N extends keyof St & string>(
    lease: Lease<N, z.output<K>, z.output<D>, S>,
    options: { delayMs?: number } = {},
  ): Promise<Item<S, z.output<K>, z.output<D>>> {
    const stage = this.#stage('release', lease?.stage);
    const state = this.#leaseState('release', lease);
    const ms = options.delayMs === undefined ? 0 : requirePositiveInt('release.delayMs', options.delayMs + 1) - 1;
    const stored = await this.#guarded('release', lease, state, { status: stage.from[0]!, deadline: { ms }, attempts: 'decrement' });
    this.#settled(state);
    this.#wake();
    this.#events.emit('released', { ...this.#base(lease), durationMs: performance.now() - state.startedAt });
    return this.#decode('release', stored);
  }

  /**
   * Finds items whose lease expired (store clock) and treats each as a failed attempt with
   * `lastError` "lease expired": back for a retry after backoff, or parked when attempts ran
   * out. Two store calls per stage, whatever the number of items; the fence advances, so a
   * reaped worker that comes back is refused.
   */
  async reapStale(): Promise<ReapResult> {
    await this.init();
    let retried = 0;
    let failed = 0;
    for (const stage of this.#def.stages.values()) {
      const { retry, park } = reapUpdates(this.#def, stage);
      const back = await this.#call('reapStale', undefined, () => this.#store.update(retry.cond, retry.change));
      const parked = await this.#call('reapStale', undefined, () => this.#store.update(park.cond, park.change));
      retried += back.length;
      failed += parked.length;
      for (const [rows, willRetry] of [[back, true], [parked, false]] as const) {
        for (const stored of rows) {
          this.#logger?.warn?.({ stage: stage.name, key: stored.key, fence: stored.fence }, `[leasehold] reaped an expired lease of stage \`${stage.name}\``);
          this.#events.emit('reaped', {
            stage: stage.name,
            key: stored.key as z.output<K>,
            owner: stored.owner ?? '',
            fence: stored.fence,
            attempt: stored.attempts,
            willRetry,
            nextAttemptAt: willRetry ? stored.deadline : null,
            status: stored.status,
          });
        }
      }
    }
    if (retried) this.#wake();
    return { retried, failed };
  }

  /** The item with this key, or `null`. */
  async get(key: z.input<K>): Promise<Item<S, z.output<K>, z.output<D>> | null> {
    const storeKey = this.#codec.key('get', key);
    await this.init();
    const [stored] = await this.#call('get', key, () => this.#store.find({ key: storeKey }, { limit: 1 }));
    return stored ? this.#decode('get', stored) : null;
  }

  /** Items in the given status(es) (all when absent), in eligible order, up to `limit` (default 1000). */
  async find(query: { status?: S | readonly S[]; limit?: number } = {}): Promise<Array<Item<S, z.output<K>, z.output<D>>>> {
    const status = query.status === undefined ? undefined : (Array.isArray(query.status) ? query.status : [query.status]) as string[];
    for (const s of status ?? []) {
      if (!this.#def.statuses.includes(s)) throw new ConfigError('find.status', `\`${s}\` is not a declared status (${this.#def.statuses.join(', ')}).`);
    }
    const limit = requirePositiveInt('find.limit', query.limit ?? 1_000);
    await this.init();
    const rows = await this.#call('find', undefined, () => this.#store.find(status ? { status } : {}, { limit }));
    return rows.map((row) => this.#decode('find', row));
  }

  /** Counts per status, expired leases and items waiting on backoff, in one store call. */
  async stats(): Promise<TrackerStats<S>> {
    await this.init();
    const raw = await this.#call('stats', undefined, () => this.#store.stats(this.#def.activeStatuses));
    const byStatus = Object.fromEntries(this.#def.statuses.map((s) => [s, raw.byStatus[s] ?? 0])) as Record<S, number>;
    const total = Object.values(raw.byStatus).reduce((a, b) => a + b, 0);
    return { byStatus, total, expiredLeases: raw.expired, waiting: raw.waiting };
  }

  /**
   * Runs `handler` for items of `stage` with `concurrency` at a time: claims, renews the
   * lease every ttl/3 while the handler runs, completes on return (with the returned
   * `{ to, data }`) and fails on throw. See {@link WorkOptions}.
   */
  work<N extends keyof St & string>(
    stage: N,
    handler: Handler<Lease<N, z.output<K>, z.output<D>, S>, { to?: DoneStatus<St[N]>; data?: DataPatch<z.input<D>> }>,
    options: WorkOptions = {},
  ): Worker {
    this.#stage('work', stage);
    if (typeof handler !== 'function') throw new ConfigError('work.handler', 'expected a function `(lease) => Promise<void | { to?, data? }>`.');
    return new Worker(this as never, stage, handler as never, options);
  }

  /** @internal Registers a callback run when local work may have appeared. */
  onWake(fn: () => void): () => void {
    this.#wakers.add(fn);
    return () => this.#wakers.delete(fn);
  }

  /** @internal Reports an error nobody awaits (worker loops). */
  reportError(operation: string, error: unknown, lease?: Lease<string, unknown, unknown, string>): void {
    this.#logger?.error?.({ operation, error, stage: lease?.stage, key: lease?.key }, `[leasehold] ${operation} failed: ${errorMessage(error)}`);
    this.#events.emit('error', { operation, error, stage: lease?.stage, key: lease?.key as z.output<K> });
  }

  // ---- internals ----

  async #claim<N extends string>(
    operation: string,
    stageName: N,
    options: { owner: string; key?: z.input<K> },
    limit: number,
  ): Promise<Array<Lease<N, z.output<K>, z.output<D>, S>>> {
    const stage = this.#stage(operation, stageName);
    const owner = options?.owner;
    if (typeof owner !== 'string' || owner.length === 0 || owner.length > 200) {
      throw new ConfigError(`${operation}.owner`, `expected a non-empty string of at most 200 characters naming the worker, got \`${String(owner)}\`.`);
    }
    const key = options.key === undefined ? undefined : this.#codec.key(operation, options.key);
    const { cond, change } = claimUpdate(this.#def, stage, owner, key);
    await this.init();
    const rows = await this.#call(operation, options.key, () => this.#store.update(cond, change, { limit, ordered: true }));
    const leases: Array<Lease<N, z.output<K>, z.output<D>, S>> = [];
    for (const stored of rows) {
      let item: Item;
      try {
        item = await this.#decodeClaimed(operation, stage, stored);
      } catch (error) {
        // in a batch, one item edited into an invalid shape (parked already) must not cost the others
        if (rows.length > 1 && error instanceof ValidationError) continue;
        throw error;
      }
      const lease = new Lease(stageName, owner, item as Item<S, z.output<K>, z.output<D>>, stored.key);
      leases.push(lease);
      this.#log('debug', lease, 'claimed');
      if (this.#events.has('claimed')) {
        this.#events.emit('claimed', {
          ...this.#base(lease),
          expiresAt: stored.deadline,
          waitedMs: Math.max(0, (stored.claimedAt?.getTime() ?? 0) - stored.updatedAt.getTime()),
        });
      }
    }
    return leases;
  }

  /** A claimed item that fails validation is parked at once so that others keep flowing. */
  async #decodeClaimed(operation: string, stage: NormalizedStage, stored: StoredItem): Promise<Item> {
    try {
      return this.#codec.item(operation, stored);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      await this.#call(operation, stored.key, () =>
        this.#store.update(
          { key: stored.key, status: [stage.active], fence: stored.fence },
          { status: stage.failed, deadline: { ms: 0 }, lastError: `invalid stored item: ${error.message}`.slice(0, 2_000), finished: true },
          { limit: 1 },
        ),
      );
      this.reportError(operation, error);
      throw error;
    }
  }

  /** Settles prepared leases with one `updateEach`, or one call each where the store cannot batch. */
  async #settleBatch<L extends Lease<string, unknown, unknown, string>, P extends { lease: L; state: LeaseState; change: Change }, I>(
    operation: string,
    prepared: P[],
    settled: (p: P, stored: StoredItem) => I,
    single: (p: P) => Promise<I>,
  ): Promise<Array<BatchResult<L, I>>> {
    if (!this.#store.capabilities.batchSettle) {
      return Promise.all(
        prepared.map(async (p) => {
          try {
            return { ok: true as const, lease: p.lease, item: await single(p) };
          } catch (error) {
            if (error instanceof LeaseLostError) return { ok: false as const, lease: p.lease, error };
            throw error;
          }
        }),
      );
    }
    const rows = await this.#call(operation, undefined, () =>
      this.#store.updateEach(prepared.map((p) => ({ guard: this.#guard(p.lease, p.state), change: p.change }))),
    );
    return Promise.all(
      prepared.map(async (p, i) => {
        const stored = rows[i];
        if (!stored) return { ok: false as const, lease: p.lease, error: await this.#lost(operation, p.lease, p.state) };
        return { ok: true as const, lease: p.lease, item: settled(p, stored) };
      }),
    );
  }

  #failure(operation: string, lease: Lease<string, unknown, unknown, string>, error: unknown, options: { retry?: boolean }) {
    return failureChange(this.#def, this.#stage(operation, lease?.stage), lease, error, options);
  }

  #failed(lease: Lease<string, unknown, unknown, string>, state: LeaseState, stored: StoredItem, willRetry: boolean, lastError: string): Item<S, z.output<K>, z.output<D>> {
    this.#settled(state);
    this.#wake();
    this.#log('warn', lease, `failed${willRetry ? ', will retry' : ', parked'}: ${lastError}`);
    this.#events.emit('failed', {
      ...this.#base(lease),
      error: lastError,
      willRetry,
      nextAttemptAt: willRetry ? stored.deadline : null,
      status: stored.status,
      durationMs: performance.now() - state.startedAt,
    });
    return this.#decode('fail', stored);
  }

  #completion(operation: string, lease: Lease<string, unknown, unknown, string>, options: { to?: string; data?: unknown }): Change {
    return completionChange(this.#codec, this.#stage(operation, lease?.stage), operation, lease, options);
  }

  #completed(lease: Lease<string, unknown, unknown, string>, state: LeaseState, stored: StoredItem): Item<S, z.output<K>, z.output<D>> {
    this.#settled(state);
    this.#wake();
    this.#log('debug', lease, `completed into \`${stored.status}\``);
    if (this.#events.has('completed')) {
      this.#events.emit('completed', { ...this.#base(lease), status: stored.status, durationMs: performance.now() - state.startedAt });
    }
    return this.#decode('complete', stored);
  }

  #guard(lease: Lease<string, unknown, unknown, string>, state: LeaseState): LeaseGuard {
    return { key: state.storeKey, status: this.#stage('lease', lease.stage).active, fence: lease.fence };
  }

  async #guarded(operation: string, lease: Lease<string, unknown, unknown, string>, state: LeaseState, change: Change): Promise<StoredItem> {
    const [stored] = await this.#call(operation, lease.key, () =>
      this.#store.update(guardCondition(this.#guard(lease, state)), change, { limit: 1 }),
    );
    if (!stored) throw await this.#lost(operation, lease, state);
    return stored;
  }

  async #lost(operation: string, lease: Lease<string, unknown, unknown, string>, state: LeaseState): Promise<LeaseLostError> {
    const [now] = await this.#call(operation, lease.key, () => this.#store.find({ key: state.storeKey }, { limit: 1 }));
    const error = new LeaseLostError({
      operation,
      key: lease.key,
      stage: lease.stage,
      expectedFence: lease.fence,
      held: { status: now?.status ?? null, fence: now?.fence ?? null, owner: now?.owner ?? null },
    });
    this.#settled(state);
    this.#log('warn', lease, error.message);
    this.#events.emit('leaseLost', { ...this.#base(lease), operation, actualFence: error.actualFence, status: error.status });
    return error;
  }

  #settled(state: LeaseState): void {
    state.settled = true;
    abortLease(state, SETTLED);
  }

  #stage(operation: string, name: unknown): NormalizedStage {
    const stage = typeof name === 'string' ? this.#def.stages.get(name) : undefined;
    if (!stage) {
      throw new ConfigError(`${operation}.stage`, `\`${String(name)}\` is not a stage of this tracker (${[...this.#def.stages.keys()].join(', ')}).`);
    }
    return stage;
  }

  #leaseState(operation: string, lease: unknown): LeaseState {
    const state = lease && typeof lease === 'object' ? leaseState(lease) : undefined;
    if (!state) throw new ConfigError(`${operation}.lease`, 'expected a Lease returned by `claim`, `claimBatch` or a worker.');
    return state;
  }

  #base(lease: Lease<string, unknown, unknown, string>) {
    return { stage: lease.stage, key: lease.key as z.output<K>, owner: lease.owner, fence: lease.fence, attempt: lease.attempt };
  }

  #log(level: 'debug' | 'warn', lease: Lease<string, unknown, unknown, string>, message: string): void {
    this.#logger?.[level]?.(this.#base(lease), `[leasehold] ${lease.stage}: ${message}`);
  }

  #decode(operation: string, stored: StoredItem): Item<S, z.output<K>, z.output<D>> {
    return this.#codec.item(operation, stored) as Item<S, z.output<K>, z.output<D>>;
  }

  #wake(): void {
    for (const fn of this.#wakers) fn();
  }

  async #call<T>(operation: string, key: unknown, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (error instanceof LeaseholdError) throw error;
      throw new StoreError({ operation, store: this.#store.name, key, cause: error });
    }
  }
}
