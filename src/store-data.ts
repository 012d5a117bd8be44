/**
 * The shapes a store reads and writes: keys, items, the conditions and changes the Tracker
 * builds, the options of each call, and the guard of a settle. Re-exported by `store.ts`.
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
  /**
   * The item's recorded stage must be none of these (an item with no stage recorded matches).
   * Not given with `stage`.
   */
  readonly notStage?: readonly string[];
  /** The item's fence must equal this. */
  readonly fence?: number;
  /**
   * `passed`: the deadline is at or before the store's now (claimable / expired);
   * `future`: the deadline is after the store's now (waiting / lease live);
   * `{ before }`: the deadline is before this instant, or before the store's now plus `ms`
   * (finished before it).
   */
  readonly deadline?: 'passed' | 'future' | DeadlineBefore;
}

/** A deadline before an instant (`purge`'s `finishedBefore`), or before a time relative to the store's now (`purge`'s `olderThanMs`: `{ ms: -olderThanMs }`). */
export interface DeadlineBefore {
  /** The deadline must be earlier than this instant, or than the store's now plus `ms`. */
  readonly before: Date | RelativeDelay;
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
   * The caller reads only the {@link SettleOutcome} fields of each result: `ref`, `status`, and
   * `deadline` where the status is one some stage claims from ({@link StoreSchema.claimable}):
   * a batch settle. A store may then return just those (the other fields of the returned
   * objects are unspecified), which is less to send and decode. A store that ignores this
   * returns what `returning` asks for.
   * @default false
   */
  readonly outcomeOnly?: boolean;
}

/** The fields of an update's result that a store fills when asked for `outcomeOnly`. */
export type ItemOutcome = Pick<ItemState, 'ref' | 'status' | 'fence' | 'deadline' | 'updatedAt'>;

/**
 * The fields of a batch settle's result that a store fills when asked for `outcomeOnly`
 * ({@link UpdateEachOptions}): where the item is now. `deadline` may be left out where `status`
 * is not one a stage claims from: nobody reads it there.
 */
export interface SettleOutcome {
  /** The store's identity of the row. */
  readonly ref: unknown;
  /** The item's status after the update. */
  readonly status: string;
  /** The deadline after the update: filled at least where `status` is one a stage claims from. */
  readonly deadline?: Date;
}

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
