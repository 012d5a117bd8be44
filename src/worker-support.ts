/**
 * What a worker runs beside its loop: resending a settle after a transient fault, handing leases
 * back at the stop timeout, and retention purges.
 * @module
 */
import { setMaxListeners } from 'node:events';
import { isPlainObject } from './codec.js';
import { ConfigError, HandlerTimeoutError, LeaseLostError, StoreError } from './errors.js';
import { abortLease, leaseState, type Lease } from './lease.js';
import { errorMessage } from './transitions.js';
import type { Retention } from './work-options.js';
import type { Driver, Internals } from './worker-types.js';

/** The waits before a complete or fail that failed with a transient StoreError is sent again. */
const SETTLE_RETRY_MS = [100, 500, 2_000];

/**
 * What a handler returned, as `complete`'s options. An object literal may hold `to` and `data`
 * and nothing else but functions (methods, as the handler types allow): one with other fields
 * (`{ status }` meant as `{ to }`, a driver's result returned by an arrow function) is refused,
 * so that the item is parked with the reason instead of completed into the default done status.
 * Another object (a class instance) is read for its `to` and `data`, as before; any other value
 * (nothing, a boolean, an array) completes the item as it is.
 */
export function handlerOutcome(result: unknown): { to?: unknown; data?: unknown } {
  if (result === null || typeof result !== 'object') return {};
  let extra: string[];
  let to: unknown;
  let data: unknown;
  try {
    if (Array.isArray(result)) return {};
    // a method is no field; a getter is (it is not called here: one that throws parks the item below)
    extra = isPlainObject(result) ? Object.keys(result).filter((k) => k !== 'to' && k !== 'data' && typeof Object.getOwnPropertyDescriptor(result, k)?.value !== 'function') : [];
    if (extra.length === 0) ({ to, data } = result as { to?: unknown; data?: unknown });
  } catch (error) {
    // a throwing getter or proxy: parked with why, not left held until its lease expires
    throw new ConfigError('work.handler', `reading \`to\` or \`data\` of what the handler returned threw (${errorMessage(error)}), so the item was not completed.`);
  }
  if (extra.length > 0) {
    const fields = extra.slice(0, 5).map((k) => `\`${k}\``).join(', ') + (extra.length > 5 ? ', …' : '');
    throw new ConfigError('work.handler', `the handler returned an object with ${fields}; a handler returns nothing, or \`{ to?, data? }\` (a done status, a data patch) to complete the item, so it was not completed.`);
  }
  return { ...(to === undefined ? {} : { to }), ...(data === undefined ? {} : { data }) };
}

/**
 * Sends a complete or fail; after a StoreError that says the fault passes (a dropped
 * connection, a failover), sends it again — up to three more times, while the lease is held —
 * rather than leave the item to the reaper. Resending is safe: a settle whose answer was lost
 * and that did apply is found where it put the item, and taken as done (see the tracker's
 * settle), not reported as a lost lease. Once `stopped` aborts (the worker's stop timeout), the
 * wait ends and the settle is sent one last time at once; nothing is sent after that.
 */
export async function sendSettle(lease: Lease, operation: string, send: () => Promise<unknown>, warn: (message: string) => void, stopped: AbortSignal): Promise<void> {
  for (let retry = 0; ; retry++) {
    try {
      await send();
      return;
    } catch (error) {
      const wait = SETTLE_RETRY_MS[retry];
      if (!(error instanceof StoreError && error.transient) || wait === undefined || lease.settled || stopped.aborted) throw error;
      warn(`${operation} failed (${errorMessage(error)}); sending it again in ${wait} ms`);
      // a lease whose handler timed out (its signal aborted for that) is still held: its fail is
      // sent again as any other settle
      const state = leaseState(lease);
      await sleepUntilAborted(wait, lease.signal.reason instanceof HandlerTimeoutError ? [stopped] : [lease.signal, stopped]);
      // settled meanwhile: a renew found that the settle had applied (and reported it), or found
      // the lease lost (and reported that)
      if (lease.settled) return;
      // the watchdog gave the lease up (not renewed for a ttl), or stop() handed it back:
      // sending again cannot help
      if (state?.unproven || (lease.signal.aborted && !(lease.signal.reason instanceof HandlerTimeoutError))) throw error;
    }
  }
}

/**
 * Hands a lease back at `stop()`'s timeout: stops its heartbeat and releases it, unless it is
 * settled or its own complete or fail is under way (or waits to be resent), which is left to
 * land. `released` learns the release before the lease's signal aborts: a handler that ends on
 * the signal waits for it, and sends its own fail (or complete) only if the release failed —
 * beside it, that could land first and count the attempt.
 */
