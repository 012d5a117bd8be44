/**
 * The store adapter interface. The Tracker builds small typed {@link Condition}s and
 * {@link Change}s; a store compiles them to its own query language and runs each call as
 * one conditional operation. No raw MongoDB filter or SQL crosses this boundary.
 *
 * See `docs/writing-a-store.md` for the contract table.
 * @module
 */

/** The scalar types a key field may have. */
export type KeyFieldType = 'string' | 'number' | 'boolean' | 'date';

/** A key field value. */
export type KeyScalar = string | number | boolean | Date;

/** An item key as the store sees it: declared field name to scalar. */
export type KeyValues = Readonly<Record<string, KeyScalar>>;

/** One key field of a {@link StoreSchema}. */
export interface KeyField {
  /** The field name (letters, digits and `_`; any name, `id` and `status` included). */
  readonly name: string;
  /** Its scalar type. */
  readonly type: KeyFieldType;
}

/** The shape a store must be able to hold, passed to {@link Store.init}. */
export interface StoreSchema {
  /** The key fields in declaration order, with their scalar type. */
  readonly keyFields: readonly KeyField[];
  /**
   * The statuses some stage claims from. A store that wakes workers in other processes (see
   * {@link Store.watch}) tells them when a write puts an item into one of these, or moves the
   * deadline of an item waiting in one, in the same statement as the write (PostgreSQL: a
   * `NOTIFY`). Writes into other statuses (claims, renews, completions into a final status)
   * tell no one.
   * @default [] (nothing to tell)
   */
  readonly claimable?: readonly string[];
}

/**
 * An item's state without its data: what most transitions need back. `deadline` is the one
 * time field that means "not claimable before" while the item waits, "lease expires at" while
 * it is held, and "finished at" once it reached a status no stage claims from, so that one
 * `(status, deadline)` index serves claim-next, backoff, reap and purge.
 */
export interface ItemState {
  /**
   * The store's own identity of the row or document (`id`, `_id`, ...), stable for the item's
   * life and never reused by another item with the same key. Opaque to the Tracker.
   */
  readonly ref: unknown;
  /** Key field values. */
  readonly key: KeyValues;
  /** Current status. */
  readonly status: string;
  /** The stage of the latest claim, cancel or park (`null` before any). */
  readonly stage: string | null;
  /** Claims so far in the current stage. */
  readonly attempts: number;
  /** Fencing token; increases on every claim, reap and cancel. */
  readonly fence: number;
  /** Holder of the current lease; while not active, of the last one (`null` if never claimed). */
  readonly owner: string | null;
  /** See above. */
  readonly deadline: Date;
  /** Message of the last failure. */
  readonly lastError: string | null;
  /** When the item was tracked (store clock). */
  readonly createdAt: Date;
  /** When the item last changed (store clock). */
  readonly updatedAt: Date;
  /** When the item was last claimed (store clock). */
  readonly claimedAt: Date | null;
  /** When the item reached a done or failed status (store clock). */
  readonly finishedAt: Date | null;
}

/** An item as stored: its state and its data (validated by the Tracker when read). */
export interface StoredItem extends ItemState {
  /**
   * User data in leasehold's storable form: plain objects, arrays, strings, finite numbers,
   * booleans, `null` and `Date`s. `undefined` where the caller asked for `returning: 'state'`.
   */
  readonly data: unknown;
  /**
   * Only on the results of an update asked for {@link UpdateOptions.priorDeadline}: the item's
   * deadline just before this update. For a claim, when the item became claimable.
   */
  readonly priorDeadline?: Date;
}

/** Which items an operation applies to. All given parts must hold (AND). */
export interface Condition {
  /** The item must be this stored row (see {@link ItemState.ref}). */
  readonly ref?: unknown;
  /** The item must have exactly this key. */
  readonly key?: KeyValues;
  /** The item's status must be one of these (an empty list means any status). */
  readonly status: readonly string[];
  /** The item's status must be none of these. */
  readonly notStatus?: readonly string[];
  /** The item's recorded stage must be this one. */
  readonly stage?: string;
  /** The item's fence must equal this. */
  readonly fence?: number;
  /**
   * `passed`: the deadline is at or before the store's now (claimable / expired);
   * `future`: the deadline is after the store's now (waiting / lease live);
   * `{ before }`: the deadline is before this instant (finished before it).
   */
  readonly deadline?: 'passed' | 'future' | DeadlineBefore;
}

/** A deadline before an instant (`purge`'s `finishedBefore`). */
export interface DeadlineBefore {
  /** The deadline must be earlier than this. */
  readonly before: Date;
}

/** A deadline: the store's now plus `ms`, or a given instant. */
export type Delay = RelativeDelay | AbsoluteDelay;

/** A deadline relative to the store's now. */
export interface RelativeDelay {
  /** Milliseconds after the store's now. */
  readonly ms: number;
}

/** A deadline at a given instant. */
export interface AbsoluteDelay {
  /** The instant. */
  readonly at: Date;
}

/**
 * What an update does to each matching item. `updatedAt` is always set to the store's
 * now; fields left `undefined` keep their value.
 */
