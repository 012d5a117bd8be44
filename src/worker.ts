import { ConfigError, LeaseLostError, ValidationError } from './errors.js';
import { leaseState, type Lease } from './lease.js';
import { startHeartbeat } from './heartbeat.js';
import { sharedReaper, type SharedReaper } from './reaper.js';
import { MAX_TIMER_MS, requireKnownOptions, requireNumber } from './validate.js';
import { IdleTimer } from './wake.js';
import { handBack, handlerOutcome, releaseAgain, runHandler, sendSettle, spread, startRetention, stopSignal } from './worker-support.js';
import type { Driver, Handler, Internals } from './worker-types.js';
import { workSettings, type WorkOptions, type WorkSettings } from './work-options.js';

export { defaultOwner, type Retention, type WorkOptions } from './work-options.js';
export type { Handler } from './worker-types.js';

/** How long `stop()` waits, past its timeout, for the releases of leases still held (at most `timeoutMs`). */
const RELEASE_GRACE_MS = 1_000;

/**
 * A running worker loop from `tracker.work()`. It claims while it has free slots, renews
 * leases while handlers run, settles each lease, and stops gracefully.
 */
export class Worker<L extends Lease = Lease> {
  /** The owner id written on each lease. */
  readonly owner: string;
  /** The stage this worker serves. */
  readonly stage: string;
  readonly #driver: Driver<L>;
  readonly #internals: Internals;
  readonly #handler: Handler<L, object>;
  /** The checked options, defaults filled in. */
  readonly #settings: WorkSettings;
  readonly #inFlight = new Map<L, { task: Promise<void>; stopHeartbeat: () => void }>();
  readonly #unwake: () => void;
  readonly #reaper: SharedReaper | undefined;
  readonly #loop: Promise<void>;
  readonly #drains = new Set<() => void>();
  readonly #retention: Array<ReturnType<typeof setInterval>>;
  /** Retention purges under way: `stop()` waits for them. */
  readonly #purges = new Set<Promise<unknown>>();
  readonly #timer = new IdleTimer();
  /** Ends the wait for a free slot at full concurrency: a finished handler and `stop()` call it. */
  #slotFreed: (() => void) | undefined;
  /**
   * Leases `stop()` released at its timeout: whether each release landed (or found the lease
   * lost). Their handlers' late results are reported, not lost silently.
   */
  readonly #releasedAtStop = new WeakMap<L, Promise<boolean>>();
  #running = true;
  /** `stop()` has finished: nothing runs any more. */
  #stopped = false;
  /** Aborted when `stop()` reaches its timeout: settles being resent are sent one last time. */
  readonly #stopTimeout = stopSignal();
  /** Ends the pause after a failed claim; only `stop()` calls it. */
  #endPause: (() => void) | undefined;
  /** Look up the next due time after the next claim that finds nothing. */
  #learnDue = true;
  #processed = 0;