export async function handBack<L extends Lease>(
  lease: L,
  flight: { readonly task: Promise<void>; stopHeartbeat(): void },
  driver: Pick<Driver<L>, 'release'>,
  internals: Pick<Internals, 'reportError'>,
  released: WeakMap<L, Promise<boolean>>,
): Promise<void> {
  flight.stopHeartbeat();
  if (lease.settled) return;
  const state = leaseState(lease);
  // a release beside a settle under way could win and send finished work round again
  if (state && (state.settling > 0 || state.inDoubt)) return flight.task;
  const release = driver.release(lease).then(
    () => true,
    (error: unknown) => {
      // lost meanwhile (reaped, cancelled): the handler's settle could not land either
      if (error instanceof LeaseLostError) return true;
      internals.reportError('release', error, lease);
      return false;
    },
  );
  released.set(lease, release);
  if (state) abortLease(state, new Error('[leasehold] worker stopped'));
  await release;
}

/**
 * Sends `stop()`'s release once more, after the one at its timeout failed and the handler ended:
 * the item goes back without the attempt counted (a complete or fail now would write the outcome
 * of a handler cut short). If this fails too, the item stays held until its lease expires and the
 * reaper takes it, counting the attempt; that is reported.
 */
export async function releaseAgain<L extends Lease>(lease: L, driver: Pick<Driver<L>, 'release'>, internals: Pick<Internals, 'reportError'>): Promise<void> {
  try {
    await driver.release(lease);
  } catch (error) {
    if (error instanceof LeaseLostError) return;
    const message = `stop() could not hand the lease back at its timeout, nor after its handler ended (${errorMessage(error)}); the item stays held until its lease expires, then the reaper takes it`;
    internals.reportError('release', new Error(message, { cause: error }), lease);
  }
}

/** How a handler ended: its result, what it threw, or past its limit (its attempt failed then). */
export type HandlerEnd = { readonly result: unknown } | { readonly thrown: unknown } | { readonly timedOut: true };

/**
 * Runs the handler. With a limit (`handlerTimeoutMs`), a handler still running when it passes has
 * its lease's signal aborted with a {@link HandlerTimeoutError} and its attempt failed at once
 * (`sendFail`), unless a settle of the handler's own is under way; if no fail lands, the lease's
 * heartbeat stops, so that a handler that never ends cannot keep its item from the reaper. Either
 * way the handler keeps its slot until it ends, and a fail that had not landed is sent once more
 * then. The worker's stop timeout (`stopped`) clears the timer: nothing runs on after `stop()`.
 */
export async function runHandler<L extends Lease>(
  lease: L,
  run: {
    readonly handler: (lease: L) => unknown;
    readonly limitMs: number | undefined;
    readonly stopped: AbortSignal;
    readonly sendFail: (error: HandlerTimeoutError) => Promise<void>;
    readonly stopHeartbeat: () => void;
    readonly internals: Pick<Internals, 'reportError'>;
  },
): Promise<HandlerEnd> {
  let running: Promise<unknown>;
  try {
    running = Promise.resolve(run.handler(lease));
  } catch (error) {
    running = Promise.reject(error);
  }
  let timedOut: { readonly error: HandlerTimeoutError; readonly failing: Promise<void> } | undefined;
  const fail = async (error: HandlerTimeoutError): Promise<void> => {
    try {
      await run.sendFail(error);
    } catch (failure) {
      // LeaseLostError was already emitted as `leaseLost`
      if (!(failure instanceof LeaseLostError)) run.internals.reportError('fail', failure, lease);
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const clear = () => {
    clearTimeout(timer);
    run.stopped.removeEventListener('abort', clear);
  };
  if (run.limitMs !== undefined && !run.stopped.aborted) {
    const limitMs = run.limitMs;
    timer = setTimeout(() => {
      clear();
      const error = new HandlerTimeoutError(lease.key, limitMs);
      const state = leaseState(lease);
      if (state) abortLease(state, error);
      // a settle the handler itself has under way decides
      const own = lease.settled || (state !== undefined && (state.settling > 0 || state.inDoubt !== undefined));
      const failing = (own ? Promise.resolve() : fail(error)).finally(() => {
        if (!lease.settled) run.stopHeartbeat();
      });
      timedOut = { error, failing };
    }, limitMs);
    run.stopped.addEventListener('abort', clear, { once: true });
  }
  let end: HandlerEnd;
  try {
    end = { result: await running };
  } catch (error) {
    end = { thrown: error };
  } finally {
    clear();
  }
  if (!timedOut) return end;
  await timedOut.failing;
  if (!lease.settled) await fail(timedOut.error);
  return { timedOut: true };
}

/** Waits `ms`, or until one of `signals` aborts. */
function sleepUntilAborted(ms: number, signals: readonly AbortSignal[]): Promise<void> {
  if (signals.some((s) => s.aborted)) return Promise.resolve();
  return new Promise((resolve) => {
    const end = () => {
      clearTimeout(timer);
      for (const s of signals) s.removeEventListener('abort', end);
      resolve();
    };
    const timer = setTimeout(end, ms);
    for (const s of signals) s.addEventListener('abort', end, { once: true });
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
        .purge({ status, olderThanMs })
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

/** A delay spread by ±25% (at least 1 ms, at most `max`), so that workers started together drift apart. */
export const spread = (ms: number, max: number): number => Math.min(max, Math.max(1, Math.round(ms * (0.75 + Math.random() * 0.5))));

/** The worker's stop timeout: every handler under a limit listens to it (no listener cap). */
export function stopSignal(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}
