import type { z } from 'zod';
import type { Item } from './codec.js';
import { normalizeDefinition, type DoneStatus, type KeySchema, type StageMap, type TrackerOptions } from './definition.js';
import { ConfigError } from './errors.js';
import { Lease } from './lease.js';
import type { BatchResult, DataPatch, ReapResult, TrackResult } from './results.js';
import * as claiming from './tracker/claim.js';
import { Core, type AnyLease } from './tracker/core.js';
import { TrackerOperations } from './tracker/operations.js';
import { reapStale } from './tracker/reap.js';
import * as settling from './tracker/settle.js';
import type { HandlerResult, OnlyToAndData, TrackArgs } from './tracker/types.js';
import { describe, requireKnownOptions, requireLimit, requireList } from './validate.js';
import { Worker, type Handler, type WorkOptions } from './worker.js';

export type { ScheduleOptions, TrackOptions } from './tracker/claim.js';
export type { PurgeOptions } from './tracker/operate.js';
export { TrackerOperations, type PurgeResult, type TrackerDefinition } from './tracker/operations.js';
export type { ExtraResultFields, HandlerResult, ItemOf, KeyOf, LeaseOf, OnlyToAndData, StageOf, TrackArgs } from './tracker/types.js';

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
> extends TrackerOperations<S, K, D, St> {
  readonly #core: Core;

  constructor(options: TrackerOptions<S, K, D, St>) {
    const def = normalizeDefinition(options as unknown as TrackerOptions<string, KeySchema, z.ZodType, StageMap>);
    const core = new Core(def, options.store, options.key, options.data, options.logger);
    super(core);
    this.#core = core;
  }

  /**
   * Inserts the item in the `initial` status unless an item with this key exists. Never
   * changes an existing item. Concurrent calls with one key create exactly one item. With
   * `notBefore` or `delayMs` the item is not claimable before then (scheduled work).
   *
   * @param key - the item key (validated by the key schema; scalars only)
   * @param args - `data`, the item data (validated by the data schema; optional only where the
   * schema accepts `{}`, which an absent one stands for), then `options`: `notBefore` (a Date) or
   * `delayMs`, not claimable before then
   * @example
   * ```ts
   * const { item, created } = await tracker.track({ logId: 'L-1', partnerCode: 'acme' }, { bytes: 512 });
   * await tracker.track({ logId: 'L-2', partnerCode: 'acme' }, {}, { delayMs: 60_000 }); // scheduled
   * ```
   */
  track(key: z.input<K>, ...args: TrackArgs<z.input<D>>): Promise<TrackResult<Item<S, z.output<K>, z.output<D>>>>;
  /**
   * The same, with data that may be `undefined` (an absent one stands for `{}`): what a generic
   * wrapper passes on.
   *
   * @param key - the item key
   * @param data - the item data, or `undefined`
   * @param options - `notBefore` or `delayMs`
   */
  track(key: z.input<K>, data: z.input<D> | undefined, options?: claiming.TrackOptions): Promise<TrackResult<Item<S, z.output<K>, z.output<D>>>>;
  async track(key: z.input<K>, data?: z.input<D>, options?: claiming.TrackOptions): Promise<TrackResult<Item<S, z.output<K>, z.output<D>>>> {
    return (await claiming.track(this.#core, key, data, options)) as TrackResult<Item<S, z.output<K>, z.output<D>>>;
  }

  /**
   * Claims one item for `stage`: the given `key`, or else the oldest eligible item. Returns
   * `null` when nothing is eligible or another worker won the race.
   *
   * @param stage - the stage to claim for
   * @param options - `owner` (who holds the lease) and optionally `key` (claim this item only)
   * @example
   * ```ts
   * const lease = await tracker.claim('download', { owner: 'worker-1' });
   * if (lease) await tracker.complete(lease); // after the work
   * ```
   */
  async claim<N extends keyof St & string>(stage: N, options: { owner: string; key?: z.input<K> }): Promise<Lease<N, z.output<K>, z.output<D>, S> | null> {
    const [lease] = await claiming.claim(this.#core, 'claim', stage, options, 1);
    return (lease ?? null) as Lease<N, z.output<K>, z.output<D>, S> | null;
  }

  /**
   * Claims up to `limit` eligible items for `stage` in one round trip where the store can;
   * each gets its own fence and lease.
   *
   * @param stage - the stage to claim for
   * @param options - `owner` and `limit` (at most this many leases)
   * @example
   * ```ts
   * const leases = await tracker.claimBatch('process', { owner: 'worker-1', limit: 100 });
   * await tracker.completeBatch(leases);
   * ```
   */
  async claimBatch<N extends keyof St & string>(stage: N, options: { owner: string; limit: number }): Promise<Array<Lease<N, z.output<K>, z.output<D>, S>>> {
    const limit = requireLimit('claimBatch.limit', options?.limit);
    return (await claiming.claimBatch(this.#core, stage, options, limit)) as Array<Lease<N, z.output<K>, z.output<D>, S>>;
  }

  /**
   * Extends the lease by the ttl (store clock). Throws LeaseLostError if no longer held.
   *
   * @param lease - a lease from `claim`, `claimBatch` or a worker
   * @example
   * ```ts
   * const timer = setInterval(() => tracker.renew(lease).catch(() => clearInterval(timer)), 10_000);
   * ```
   */
  async renew<N extends keyof St & string>(lease: Lease<N, z.output<K>, z.output<D>, S>): Promise<Lease<N, z.output<K>, z.output<D>, S>> {
    await settling.renew(this.#core, lease as AnyLease);
    return lease;
  }

  /**
   * Moves the item from the stage's active status to a done status (`to`, default the first),
   * optionally merging a data patch. Throws LeaseLostError if the lease is no longer held.
   * After a StoreError (the answer may have been lost after the write), call it again with the
   * same lease: a first attempt that applied is then reported once and returned (so are `fail`
   * and `release`, and the batches).
   *
   * @param lease - the lease to settle
   * @param options - `to`: one of the stage's done statuses (default the first); `data`: a patch merged over the item's data
   * @example
   * ```ts
   * await tracker.complete(lease, { data: { localFilePath: '/data/L-1.bin' } });
   * await tracker.complete(other, { to: 'skipped' });
   * ```
   */
  async complete<N extends keyof St & string>(
    lease: Lease<N, z.output<K>, z.output<D>, S>,
    options: { to?: DoneStatus<St[N]>; data?: DataPatch<z.input<D>> } = {},
  ): Promise<Item<S, z.output<K>, z.output<D>>> {
    const p = settling.prepareComplete(this.#core, 'complete', lease as AnyLease, options);
    return (await settling.settle(this.#core, 'complete', p)) as Item<S, z.output<K>, z.output<D>>;
  }

  /**
   * Completes many leases in one round trip where the store can. Each is still guarded by
   * its own fence; a lost lease is reported in its result, never dropped. A settled lease's
   * result says where its item is now (`status`, `notBefore`), not the whole item: read it
   * with `get(lease.key)` where more is needed.
   *
   * @param leases - leases of one stage
   * @param options - as for `complete`, applied to every lease
   * @example
   * ```ts
   * const results = await tracker.completeBatch(leases);
   * for (const r of results) if (!r.ok) log.warn(r.error.message);
   * else log.debug(`${JSON.stringify(r.lease.key)} is ${r.status}`);
   * ```
   */
  async completeBatch<N extends keyof St & string>(
    leases: ReadonlyArray<Lease<N, z.output<K>, z.output<D>, S>>,
    options: { to?: DoneStatus<St[N]>; data?: DataPatch<z.input<D>> } = {},
  ): Promise<Array<BatchResult<Lease<N, z.output<K>, z.output<D>, S>, DoneStatus<St[N]>>>> {
    const prepared = requireList('completeBatch.leases', leases, 'leases').map((lease) => settling.prepareComplete(this.#core, 'completeBatch', lease as AnyLease, options));
    return (await settling.settleBatch(this.#core, 'completeBatch', prepared)) as never;
  }

  /**
   * Records a failed attempt: back to the stage's first `from` status after backoff while
   * attempts remain, else (or for a `NonRetryableError`, or with `{ retry: false }`) into the
   * stage's failed status. Throws LeaseLostError if the lease is no longer held.
   *
   * @param lease - the lease to settle
   * @param error - what went wrong (stored as `lastError`); a `NonRetryableError` parks the item at once
   * @param options - `retry: false` parks the item at once
   * @example
   * ```ts
   * try { await download(lease.key); await tracker.complete(lease); }
   * catch (error) { await tracker.fail(lease, error); }
   * ```
   */
  async fail<N extends keyof St & string>(lease: Lease<N, z.output<K>, z.output<D>, S>, error: unknown, options: { retry?: boolean } = {}): Promise<Item<S, z.output<K>, z.output<D>>> {
    const p = settling.prepareFail(this.#core, 'fail', lease as AnyLease, error, options);
    return (await settling.settle(this.#core, 'fail', p)) as Item<S, z.output<K>, z.output<D>>;
  }

  /**
   * Fails many leases in one round trip where the store can. Each is still guarded by its own
   * fence; a lost lease is reported in its result. A settled lease's result says where its item
   * is now: back in the stage's `from` status with `notBefore` its next attempt, or in the
   * failed status (`notBefore: null`).
   *
   * @param failures - each `{ lease, error, retry? }`
   * @example
   * ```ts
   * const results = await tracker.failBatch(leases.map((lease) => ({ lease, error: new Error('partner API down') })));
   * const retrying = results.filter((r) => r.ok && r.notBefore !== null).length;
   * ```
   */
  async failBatch<N extends keyof St & string>(
    failures: ReadonlyArray<{ readonly lease: Lease<N, z.output<K>, z.output<D>, S>; readonly error: unknown; readonly retry?: boolean }>,
  ): Promise<Array<BatchResult<Lease<N, z.output<K>, z.output<D>, S>, S>>> {
    const prepared = requireList('failBatch.failures', failures, '`{ lease, error, retry? }` entries').map((entry, i) => {
      if (entry instanceof Lease) throw new ConfigError(`failBatch.failures[${i}]`, 'expected `{ lease, error, retry? }`, got a Lease: give each lease with its error, `{ lease, error }`; nothing was written.');
      if (entry === null || typeof entry !== 'object') throw new ConfigError(`failBatch.failures[${i}]`, `expected \`{ lease, error, retry? }\`, got ${describe(entry)}; nothing was written.`);
      requireKnownOptions(`failBatch.failures[${i}]`, entry, ['lease', 'error', 'retry']);
      const { lease, error, retry } = entry;
      return settling.prepareFail(this.#core, 'failBatch', lease as AnyLease, error, retry === undefined ? {} : { retry }, `failBatch.failures[${i}]`);
    });
    return (await settling.settleBatch(this.#core, 'failBatch', prepared)) as never;
  }

  /**
   * Gives the item back to the stage's first `from` status without counting the attempt,
   * claimable again after `delayMs` (default at once).
   *
   * @param lease - the lease to give back
   * @param options - `delayMs`: not claimable again before this delay
   * @example
   * ```ts
   * if (shuttingDown) await tracker.release(lease); // another worker takes it at once
   * ```
   */
  async release<N extends keyof St & string>(lease: Lease<N, z.output<K>, z.output<D>, S>, options: { delayMs?: number } = {}): Promise<Item<S, z.output<K>, z.output<D>>> {
    const p = settling.prepareRelease(this.#core, lease as AnyLease, options);
    return (await settling.settle(this.#core, 'release', p)) as Item<S, z.output<K>, z.output<D>>;
  }

  /**
   * Finds items whose lease expired (store clock) and treats each as a failed attempt with
   * `lastError` "lease expired": back for a retry after its own backoff, or parked when its
   * attempts ran out. Works in batches of `batchSize` (default 500) until a batch comes back
   * short, two store calls per batch; the fence advances, so a reaped worker that comes back
   * is refused. Workers run it for you (see `reapIntervalMs`).
   *
   * @param options - `batchSize`: items per batch (default 500)
   * @example
   * ```ts
   * setInterval(() => tracker.reapStale().catch(console.error), 30_000); // workers do this by default
   * ```
   */
  async reapStale(options: { batchSize?: number } = {}): Promise<ReapResult> {
    requireKnownOptions('reapStale', options, ['batchSize']);
    return reapStale(this.#core, options.batchSize === undefined ? undefined : requireLimit('reapStale.batchSize', options.batchSize));
  }

  /**
   * Runs `handler` for items of `stage` with `concurrency` at a time: claims, renews the
   * lease every ttl/3 while the handler runs, completes on return (with the returned
   * `{ to, data }`) and fails on throw. Reaps expired leases in the background by default.
   * See {@link WorkOptions}.
   *
   * @param stage - the stage to work on
   * @param handler - runs per lease; return nothing or `{ to?, data? }` to complete, throw to fail
   *   (an object literal with other fields is refused: the item is parked with the reason)
   * @param options - see {@link WorkOptions}
   * @example
   * ```ts
   * const worker = tracker.work('process', async (lease) => {
   *   const records = await parse(lease.item.data.localFilePath, { signal: lease.signal });
   *   return { data: { records } };
   * }, { concurrency: 4 });
   * await worker.drain();
   * await worker.stop();
   * ```
   */
  work<N extends keyof St & string, R extends HandlerResult<DoneStatus<St[N]>, DataPatch<z.input<D>>> = HandlerResult<DoneStatus<St[N]>, DataPatch<z.input<D>>>>(
    stage: N,
    // a returned field beside `to` and `data` (`{ data, note }`, `{ status }`) does not compile:
    // at run time it parks the item, rather than complete it with the field dropped
    handler: Handler<Lease<N, z.output<K>, z.output<D>, S>, R> & OnlyToAndData<R>,
    options: WorkOptions = {},
  ): Worker {
    this.#core.stage('work', stage);
    if (typeof handler !== 'function') throw new ConfigError('work.handler', 'expected a function `(lease) => Promise<void | { to?, data? }>`.');
    return new Worker(this as never, this.#core as never, stage, handler as never, options);
  }
}