  /** @internal Created by `tracker.work()`. */
  constructor(driver: Driver<L>, internals: Internals, stage: string, handler: Handler<L, object>, options: WorkOptions) {
    this.#driver = driver;
    this.#internals = internals;
    this.stage = stage;
    this.#handler = handler;
    // every option is checked before anything starts (a reaper, retention timers): a work() call
    // that throws leaves nothing running
    const settings = (this.#settings = workSettings(driver.ttlMs, internals.def, options));
    this.owner = settings.owner;
    const reapMs = settings.reapMs;
    if (reapMs !== undefined) {
      this.#reaper = sharedReaper(internals, () => driver.reapStale(), (e) => internals.reportError('reapStale', e));
      this.#reaper.join(this, reapMs);
    }
    this.#retention = startRetention(settings.retention, driver, internals, this.#purges);
    const from = new Set(internals.def.stages.get(stage)?.from ?? []);
    // wake for work of this stage (or when what appeared is unknown)
    this.#unwake = internals.onWake((status, at) => {
      if (status !== undefined && !from.has(status)) return;
      // something changed, but not what: after looking, learn when the next item is due
      if (status === undefined) this.#learnDue = true;
      if (at) this.#timer.dueAt(at.getTime());
      else this.#timer.wake();
    });
    this.#loop = this.#run().catch((error: unknown) => {
      // a bug or a throwing hook: the loop is gone, so say so and stop claiming
      this.#running = false;
      this.#internals.reportError('work', error);
    });
  }

  /** Whether the worker is still claiming. */
  get running(): boolean {
    return this.#running;
  }

  /** Handlers running now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Leases this worker has run a handler for (whatever the outcome). */
  get processed(): number {
    return this.#processed;
  }

  /** Resolves when the worker loop has exited (after `stop()`). */
  get done(): Promise<void> {
    return this.#loop;
  }

  /**
   * Resolves once this worker is idle: no handler running and its last claim found nothing
   * eligible (or it was stopped). Items in backoff or scheduled for later do not count. While
   * claims fail (the store is down) it waits: each failure is reported, and it resolves once a
   * claim finds nothing or `stop()` is called (race it with a timeout where that matters).
   *
   * @example
   * ```ts
   * const worker = tracker.work('download', handler);
   * await worker.drain();   // everything claimable now has been handled
   * await worker.stop();
   * ```
   */
  drain(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drains.add(resolve);
      this.#timer.wake();
    });
  }

  /**
   * Stops claiming and waits for in-flight handlers; after `timeoutMs` (default the
   * `stopTimeoutMs` option) releases the leases still held and aborts their signals (a lease
   * whose handler finished and whose complete or fail is under way is left to that), waiting at
   * most `timeoutMs` or 1 s more for those releases. The same `timeoutMs` bounds the wait for a
   * claim, reap or purge under way (a lease a late claim returns is released at once). What a
   * handler cut short this way returns or throws is not written; a release that failed is sent
   * once more when the handler ends, so the attempt is not counted. Once it resolves, no timer
   * of this worker is left running, even if a handler or the store never returns.
   */
  async stop(options: { timeoutMs?: number } = {}): Promise<void> {
    requireKnownOptions('stop', options, ['timeoutMs']);
    const timeoutMs = requireNumber('stop.timeoutMs', options.timeoutMs ?? this.#settings.stopTimeoutMs, { min: 0, max: MAX_TIMER_MS });
    this.#running = false;
    const reaping = this.#reaper?.leave(this);
    for (const timer of this.#retention) clearInterval(timer);
    this.#unwake();
    this.#timer.wake();
    this.#endPause?.();
    this.#slotFreed?.();
    // one deadline for all of it: a claim that hangs (a dead connection without a driver
    // timeout) holds the stop no longer than a handler may; what it claims later is released
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    let outcome = await Promise.race([this.#loop.then(() => 'done' as const), deadline]);
    if (outcome === 'done') outcome = await Promise.race([Promise.all([...this.#inFlight.values()].map((f) => f.task)).then(() => 'done' as const), deadline]);
    if (outcome === 'timeout') {
      this.#stopTimeout.abort();
      const handedBack = [...this.#inFlight].map(([lease, flight]) => handBack(lease, flight, this.#driver, this.#internals, this.#releasedAtStop));
      // bounded as well: on a dead connection a release never answers (it goes on, reported if it fails)
      let graceTimer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, Math.min(timeoutMs, RELEASE_GRACE_MS))));
      await Promise.race([Promise.all(handedBack), grace]);
      clearTimeout(graceTimer);
    }
    // a reap or purge under way finishes before stop() resolves (the caller may close the pool
    // next), within `timeoutMs`: one stuck on a dead connection does not hold the stop
    await Promise.race([Promise.all([reaping, ...this.#purges]), deadline]);
    clearTimeout(timer);
    this.#stopped = true;
    this.#settleDrains();
  }

  /** Waits `ms` after a failed claim. Wake-ups do not end it (they stay pending); `stop()` does. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#endPause?.(), ms);
      this.#endPause = () => {
        clearTimeout(timer);
        this.#endPause = undefined;
        resolve();
      };
    });
  }

  #settleDrains(): void {
    for (const resolve of this.#drains) resolve();
    this.#drains.clear();
  }

  async #run(): Promise<void> {
    let idle = this.#settings.pollMin;
    while (this.#running) {
      const free = this.#settings.concurrency - this.#inFlight.size;
      if (free <= 0) {
        // a finished handler or stop() frees the loop; a wake-up meanwhile stays pending for the
        // next claim. (Racing every task instead left a reaction on each per wake-up.)
        await new Promise<void>((resolve) => (this.#slotFreed = resolve));
        this.#slotFreed = undefined;
        continue;
      }
      // a due time used up: once idle, learn the next one (the store may hold several)
      if (this.#timer.claiming()) this.#learnDue = true;
      let leases: L[] = [];
      try {
        leases = await this.#driver.claimBatch(this.stage, { owner: this.owner, limit: Math.min(free, this.#settings.batchSize) });
      } catch (error) {
        // an invalid item was parked and reported by the tracker: claim on at once
        if (error instanceof ValidationError) continue;
        this.#internals.reportError('claim', error);
        if (!this.#running) break;
        // a store that fails is not asked again sooner because work appeared meanwhile; the
        // spread keeps the workers that saw one outage from all asking again at one instant
        await this.#pause(spread(idle, this.#settings.pollMax));
        idle = Math.min(this.#settings.pollMax, idle * 2);
        continue;
      }
      if (leases.length === 0) {
        // a wake-up during the claim (an item tracked, or a drain() called) may not have been
        // seen by it: claim once more before calling the worker idle
        if (this.#inFlight.size === 0 && !this.#timer.pending) this.#settleDrains();
        if (!this.#running) break;
        if (this.#learnDue) await this.#lookUpDue();
        await this.#timer.sleep(spread(idle, this.#settings.pollMax));
        idle = Math.min(this.#settings.pollMax, idle * 2);
        continue;
      }
      idle = this.#settings.pollMin;
      // without a store that reports other processes' changes, each idle spell starts by
      // learning when the next waiting item is due
      if (!this.#internals.watching) this.#learnDue = true;
      for (const lease of leases) {
        if (!this.#running) {
          // claimed while stopping: hand it straight back
          await this.#driver.release(lease).catch((error: unknown) => this.#internals.reportError('release', error, lease));
          continue;
        }
        const stopHeartbeat = startHeartbeat(lease, {
          ttlMs: this.#driver.ttlMs,
          everyMs: this.#settings.heartbeatMs,
          timeoutMs: this.#settings.renewTimeoutMs,
          store: this.#internals.store.name,
          renew: (l) => this.#driver.renew(l),
          report: (error) => this.#internals.reportError('renew', error, lease),
        });
        const task = this.#process(lease, stopHeartbeat).finally(() => {
          stopHeartbeat();
          this.#inFlight.delete(lease);
          this.#slotFreed?.();
          // a drain waits for a claim that finds nothing: look again now
          if (this.#drains.size > 0) this.#timer.wake();
        });
        this.#inFlight.set(lease, { task, stopHeartbeat });
      }
    }
  }

  /** One indexed read: when the next waiting item of this stage becomes claimable. */
  async #lookUpDue(): Promise<void> {
    this.#learnDue = false;
    try {
      const at = await this.#internals.nextDue(this.stage);
      if (at) this.#timer.dueAt(at.getTime());
    } catch (error) {
      this.#internals.reportError('find', error);
    }
  }

  /** Sends a complete or fail, again after a transient fault (see {@link sendSettle}). */
  #resend(lease: L, operation: string, send: () => Promise<unknown>): Promise<void> {
    return sendSettle(lease, operation, send, (message) => this.#internals.log('warn', lease, message), this.#stopTimeout.signal);
  }

  async #process(lease: L, stopHeartbeat: () => void): Promise<void> {
    try {
      const end = await runHandler(lease, {
        handler: this.#handler,
        limitMs: this.#settings.handlerTimeoutMs,
        stopped: this.#stopTimeout.signal,
        sendFail: (error) => this.#resend(lease, 'fail', () => this.#driver.fail(lease, error)),
        stopHeartbeat,
        internals: this.#internals,
      });
      // failed at the timeout: what the handler returned or threw since is not written
      if ('timedOut' in end) return;
      const thrown = 'thrown' in end ? { error: end.thrown } : undefined;
      const result = 'result' in end ? end.result : undefined;
      // handed back at the stop timeout: the handler ended on its aborted signal, its work done
      // or not, so its outcome is dropped and the item runs again. No wait on the common path:
      // only a lease handed back then is in the map
      const releasing = this.#releasedAtStop.get(lease);
      if (releasing !== undefined) {
        if (!(await releasing) && !lease.settled) await releaseAgain(lease, this.#driver, this.#internals);
        if (!thrown && leaseState(lease)?.settledBy === 'released') {
          this.#internals.reportError('complete', new Error('the handler finished after stop() had released its lease at the stop timeout; its result was not written, and the item runs again'), lease);
        }
        return;
      }
      if (thrown) {
        if (!lease.settled) await this.#resend(lease, 'fail', () => this.#driver.fail(lease, thrown.error));
        return;
      }
      if (lease.settled) return;
      try {
        const outcome = handlerOutcome(result);
        await this.#resend(lease, 'complete', () => this.#driver.complete(lease, outcome));
      } catch (error) {
        // the store refused what the handler returned (data failing the schema, a `to` that is
        // not a done status): retrying the same result cannot help, so park with the real cause
        if (!(error instanceof ValidationError || error instanceof ConfigError)) throw error;
        await this.#resend(lease, 'fail', () => this.#driver.fail(lease, error, { retry: false }));
      }
    } catch (error) {
      // LeaseLostError was already emitted as `leaseLost`; anything else has no caller to reach
      if (!(error instanceof LeaseLostError)) this.#internals.reportError('settle', error, lease);
    } finally {
      this.#processed++;
    }
  }
}
