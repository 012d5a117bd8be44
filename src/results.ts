import type { LeaseLostError } from './errors.js';

/** A partial data value merged over the current data by `complete`. */
export type DataPatch<D> = D extends Record<string, unknown> ? Partial<D> : D;

/**
 * A lease of a batch that settled: where its item is now. Batch results carry only this, not
 * the whole item, so that settling many items costs little per item; read an item with
 * `get(lease.key)` where more is needed.
 */
export interface BatchSuccess<L, S extends string = string> {
  /** It settled. */
  readonly ok: true;
  /** The lease. */
  readonly lease: L;
  /** The item's status now: the done status it completed into, the status a retry waits in, or the failed status. */
  readonly status: S;
  /**
   * When the item can be claimed next (store clock), if its status is one a stage claims from
   * (a retry after backoff, or a completion into the next stage's `from`); otherwise `null`.
   */
  readonly notBefore: Date | null;
}

/** A lease of a batch that was refused; nothing was changed for it. */
export interface BatchFailure<L> {
  /** It did not settle. */
  readonly ok: false;
  /** The lease. */
  readonly lease: L;
  /** Why: the lease is no longer held. */
  readonly error: LeaseLostError;
}

/** Result of one lease in a batch settle: where the item is now, or why it was refused. */
export type BatchResult<L, S extends string = string> = BatchSuccess<L, S> | BatchFailure<L>;

/** Result of {@link Tracker.track}. */
export interface TrackResult<I> {
  /** The item: the new one, or the one already tracked under the key (unchanged). */
  readonly item: I;
  /** Whether this call created it. */
  readonly created: boolean;
}

/** Counts returned by {@link Tracker.stats}. `N` is the stage names. */
export interface TrackerStats<S extends string, N extends string = string> {
  /** Items per status (every declared status is present). */
  readonly byStatus: Readonly<Record<S, number>>;
  /** All items. */
  readonly total: number;
  /** Items in an active status whose lease has expired (waiting for `reapStale`). */
  readonly expiredLeases: number;
  /** Items in a stage's `from` status that are not claimable yet (backoff or scheduled). */
  readonly waiting: number;
  /** Items in a stage's `from` status that a worker may claim now. */
  readonly claimable: number;
  /**
   * Items in statuses the definition does not declare (left by an older definition), by status.
   * Find them with `find({ undeclared: true })`.
   */
  readonly undeclared: Readonly<Record<string, number>>;
  /** Per stage: what waits for it, what it holds, and where its items ended. */
  readonly stages: Readonly<Record<N, StageStats>>;
}

/** Counts of one stage in {@link TrackerStats}. A status shared by stages counts in each. */
export interface StageStats {
  /** In a `from` status, not claimable yet (backoff or scheduled). */
  readonly waiting: number;
  /** In a `from` status, claimable now. */
  readonly claimable: number;
  /** Held by a worker, lease live. */
  readonly active: number;
  /** Held, but the lease expired (the reaper will hand it on). */
  readonly expired: number;
  /** In one of the stage's `done` statuses. */
  readonly done: number;
  /** In the stage's failed status. */
  readonly failed: number;
}

/** Result of {@link Tracker.reapStale}. */
export interface ReapResult {
  /** Expired leases handed back for another attempt. */
  readonly retried: number;
  /** Expired leases whose attempts ran out, parked in the failed status. */
  readonly failed: number;
}
