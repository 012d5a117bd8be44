import type { z } from 'zod';
import type { Tracker } from '../tracker.js';
import type { Item } from '../codec.js';
import type { KeySchema, StageMap, StageView } from '../definition.js';
import { ConfigError, type ValidationError } from '../errors.js';
import { TRACKER_EVENTS, type Listener, type TrackerEvents } from '../events.js';
import type { TrackerStats } from '../results.js';
import type { KeyField, Store } from '../store.js';
import type { ScheduleOptions } from './claim.js';
import type { Core } from './core.js';
import * as operating from './operate.js';
import * as reading from './read.js';

/** What `purge` deleted. */
export interface PurgeResult {
  /** Items deleted. */
  readonly deleted: number;
}

/** The definition of a Tracker as others may read it (dashboards, tools). */
export interface TrackerDefinition<S extends string = string> {
  /** Every declared status. */
  readonly statuses: readonly S[];
  /** Status of a newly tracked item. */
  readonly initial: S;
  /** The stages, in declaration order. */
  readonly stages: ReadonlyArray<StageView<S>>;
  /** Statuses no stage claims from or holds (finished items; `purge` deletes these). */
  readonly terminalStatuses: readonly S[];
  /** The key fields, in declaration order, with the type each is stored as. */
  readonly keyFields: readonly KeyField[];
  /** Lease time-to-live in milliseconds. */
  readonly ttlMs: number;
  /** Claims an item may have per stage. */
  readonly maxAttempts: number;
}

/**
 * The part of a {@link Tracker} that needs no lease: its definition, events, reads and operator
 * verbs (what dashboards, the CLI and other operator tools call). `Tracker` adds the hand-offs
 * (`track`, `claim`, `renew`, `complete`, `fail`, `release`, `reapStale`) and `work`. Made by
 * `new Tracker(...)`, never on its own.
 *
 * @typeParam S - the declared statuses
 * @typeParam K - the key schema
 * @typeParam D - the data schema
 * @typeParam St - the stages
 */
export class TrackerOperations<
  S extends string = string,
  K extends KeySchema = KeySchema,
  D extends z.ZodType = z.ZodType,
  St extends StageMap<S> = StageMap<S>,
