/**
 * The heartbeat of a lease a worker holds. Internal.
 * @module
 */
import { LeaseLostError, StoreError } from './errors.js';
import { abortLease, leaseState, type Lease } from './lease.js';
import { MAX_TIMER_MS } from './validate.js';

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
 * watchdog aborts `lease.signal` the moment the lease can no longer be proven held (a ttl since
 * the last claim or renew that succeeded was sent), even while a renew hangs on a half-open
 * connection. No renew is sent while the lease is being settled.
 */
export function startHeartbeat<L extends Lease>(lease: L, options: HeartbeatOptions<L>): () => void {
  const state = leaseState(lease)!;
  const { ttlMs, everyMs, timeoutMs } = options;
  let inFlight = 0;
  let stopped = false;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    stopped = true;
    clearInterval(timer);
    clearTimeout(watchdog);
  };
  // fires when the lease's proof runs out; a renew that succeeded meanwhile moved the proof on,
  // and the watchdog sleeps again until the new end
  const watch = () => {
    if (stopped || lease.settled) return stop();
    const left = state.provenAt + ttlMs - performance.now();
    if (left <= 0) {
      // past the ttl another worker may hold the item: tell the handler to stop
      state.unproven = true;
      abortLease(state, new Error(`[leasehold] lease of ${JSON.stringify(lease.key)} could not be renewed for a whole ttl (${ttlMs} ms); it may be held by another worker now`));
      return stop();
    }
    watchdog = setTimeout(watch, Math.min(MAX_TIMER_MS, Math.ceil(left)));
    watchdog.unref?.();
  };
  const timer = setInterval(() => {
    if (stopped || lease.settled) return stop();
    // a settle in flight decides the lease; a renew now could only race it
    if (state.settling > 0) return;
    // hung renews are not stacked up without bound: one counts until its store call returns,
    // not until its timeout (a renew that never answers stays counted)
    if (inFlight > 0 && inFlight >= Math.max(1, Math.floor(ttlMs / everyMs))) return;
    inFlight++;
    const sent = options.renew(lease);
    const answered = () => void inFlight--;
    sent.then(answered, answered);
    let timeout: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timeout = setTimeout(() => {
        const cause = Object.assign(new Error(`no answer within ${timeoutMs} ms (\`renewTimeoutMs\`); timed out`), { code: 'ETIMEDOUT' });
        reject(new StoreError({ operation: 'renew', store: options.store, key: lease.key, cause }));
      }, timeoutMs);
    });
    Promise.race([sent, timedOut])
      .catch((error: unknown) => {
        if (error instanceof LeaseLostError) return stop();
        options.report(error);
      })
      .finally(() => clearTimeout(timeout));
  }, everyMs);
  // the handler keeps the process alive while it runs; a heartbeat alone never does
  timer.unref?.();
  watch();
  return stop;
}
