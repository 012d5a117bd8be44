import type { LeaseLostError } from './errors.js';

/** A partial data value merged over the current data by `complete`. */
export type DataPatch<D> = D extends Record<string, unknown> ? Partial<D> : D;

/** A lease of a batch that settled. */
export interface BatchSuccess<L, I> {
  /** It settled. */
  readonly ok: true;
  /** The lease. */
  readonly lease: L;
  /** The item as updated. */
  readonly item: I;
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

/** Result of one lease in a batch settle: the updated item, or why it was refused. */
export type BatchResult<L, I> = BatchSuccess<L, I> | BatchFailure<L>;

/** Result of {@link Tracker.track}. */
export interface TrackResult<I> {
  /** The item: the new one, or the one already tracked under the key (unchanged). */
  readonly item: I;
  /** Whether this call created it. */
  readonly created: boolean;
}

/** Counts returned by {@link Tracker.stats}. */
export interface TrackerStats<S extends string> {
  /** Items per status (every declared status is present). */
  readonly byStatus: Readonly<Record<S, number>>;
  /** All items. */
  readonly total: number;
  /** Items in an active status whose lease has expired (waiting for `reapStale`). */
  readonly expiredLeases: number;
  /** Items waiting on backoff (not claimable yet). */
  readonly waiting: number;
}

/** Result of {@link Tracker.reapStale}. */
export interface ReapResult {
  /** Expired leases handed back for another attempt. */
  readonly retried: number;
  /** Expired leases whose attempts ran out, parked in the failed status. */
  readonly failed: number;
}