> {
  readonly #core: Core;

  /** @internal */
  protected constructor(core: Core) {
    this.#core = core;
  }

  /** The store this tracker uses. */
  get store(): Store {
    return this.#core.store;
  }

  /** The lease time-to-live in milliseconds. */
  get ttlMs(): number {
    return this.#core.def.ttlMs;
  }

  /** The stage names. */
  get stages(): ReadonlyArray<keyof St & string> {
    return [...this.#core.def.stages.keys()] as Array<keyof St & string>;
  }

  /** The checked definition: statuses, stages and limits, for dashboards and tools. */
  get definition(): TrackerDefinition<S> {
    const def = this.#core.def;
    return {
      statuses: def.statuses as S[],
      initial: def.initial as S,
      stages: [...def.stages.values()] as Array<StageView<S>>,
      terminalStatuses: def.terminalStatuses as S[],
      keyFields: def.keyFields,
      ttlMs: def.ttlMs,
      maxAttempts: def.maxAttempts,
    };
  }

  /**
   * Creates the collection/table and indexes if missing. Idempotent and safe from many
   * processes at once; every other call runs it implicitly the first time.
   *
   * @returns once the table or collection and its indexes exist
   * @example
   * ```ts
   * await tracker.init(); // optional: the first call of any method runs it
   * ```
   */
  init(): Promise<void> {
    return this.#core.init();
  }

  /**
   * Adds a listener for a typed event; returns a function that removes it.
   *
   * @param event - the event name: `claimed`, `renewed`, `completed`, `failed`, `released`, `reaped`, `leaseLost` or `error`
   * @param listener - called with the event's payload; a listener that throws is logged, never breaks an operation
   * @example
   * ```ts
   * const off = tracker.on('failed', (e) => metrics.increment('failed', { stage: e.stage, retry: e.willRetry }));
   * off(); // stop listening
   * ```
   */
  on<E extends keyof TrackerEvents>(event: E, listener: Listener<TrackerEvents<z.output<K>, keyof St & string, S>[E]>): () => void {
    // `on('complete', …)` would never fire, and a listener that is no function would fail at every event
    if (!TRACKER_EVENTS.includes(event)) {
      throw new ConfigError('on.event', `\`${String(event)}\` is not an event of a Tracker (${TRACKER_EVENTS.join(', ')}).`);
    }
    if (typeof listener !== 'function') throw new ConfigError('on.listener', `expected a function, called with each \`${event}\` event's payload.`);
    return this.#core.events.on(event, listener as Listener<TrackerEvents[E]>);
  }

  /**
   * Operator retry: an item parked in its stage's failed status goes back to the stage's first
   * `from` status, attempts reset, claimable now (`lastError` is kept). Returns the item, or
   * `null` if it was not parked. `stage` picks the stage when the item was parked by an older
   * version that did not record it.
   *
   * @param key - the item key
   * @param options - `stage`: for items parked before the stage was recorded
   * @example
   * ```ts
   * const item = await tracker.retry({ logId: 'L-1', partnerCode: 'acme' });
   * if (!item) console.log('it was not parked');
   * ```
   */
  async retry(key: z.input<K>, options: { stage?: keyof St & string } = {}): Promise<Item<S, z.output<K>, z.output<D>> | null> {
    return (await operating.retry(this.#core, key, options)) as Item<S, z.output<K>, z.output<D>> | null;
  }

  /**
   * Operator retry of parked items (of one stage, or all), in bounded batches; returns the count.
   *
   * @param options - `stage` (default every stage) and `limit` (default all)
   * @example
   * ```ts
   * const count = await tracker.retryAll({ stage: 'download', limit: 1_000 });
   * ```
   */
  retryAll(options: { stage?: keyof St & string; limit?: number } = {}): Promise<number> {
    return operating.retryAll(this.#core, options);
  }

  /**
   * Operator cancel: an item that waits or is held goes to its stage's failed status with
   * `lastError` saying why. A holder's fence is advanced: its next renew or settle gets
   * `LeaseLostError` and its `lease.signal` aborts at the next heartbeat. Returns the item, or
   * `null` when it was done or failed already (or does not exist).
   *
   * @param key - the item key
   * @param options - `reason` (stored as `lastError`) and `stage` (when a status is claimed from by several stages)
   * @example
   * ```ts
   * await tracker.cancel({ logId: 'L-1', partnerCode: 'acme' }, { reason: 'partner withdrew the file' });
   * ```
   */
  async cancel(key: z.input<K>, options: { reason?: string; stage?: keyof St & string } = {}): Promise<Item<S, z.output<K>, z.output<D>> | null> {
    return (await operating.cancel(this.#core, key, options)) as Item<S, z.output<K>, z.output<D>> | null;
  }

  /**
   * Operator reschedule: a waiting item is not claimable before `notBefore` (or for `delayMs`).
   *
   * @param key - the item key
   * @param options - `notBefore` (a Date) or `delayMs`
   * @example
   * ```ts
   * await tracker.reschedule(key, { notBefore: new Date('2026-12-01T06:00:00Z') });
   * ```
   */
  async reschedule(key: z.input<K>, options: ScheduleOptions): Promise<Item<S, z.output<K>, z.output<D>> | null> {
    return (await operating.reschedule(this.#core, key, options)) as Item<S, z.output<K>, z.output<D>> | null;
  }

  /**
   * Deletes finished items (a done status no stage claims from, or a failed status), optionally
   * only those finished before `finishedBefore`, in batches of 500. Refuses statuses items wait
   * or are held in with a ConfigError.
   *
   * @param options - `status` (a finished status), `finishedBefore` and `limit`
   * @example
   * ```ts
   * const weekAgo = new Date(Date.now() - 7 * 24 * 3600_000);
   * const { deleted } = await tracker.purge({ status: 'processed', finishedBefore: weekAgo });
   * ```
   */
  purge(options: operating.PurgeOptions<S>): Promise<PurgeResult> {
    return operating.purge(this.#core, options);
  }

  /**
   * The item with this key, or `null`.
   *
   * @param key - the item key
   * @example
   * ```ts
   * const item = await tracker.get({ logId: 'L-1', partnerCode: 'acme' });
   * console.log(item?.status, item?.lastError);
   * ```
   */
  async get(key: z.input<K>): Promise<Item<S, z.output<K>, z.output<D>> | null> {
    return (await reading.get(this.#core, key)) as Item<S, z.output<K>, z.output<D>> | null;
  }

  /**
   * Items in the given status(es) (all when absent; none for an empty list), in eligible order, up to `limit` (default
   * 1000). `undeclared: true` finds items left in statuses the definition no longer declares.
   * An item whose stored key or data no longer fits the schema throws its ValidationError
   * (`stored: true`); with `onInvalid`, it is handed to that function instead (with the item's
   * status and stage) and the others are returned (it still counts towards `limit`).
   *
   * @param query - `status` (one or several), `undeclared`, `limit` (default 1000), and `onInvalid`
   * @example
   * ```ts
   * const parked = await tracker.find({ status: 'failed', limit: 50 });
   * const broken: unknown[] = [];
   * const readable = await tracker.find({ status: 'failed', onInvalid: (error) => broken.push(error.key) });
   * ```
   */
  async find(
    query: { status?: S | readonly S[]; undeclared?: boolean; limit?: number; onInvalid?: (error: ValidationError, item: { status: string; stage: string | null }) => void } = {},
  ): Promise<Array<Item<S, z.output<K>, z.output<D>>>> {
    return (await reading.find(this.#core, query)) as Array<Item<S, z.output<K>, z.output<D>>>;
  }

  /**
   * Counts per status and per stage, expired leases, waiting and claimable items, in one store call.
   *
   * @example
   * ```ts
   * const { byStatus, stages } = await tracker.stats();
   * console.log(byStatus.failed, stages.download.claimable);
   * ```
   */
  async stats(): Promise<TrackerStats<S, keyof St & string>> {
    return (await reading.stats(this.#core)) as TrackerStats<S, keyof St & string>;
  }
}
