/**
 * The heartbeat of a lease a worker holds. Internal.
 * @module
 */
import { LeaseLostError, StoreError } from './errors.js';
import { abortLease, leaseState, type Lease } from './lease.js';

/** What a heartbeat needs. */
export interface HeartbeatOptions<L> {
  readonly ttlMs: number;
  readonly everyMs: number;
  /** How long one renew may take before it counts as failed. */
  readonly timeoutMs: number;
  /** The store's name, for the timeout error. */
  readonly store: string;
  renew(lease: L): Promise<unknown>;
  report(error: unknown): void;
}

/**
 * Renews every `everyMs`; returns a function that stops. Each renew has a timeout, and a
 * watchdog aborts `lease.signal` once the lease can no longer be proven held (a ttl since the
 * last claim or renew that succeeded was sent), even while a renew hangs on a half-open
 * connection.
 */
export function startHeartbeat<L extends Lease>(lease: L, options: HeartbeatOptions<L>): () => void {
  const state = leaseState(lease)!;
  const { ttlMs, everyMs, timeoutMs } = options;
  let inFlight = 0;
  let stopped = false;
  const stop = () => {
    stopped = true;
    clearInterval(timer);
  };
  const timer = setInterval(() => {
    if (stopped || lease.settled) return stop();
    if (performance.now() - state.provenAt >= ttlMs) {
      // past the ttl another worker may hold the item: tell the handler to stop
      abortLease(state, new Error(`[leasehold] lease of ${JSON.stringify(lease.key)} could not be renewed for a whole ttl (${ttlMs} ms); it may be held by another worker now`));
      return stop();
    }
    // hung renews are not stacked up without bound
    if (inFlight > 0 && inFlight >= Math.max(1, Math.floor(ttlMs / everyMs))) return;
    inFlight++;
    let timeout: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timeout = setTimeout(() => {
        const cause = Object.assign(new Error(`no answer within ${timeoutMs} ms (\`renewTimeoutMs\`); timed out`), { code: 'ETIMEDOUT' });
        reject(new StoreError({ operation: 'renew', store: options.store, key: lease.key, cause }));
      }, timeoutMs);
    });
    Promise.race([options.renew(lease), timedOut])
      .catch((error: unknown) => {
        if (error instanceof LeaseLostError) return stop();
        options.report(error);
      })
      .finally(() => {
        clearTimeout(timeout);
        inFlight--;
      });
  }, everyMs);
  // the handler keeps the process alive while it runs; a heartbeat alone never does
  timer.unref?.();
  return stop;
}
