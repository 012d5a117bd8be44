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
  /** The field name (letters, digits and `_`). */
  readonly name: string;
  /** Its scalar type. */
  readonly type: KeyFieldType;
}

/** The shape a store must be able to hold, passed to {@link Store.init}. */
export interface StoreSchema {
  /** The key fields in declaration order, with their scalar type. */
  readonly keyFields: readonly KeyField[];
}

/**
 * An item as stored. `deadline` is the one time field that means "not claimable before"
 * while the item waits and "lease expires at" while it is held, so that one
 * `(status, deadline)` index serves claim-next, backoff and reap.
 */
export interface StoredItem {
  /** Key field values. */
  readonly key: KeyValues;
  /** Current status. */
  readonly status: string;
  /** User data (validated by the Tracker when read). */
  readonly data: unknown;
  /** Claims so far. */
  readonly attempts: number;
  /** Fencing token; increases on every claim and every reap. */
  readonly fence: number;
  /** Holder of the current lease; while not active, of the last one (`null` if never claimed). */
  readonly owner: string | null;
  /** Lease expiry while active; otherwise "not claimable before". */
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

/** Bounds on an item's `attempts`. */
export interface AttemptBounds {
  /** `attempts >= gte`. */
  readonly gte?: number;
  /** `attempts < lt`. */
  readonly lt?: number;
}

/** Which items an operation applies to. All given parts must hold (AND). */
export interface Condition {
  /** The item must have exactly this key. */
  readonly key?: KeyValues;
  /** The item's status must be one of these. */
  readonly status: readonly string[];
  /** The item's fence must equal this. */
  readonly fence?: number;
  /** Bounds on `attempts`. */
  readonly attempts?: AttemptBounds;
  /**
   * `passed`: the deadline is at or before the store's now (claimable / expired);
   * `future`: the deadline is after the store's now (waiting / lease live).
   */
  readonly deadline?: 'passed' | 'future';
}

/** A fixed delay in milliseconds. */
export interface FixedDelay {
  /** Milliseconds after the store's now. */
  readonly ms: number;
}

/** A delay chosen by the item's `attempts` (unchanged by the update that uses it). */
export interface AttemptDelay {
  /** `msByAttempts[attempts]` milliseconds after the store's now; the last entry when out of range. */
  readonly msByAttempts: readonly number[];
}

/** A delay measured from the store's clock at the time of the update. */
export type Delay = FixedDelay | AttemptDelay;

/**
 * What an update does to each matching item. `updatedAt` is always set to the store's
 * now; fields left `undefined` keep their value.
 */
export interface Change {
  /** The new status. */
  readonly status: string;
  /** New owner (`null` clears it). */
  readonly owner?: string | null;
  /** `fence + 1` (every claim and every reap). */
  readonly bumpFence?: boolean;
  /**
   * `increment`: `attempts + 1` and `claimedAt = now` (every claim); `decrement`: `attempts - 1`
   * (a release); `reset`: `attempts = 0` (a completed stage).
   */
  readonly attempts?: 'increment' | 'decrement' | 'reset';
  /** New deadline: the store's now plus the delay. */
  readonly deadline?: Delay;
  /** Replaces the data. */
  readonly data?: unknown;
  /** New last error (`null` clears it). */
  readonly lastError?: string | null;
  /** `true`: `finishedAt = now`; `false`: `finishedAt = null`. */
  readonly finished?: boolean;
}

/** Options of {@link Store.update}. */
export interface UpdateOptions {
  /** Update at most this many items (all matching when absent). */
  readonly limit?: number;
  /** With `limit`: take items in eligible order (earliest deadline, then insertion). */
  readonly ordered?: boolean;
}

/** The guard of a lease: this item, in this active status, with this fence. */
export interface LeaseGuard {
  /** The item key. */
  readonly key: KeyValues;
  /** The active status the lease holds it in. */
  readonly status: string;
  /** The lease's fence. */
  readonly fence: number;
}

/** The guard as a {@link Condition}, for stores that settle a batch one update at a time. */
export function guardCondition(guard: LeaseGuard): Condition {
  return { key: guard.key, status: [guard.status], fence: guard.fence };
}

/** One guarded update of a batch; see {@link Store.updateEach}. */
export interface GuardedUpdate {
  /** The lease whose guard must hold. */
  readonly guard: LeaseGuard;
  /** The change to apply when the guard holds. */
  readonly change: Change;
}

/** Counts returned by {@link Store.stats}. */
export interface StoreStats {
  /** Items per status (statuses with no items may be absent). */
  readonly byStatus: Readonly<Record<string, number>>;
  /** Items in one of the given active statuses whose lease has expired. */
  readonly expired: number;
  /** Items in any other status whose deadline is still in the future (backoff). */
  readonly waiting: number;
}

/** An item to insert. */
export interface NewItem {
  /** Its key. */
  readonly key: KeyValues;
  /** Its initial status. */
  readonly status: string;
  /** Its data. */
  readonly data: unknown;
}

/** Result of {@link Store.insert}. */
export interface InsertResult {
  /** The stored item: the new one, or the one that already had the key. */
  readonly item: StoredItem;
  /** Whether this call created it. */
  readonly created: boolean;
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
}

/**
 * A store adapter: six methods, each one conditional operation whose result says whether it
 * took effect. Stores read the time from their own clock for `deadline`, `createdAt`, etc.
 */
export interface Store {
  /** Short name for messages: `memory`, `mongodb`, `postgres`, `sqlite`. */
  readonly name: string;
  /** What the store can do in one round trip. */
  readonly capabilities: StoreCapabilities;
  /** Creates tables/collections and indexes if missing. Idempotent, safe concurrently. */
  init(schema: StoreSchema): Promise<void>;
  /**
   * Inserts the item with `deadline = createdAt = now`, attempts and fence 0, unless an item
   * with its key exists. Returns the stored item and whether it was created.
   */
  insert(item: NewItem): Promise<InsertResult>;
  /** Applies `change` to the items matching `cond` (one statement); returns them as updated. */
  update(cond: Condition, change: Change, options?: UpdateOptions): Promise<StoredItem[]>;
  /**
   * Applies each update where its lease guard holds (key, active status, fence); returns, in
   * order, the updated item or `null` where the guard did not hold.
   */
  updateEach(updates: readonly GuardedUpdate[]): Promise<Array<StoredItem | null>>;
  /** Items matching `cond` (status may be empty to mean any), in eligible order. */
  find(cond: Partial<Condition>, options?: { readonly limit?: number }): Promise<StoredItem[]>;
  /** Counts per status, expired leases among `active`, and items waiting on backoff. */
  stats(active: readonly string[]): Promise<StoreStats>;
}