export interface Change {
  /** The new status (unchanged when absent). */
  readonly status?: string;
  /** The stage to record. */
  readonly stage?: string;
  /** New owner (`null` clears it). */
  readonly owner?: string | null;
  /** `fence + 1` (every claim, reap and cancel). */
  readonly bumpFence?: boolean;
  /**
   * `increment`: `attempts + 1` and `claimedAt = now` (every claim); `decrement`: `attempts - 1`
   * (a release, never below 0); `reset`: `attempts = 0` (a completed stage, an operator retry).
   */
  readonly attempts?: 'increment' | 'decrement' | 'reset';
  /** New deadline. */
  readonly deadline?: Delay;
  /** Replaces the data (storable form). */
  readonly data?: unknown;
  /** New last error (`null` clears it). */
  readonly lastError?: string | null;
  /** `true`: `finishedAt = now`; `false`: `finishedAt = null`. */
  readonly finished?: boolean;
}

/** What a call returns for each item. */
export type Returning = 'item' | 'state';

/** Options of {@link Store.update}. */
export interface UpdateOptions {
  /** Update at most this many items (all matching when absent). */
  readonly limit?: number;
  /** With `limit`: take items in eligible order (earliest deadline, then insertion). */
  readonly ordered?: boolean;
  /**
   * `state`: the store may leave `data` out of what it returns (less to send and decode).
   * @default 'item'
   */
  readonly returning?: Returning;
  /**
   * The caller reads only the {@link ItemOutcome} fields of each result (a settle, whose item
   * the Tracker rebuilds from the lease): a store may return just those (the other fields are
   * then unspecified). A store that ignores this returns what `returning` asks for.
   * @default false
   */
  readonly outcomeOnly?: boolean;
  /**
   * Also return each updated item's deadline from before the update, as
   * {@link StoredItem.priorDeadline}: a claim reports how long its item had been claimable
   * (`claimed`'s `waitedMs`, OpenTelemetry's `leasehold.pickup.delay`). The Tracker asks only
   * while someone listens to `claimed`. A store that leaves it out makes `waitedMs` 0 (and says
   * whether it fills it in `capabilities.priorDeadline`).
   * @default false
   */
  readonly priorDeadline?: boolean;
}

/** Options of {@link Store.updateEach}. */
export interface UpdateEachOptions {
  /**
   * `state`: the store may leave `data` out of what it returns.
   * @default 'item'
   */
  readonly returning?: Returning;
  /**
   * The caller reads only the {@link ItemOutcome} fields of each result (`ref`, `status`,
   * `fence`, `deadline`, `updatedAt`): a batch settle. A store may then return just those (the other fields
   * of the returned objects are unspecified), which is less to send and decode. A store that
   * ignores this returns what `returning` asks for.
   * @default false
   */
  readonly outcomeOnly?: boolean;
}

/** The fields of an update's result that a store fills when asked for `outcomeOnly`. */
export type ItemOutcome = Pick<ItemState, 'ref' | 'status' | 'fence' | 'deadline' | 'updatedAt'>;

/** Options of {@link Store.find}. */
export interface FindOptions {
  /** At most this many items. */
  readonly limit?: number;
  /**
   * `state`: the store may leave `data` out.
   * @default 'item'
   */
  readonly returning?: Returning;
}

/** The guard of a lease: this item, in this active status, with this fence. */
export interface LeaseGuard {
  /** The stored row (see {@link ItemState.ref}). */
  readonly ref: unknown;
  /** The item key. */
  readonly key: KeyValues;
  /** The active status the lease holds it in. */
  readonly status: string;
  /** The lease's fence. */
  readonly fence: number;
  /** Also require the lease to have expired by the store's clock (a reap). */
  readonly expired?: boolean;
}

/**
 * `key` with its `Date` values copied (a `Date` is an object its holder can change, and a key held
 * for a guard or stored must not change with it); `key` itself when it holds none.
 */
export function copyKey(key: KeyValues): KeyValues {
  let out: Record<string, KeyScalar> | undefined;
  for (const name in key) {
    const value = key[name]!;
    if (value instanceof Date) (out ??= { ...key })[name] = new Date(value.getTime());
  }
  return out ?? key;
}

/** The guard as a {@link Condition}, for stores that settle a batch one update at a time. */
export function guardCondition(guard: LeaseGuard): Condition {
  return {
    ref: guard.ref,
    key: guard.key,
    status: [guard.status],
    fence: guard.fence,
    ...(guard.expired ? { deadline: 'passed' as const } : {}),
  };
}

/** One guarded update of a batch; see {@link Store.updateEach}. */
export interface GuardedUpdate {
  /** The lease whose guard must hold. */
  readonly guard: LeaseGuard;
  /** The change to apply when the guard holds. */
  readonly change: Change;
}

/** Counts of one status, as returned by {@link Store.stats}. */
export interface StatusCount {
  /** Items in this status. */
  readonly total: number;
  /** Of those, items whose deadline is after the store's now (backoff, scheduled, live lease). */
  readonly future: number;
}

/** Counts returned by {@link Store.stats}. */
export interface StoreStats {
  /** Per status present in the store (statuses with no items may be absent). */
  readonly byStatus: Readonly<Record<string, StatusCount>>;
}

/** An item to insert. */
export interface NewItem {
  /** Its key. */
  readonly key: KeyValues;
  /** Its initial status. */
  readonly status: string;
  /** Its data (storable form). */
  readonly data: unknown;
  /**
   * Not claimable before this deadline (scheduled work).
   * @default the store's now
   */
  readonly deadline?: Delay;
}

/** Result of {@link Store.insert}. */
export interface InsertResult {
  /** The stored item: the new one, or the one that already had the key. */
  readonly item: StoredItem;
  /** Whether this call created it. */
  readonly created: boolean;
}

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
   *   {@link ItemOutcome} fields
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
