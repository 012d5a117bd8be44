/**
 * What a worker runs beside its loop: resending a settle after a transient fault, and
 * retention purges.
 * @module
 */
import { StoreError } from './errors.js';
import { leaseState, type Lease } from './lease.js';
import { errorMessage } from './transitions.js';
import type { Retention } from './work-options.js';
import type { Driver, Internals } from './worker-types.js';

/** The waits before a complete or fail that failed with a transient StoreError is sent again. */
const SETTLE_RETRY_MS = [100, 500, 2_000];

/**
 * Sends a complete or fail; after a StoreError that says the fault passes (a dropped
 * connection, a failover), sends it again — up to three more times, while the lease is held
 * and the worker has not handed it back at a stop — rather than leave the item to the reaper.
 * Resending is safe: a settle whose answer was lost and that did apply is found where it put
 * the item, and taken as done (see the tracker's settle), never reported as a lost lease.
 */
export async function sendSettle(lease: Lease, operation: string, send: () => Promise<unknown>, warn: (message: string) => void): Promise<void> {
  for (let retry = 0; ; retry++) {
    try {
      await send();
      return;
    } catch (error) {
      const wait = SETTLE_RETRY_MS[retry];
      if (!(error instanceof StoreError && error.transient) || wait === undefined || lease.settled) throw error;
      warn(`${operation} failed (${errorMessage(error)}); sending it again in ${wait} ms`);
      const slept = await sleepUnlessAborted(wait, lease.signal);
      // a renew meanwhile found that the settle had applied (and reported it)
      if (leaseState(lease)?.inDoubt?.applied) return;
      if (!slept) throw error;
    }
  }
}

/** Waits `ms`; `false` when `signal` aborted first. */
function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Starts a worker's retention timers: each purges its status's items finished more than
 * `olderThanMs` ago, every `everyMs`; `purges` holds those under way (`stop()` waits for them).
 */
export function startRetention(retention: readonly Required<Retention>[], driver: Pick<Driver<Lease>, 'purge'>, internals: Pick<Internals, 'reportError'>, purges: Set<Promise<unknown>>): Array<ReturnType<typeof setInterval>> {
  return retention.map(({ status, olderThanMs, everyMs }) => {
    let running = false;
    const timer = setInterval(() => {
      // one purge of a status at a time: one that outlasts `everyMs` is not joined by another
      if (running) return;
      running = true;
      const purge = driver
        .purge({ status, finishedBefore: new Date(Date.now() - olderThanMs) })
        .catch((error: unknown) => internals.reportError('purge', error))
        .finally(() => {
          running = false;
          purges.delete(purge);
        });
      purges.add(purge);
    }, everyMs);
    timer.unref?.();
    return timer;
  });
}
