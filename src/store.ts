/**
 * The store adapter interface. The Tracker builds small typed {@link Condition}s and
 * {@link Change}s; a store compiles them to its own query language and runs each call as
 * one conditional operation. No raw MongoDB filter or SQL crosses this boundary.
 *
 * See `docs/writing-a-store.md` for the contract table.
 * @module
 */
import type { Change, Condition, FindOptions, GuardedUpdate, InsertResult, ItemOutcome, NewItem, SettleOutcome, StoreSchema, StoreStats, StoredItem, UpdateEachOptions, UpdateOptions } from './store-data.js';

export * from './store-data.js';

/** Something that became claimable, as a store reports it to {@link Store.watch} listeners. */
export interface StoreChange {
  /**
   * The item's new status. Absent when the store only knows that something changed (SQLite's
   * `data_version`, or a listening connection that was re-established and may have missed
   * notifications): listeners should look.
   */
  readonly status?: string;
  /**
   * When it becomes claimable, if that is later than now, on this process's clock: stores
   * that can send the delay the database measured, added to the time it arrived, so that
   * clock skew between machines does not move the wake-up.
   */
  readonly at?: Date;
}

/**
 * What a store can do, as readonly flags with documented defaults. The Tracker falls back
 * to one call per item where a capability is missing.
 */
export interface StoreCapabilities {
  /**
   * `update` with `limit > 1` claims many items in one round trip.
   * @default false
   */
  readonly batchClaim: boolean;
  /**
   * `updateEach` settles many leases in one round trip.
   * @default false
   */
  readonly batchSettle: boolean;
  /**
   * `update` fills {@link StoredItem.priorDeadline} when asked ({@link UpdateOptions.priorDeadline}),
   * so that `claimed`'s `waitedMs` is measured; the conformance suite then checks it.
   * @default false
   */
  readonly priorDeadline?: boolean;
}

/**
 * A store adapter: a few methods, each one conditional operation whose result says whether it
 * took effect. Stores read the time from their own clock for `deadline`, `createdAt`, etc.
 */
export interface Store {
  /** Short name for messages: `memory`, `mongodb`, `postgres`, `sqlite`, `redis`. */
  readonly name: string;
  /** What the store can do in one round trip. */
  readonly capabilities: StoreCapabilities;
  /**
   * Where the items live, as text that two store objects over the same items share (such as
   * `sqlite:/srv/work.sqlite#jobs`): a lease claimed through one may be settled through the
   * other. Absent: the items are this store object's own (a lease is settled through it only).
   * No secrets: it may appear in messages.
   */
  readonly location?: string;
  /**
   * Creates tables/collections and indexes if missing. Idempotent, safe concurrently.
   *
   * @param schema - the key fields and their types
   *
   * @example
   * ```ts
   * await store.init({ keyFields: [{ name: 'logId', type: 'string' }] }); // tracker.init() does this
   * ```
   */
  init(schema: StoreSchema): Promise<void>;
  /**
   * Inserts the item with `deadline` (default now), `createdAt = now`, attempts and fence 0,
   * unless an item with its key exists. Returns the stored item and whether it was created.
   *
   * @param item - key, status, data (storable form) and an optional deadline
   *
   * @example
   * ```ts
   * const { item, created } = await store.insert({ key: { logId: 'L-1' }, status: 'pending', data: {} });
   * ```
   */
  insert(item: NewItem): Promise<InsertResult>;
  /**
   * Applies `change` to the items matching `cond` (one statement); returns them as updated.
   *
   * @param cond - which items (all parts must hold)
   * @param change - what to do to each
   * @param options - `limit`, `ordered` (claim-next: earliest deadline first), `returning`,
   *   `outcomeOnly` (may return only the {@link ItemOutcome} fields)
   *
   * @example
   * ```ts
   * // claim-next, as the Tracker sends it
   * const [claimed] = await store.update(
   *   { status: ['pending'], deadline: 'passed' },
   *   { status: 'downloading', owner: 'w1', bumpFence: true, attempts: 'increment', deadline: { ms: 30_000 } },
   *   { limit: 1, ordered: true },
   * );
   * ```
   */
  update(cond: Condition, change: Change, options?: UpdateOptions): Promise<StoredItem[]>;
  /**
   * Applies each update where its lease guard holds; returns, in order, the updated item or
   * `null` where the guard did not hold. Optional: without it (or without
   * `capabilities.batchSettle`) the Tracker sends one guarded `update` per lease.
   *
   * @param updates - each a lease guard and the change to apply where it holds
   * @param options - `returning: 'state'` may leave data out; `outcomeOnly` may return only the
   *   {@link SettleOutcome} fields
   *
   * @example
   * ```ts
   * const [done] = await store.updateEach!([{ guard: { ref, key, status: 'downloading', fence: 3 }, change: { status: 'downloaded' } }]);
   * ```
   */
  updateEach?(updates: readonly GuardedUpdate[], options?: UpdateEachOptions): Promise<Array<StoredItem | null>>;
  /**
   * Items matching `cond` (status may be empty to mean any), in eligible order.
   *
   * @param cond - which items
   * @param options - `limit` and `returning`
   *
   * @example
   * ```ts
   * const expired = await store.find({ status: ['downloading'], deadline: 'passed' }, { limit: 500, returning: 'state' });
   * ```
   */
  find(cond: Partial<Condition>, options?: FindOptions): Promise<StoredItem[]>;
  /**
   * Deletes at most `limit` items matching `cond` (oldest deadline first); returns how many.
   *
   * @param cond - which items
   * @param options - `limit`: at most this many
   *
   * @example
   * ```ts
   * const deleted = await store.delete({ status: ['processed'], deadline: { before: weekAgo } }, { limit: 500 });
   * ```
   */
  delete(cond: Condition, options: { readonly limit: number }): Promise<number>;
  /**
   * Counts per status, and how many of each have a deadline in the future.
   *
   *
   * @example
   * ```ts
   * const { byStatus } = await store.stats(); // { pending: { total: 12, future: 3 }, ... }
   * ```
   */
  stats(): Promise<StoreStats>;
  /**
   * Optional: calls `listener` when another client (another process included) makes an item
   * claimable, so that idle workers wake at once. Returns a function that stops listening.
   * The Tracker subscribes only while it has workers, and keeps polling as the safety net
   * (a missed change costs at most one poll delay). Absent: idle workers only poll.
   *
   * @param listener - called with what became claimable (and when, if later)
   *
   * @example
   * ```ts
   * const stop = store.watch?.((change) => console.log('claimable now:', change.status));
   * stop?.();
   * ```
   */
  watch?(listener: (change: StoreChange) => void): () => void;
}
