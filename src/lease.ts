import type { Item } from './codec.js';
import type { Change, ItemOutcome, KeyValues, SettleOutcome, Store } from './store.js';

/** How a lease was settled by this process, for messages. */
export type SettledBy = 'completed' | 'failed' | 'released' | 'lost';

/** Mutable lease state, kept out of the public object. */
export interface LeaseState {
  /** The store the lease was claimed through: a tracker on it (or on one with its `location`) settles it. */
  readonly store: Store;
  readonly storeKey: KeyValues;
  /** The store's identity of the row. */
  readonly ref: unknown;
  /** The data as stored when claimed (storable form): a data patch merges over it. */
  readonly storedData: unknown;
  /** `performance.now()` at claim, for durations. */
  readonly startedAt: number;
  /**
   * `performance.now()` when the last claim or renew that succeeded was sent: the store set the
   * lease to expire a ttl after it received that call, so the lease is proven held until this
   * plus the ttl (by this process's clock, which only measures the interval).
   */
  provenAt: number;
  expiresAt: Date;
  /** Settles (complete, fail, release) sent and not yet answered: a renew that fails meanwhile lost no lease. */
  settling: number;
  settled: boolean;
  settledBy: SettledBy | undefined;
  /**
   * Settles whose store call failed without an answer (a dropped connection, a timeout): each
   * may have applied. A later call on the lease that finds it gone reads the item, and if the
   * item is where one of them put it, takes that one as applied (`recovered`).
   */
  inDoubt: InDoubt[] | undefined;
  /** The settle in doubt found applied, and where the item was then. */
  recovered: { readonly applied: InDoubt; readonly outcome: ItemOutcome } | undefined;
  /** Created on first use: most leases never have their signal read. */
  controller: AbortController | undefined;
  /** Set when the lease was aborted before anyone asked for its signal. */
  reason: unknown;
  /** The heartbeat gave the lease up: not renewed for a whole ttl (its signal aborted for that). */
  unproven?: boolean;
}

/** A settle that may have applied (see {@link LeaseState.inDoubt}). */
export interface InDoubt {
  readonly by: Exclude<SettledBy, 'lost'>;
  readonly change: Change;
  /** The decoded data it wrote, when it wrote data. */
  readonly data?: { readonly value: unknown };
  /** Reports it as applied (marks the lease settled, emits its event). */
  readonly done: (outcome: SettleOutcome) => void;
}

/** Aborts the lease's signal (now, or when it is first read). */
export function abortLease(state: LeaseState, reason: unknown): void {
  if (state.controller) state.controller.abort(reason);
  else state.reason ??= reason;
}

// set by the Lease class: its state is a private field (a WeakMap entry per lease cost the
// garbage collector more than the rest of a claim)
let readState: (lease: object) => LeaseState | undefined;

/** @internal Reads a lease's hidden state; `undefined` for objects that are not leases. */
export function leaseState(lease: object): LeaseState | undefined {
  return readState(lease);
}

/**
 * A claim on one item for one stage. Every call that settles or renews it is guarded by its
 * `fence`: once the store holds a newer fence, the lease is lost and those calls throw
 * `LeaseLostError` without changing anything.
 *
 * Pass `fence` on to your own writes ("write only if the stored fence is not newer") to fence
 * side effects too.
 */
export class Lease<Stage extends string = string, K = unknown, D = unknown, S extends string = string> {
  /** The stage this lease was claimed for. */
  readonly stage: Stage;
  /** The item key. */
  readonly key: K;
  /** The fencing token: larger than every earlier claim's of this item (an item purged and tracked again starts anew). */
  readonly fence: number;
  /** Who holds the lease. */
  readonly owner: string;
  /** Which attempt this is (1 for the first claim). */
  readonly attempt: number;
  /** The item as it was right after the claim. */
  readonly item: Item<S, K, D>;
  readonly #state: LeaseState;

  static {
    readState = (lease) => (#state in lease ? (lease as Lease).#state : undefined);
  }

  /** @internal Created by the Tracker only. */
  constructor(stage: Stage, owner: string, item: Item<S, K, D>, stored: { store: Store; key: KeyValues; ref: unknown; data: unknown; sentAt: number }) {
    this.stage = stage;
    this.owner = owner;
    this.item = item;
    this.key = item.key;
    this.fence = item.fence;
    this.attempt = item.attempts;
    this.#state = {
      store: stored.store,
      storeKey: stored.key,
      ref: stored.ref,
      storedData: stored.data,
      startedAt: performance.now(),
      provenAt: stored.sentAt,
      settling: 0,
      expiresAt: item.leaseExpiresAt ?? new Date(0),
      settled: false,
      settledBy: undefined,
      inDoubt: undefined,
      recovered: undefined,
      controller: undefined,
      reason: undefined,
    };
  }

  /**
   * When the lease expires unless renewed (store clock, as of the last claim or renew). It is the
   * store's clock: compared with `Date.now()`, it is off by however far this machine's clock is
   * from the store's (workers renew on their own, by elapsed time; see `work()`'s heartbeat).
   *
   * @example
   * ```ts
   * if (lease.expiresAt.getTime() - Date.now() < 5_000) await tracker.renew(lease);
   * ```
   */
  get expiresAt(): Date {
    return this.#state.expiresAt;
  }

  /**
   * Whether the lease was completed, failed, released or found lost.
   *
   * @example
   * ```ts
   * if (!lease.settled) await tracker.release(lease);
   * ```
   */
  get settled(): boolean {
    return this.#state.settled;
  }

  /**
   * Aborts when the lease is lost or can no longer be renewed, when the worker's `stop()`
   * hands it back, or (with `handlerTimeoutMs`) when the handler runs past its limit, with a
   * `HandlerTimeoutError`; stop work when it fires.
   *
   * @example
   * ```ts
   * const res = await fetch(url, { signal: lease.signal }); // the transfer stops with the lease
   * lease.signal.throwIfAborted();
   * ```
   */
  get signal(): AbortSignal {
    const state = this.#state;
    if (!state.controller) {
      state.controller = new AbortController();
      if (state.reason !== undefined) state.controller.abort(state.reason);
    }
    return state.controller.signal;
  }
}
