import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ConfigError, LeaseLostError, ValidationError } from './errors.js';
import { abortLease, leaseState, type Lease } from './lease.js';
import { requireNumber, requirePositiveInt } from './validate.js';

/** The work a worker runs per lease; its return value is passed to `complete`. */
export type Handler<L, R> = (lease: L) => Promise<R | void> | R | void;

/** Options of `tracker.work()`. */
export interface WorkOptions {
  /**
   * Handlers running at once.
   * @default 1
   */
  readonly concurrency?: number;
  /**
   * This worker's id, stored as the lease owner.
   * @default `${hostname}:${pid}:${random}`
   */
  readonly owner?: string;
  /**
   * Items claimed per round trip (`claimBatch`), bounded by free slots.
   * @default 1
   */
  readonly batchSize?: number;
  /**
   * First idle poll delay; doubles while idle up to `pollMaxMs`, back to this after work.
   * @default 50
   */
  readonly pollMinMs?: number;
  /**
   * Longest idle poll delay.
   * @default 2000
   */
  readonly pollMaxMs?: number;
  /**
   * Renew interval while a handler runs.
   * @default ttlMs / 3
   */
  readonly heartbeatMs?: number;
  /**
   * Run `reapStale()` at this interval (off when absent). One or two reapers per fleet suffice.
   */
  readonly reapIntervalMs?: number;
  /**
   * How long `stop()` waits for in-flight handlers before releasing their leases.
   * @default 30000
   */
  readonly stopTimeoutMs?: number;
}

/** The Tracker surface a Worker drives (kept structural so the worker stays generic). */
interface Driver<L extends Lease> {
  readonly ttlMs: number;
  claimBatch(stage: string, options: { owner: string; limit: number }): Promise<L[]>;
  renew(lease: L): Promise<L>;
  complete(lease: L, options: object): Promise<unknown>;
  fail(lease: L, error: unknown): Promise<unknown>;
  release(lease: L): Promise<unknown>;
  reapStale(): Promise<unknown>;
  onWake(fn: () => void): () => void;
  reportError(operation: string, error: unknown, lease?: L): void;
}

/** A default owner id: host, pid and a random suffix. */
export function defaultOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

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
  readonly #handler: Handler<L, object>;
  readonly #concurrency: number;
  readonly #batchSize: number;
  readonly #pollMin: number;
  readonly #pollMax: number;
  readonly #heartbeatMs: number;
  readonly #stopTimeoutMs: number;
  readonly #inFlight = new Map<L, Promise<void>>();
  readonly #unwake: () => void;
  readonly #loop: Promise<void>;
  #running = true;
  #wake: (() => void) | undefined;
  #reaper: ReturnType<typeof setInterval> | undefined;
  #processed = 0;

  /** @internal Created by `tracker.work()`. */
  constructor(driver: Driver<L>, stage: string, handler: Handler<L, object>, options: WorkOptions) {
    this.#driver = driver;
    this.stage = stage;
    this.#handler = handler;
    this.#concurrency = requirePositiveInt('work.concurrency', options.concurrency ?? 1);
    this.#batchSize = requirePositiveInt('work.batchSize', options.batchSize ?? 1);
    this.#pollMin = requirePositiveInt('work.pollMinMs', options.pollMinMs ?? 50);
    this.#pollMax = requireNumber('work.pollMaxMs', options.pollMaxMs ?? 2_000, { min: this.#pollMin, integer: true });
    this.#heartbeatMs = requirePositiveInt('work.heartbeatMs', options.heartbeatMs ?? Math.max(1, Math.floor(driver.ttlMs / 3)));
    if (this.#heartbeatMs >= driver.ttlMs) {
      throw new ConfigError('work.heartbeatMs', `must be shorter than the lease ttl (${driver.ttlMs} ms), got ${this.#heartbeatMs}.`);
    }
    this.#stopTimeoutMs = requireNumber('work.stopTimeoutMs', options.stopTimeoutMs ?? 30_000, { min: 0, integer: true });
    this.owner = options.owner ?? defaultOwner();
    if (options.reapIntervalMs !== undefined) {
      const every = requirePositiveInt('work.reapIntervalMs', options.reapIntervalMs);
      this.#reaper = setInterval(() => {
        driver.reapStale().catch((error: unknown) => driver.reportError('reapStale', error));
      }, every);
    }
    this.#unwake = driver.onWake(() => this.#wake?.());
    this.#loop = this.#run();
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

  /**
   * Stops claiming and waits for in-flight handlers; after `timeoutMs` (default the
   * `stopTimeoutMs` option) releases the leases still held and aborts their signals.
   */
  async stop(options: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = requireNumber('stop.timeoutMs', options.timeoutMs ?? this.#stopTimeoutMs, { min: 0 });
    this.#running = false;
    if (this.#reaper) clearInterval(this.#reaper);
    this.#unwake();
    this.#wake?.();
    await this.#loop;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const outcome = await Promise.race([Promise.all(this.#inFlight.values()).then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      await Promise.all(
        [...this.#inFlight.keys()].map(async (lease) => {
          if (lease.settled) return;
          try {
            await this.#driver.release(lease);
          } catch (error) {
            if (!(error instanceof LeaseLostError)) this.#driver.reportError('release', error, lease);
          }
        }),
      );
    }
  }

  async #run(): Promise<void> {
    let idle = this.#pollMin;
    while (this.#running) {
      const free = this.#concurrency - this.#inFlight.size;
      if (free <= 0) {
        // a finished handler or stop() frees the loop
        const wait = this.#idle(this.#pollMax);
        await Promise.race([...this.#inFlight.values(), wait.promise]);
        wait.cancel();
        continue;
      }
      let leases: L[] = [];
      try {
        leases = await this.#driver.claimBatch(this.stage, { owner: this.owner, limit: Math.min(free, this.#batchSize) });
      } catch (error) {
        // an invalid item was parked and reported by the tracker: claim on at once
        if (error instanceof ValidationError) continue;
        this.#driver.reportError('claim', error);
        await this.#idle(idle).promise;
        idle = Math.min(this.#pollMax, idle * 2);
        continue;
      }
      if (leases.length === 0) {
        await this.#idle(idle).promise;
        idle = Math.min(this.#pollMax, idle * 2);
        continue;
      }
      idle = this.#pollMin;
      for (const lease of leases) {
        if (!this.#running) {
          // claimed while stopping: hand it straight back
          await this.#driver.release(lease).catch((error: unknown) => this.#driver.reportError('release', error, lease));
          continue;
        }
        const task = this.#process(lease).finally(() => this.#inFlight.delete(lease));
        this.#inFlight.set(lease, task);
      }
    }
  }

  /** Sleeps `ms` or until woken (new local work, or stop). */
  #idle(ms: number): { promise: Promise<void>; cancel(): void } {
    let done = () => {};
    const promise = new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), ms);
      done = () => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      this.#wake = done;
    });
    return { promise, cancel: done };
  }

  async #process(lease: L): Promise<void> {
    const heartbeat = this.#heartbeat(lease);
    try {
      let result: object | void;
      try {
        result = await this.#handler(lease);
      } catch (error) {
        if (!lease.settled) await this.#driver.fail(lease, error);
        return;
      }
      if (!lease.settled) await this.#driver.complete(lease, result ?? {});
    } catch (error) {
      // LeaseLostError was already emitted as `leaseLost`; anything else has no caller to reach
      if (!(error instanceof LeaseLostError)) this.#driver.reportError('settle', error, lease);
    } finally {
      heartbeat.stop();
      this.#processed++;
    }
  }

  #heartbeat(lease: L): { stop(): void } {
    let lastRenewed = performance.now();
    let renewing = false;
    const timer = setInterval(async () => {
      if (renewing || lease.settled) return;
      renewing = true;
      try {
        await this.#driver.renew(lease);
        lastRenewed = performance.now();
      } catch (error) {
        if (!(error instanceof LeaseLostError)) {
          this.#driver.reportError('renew', error, lease);
          // past the ttl another worker may hold the item: tell the handler to stop
          if (performance.now() - lastRenewed >= this.#driver.ttlMs) {
            const state = leaseState(lease);
            if (state) abortLease(state, error);
          }
        }
      } finally {
        renewing = false;
      }
    }, this.#heartbeatMs);
    return { stop: () => clearInterval(timer) };
  }

  /** Resolves when the worker loop has exited (after `stop()`). */
  get done(): Promise<void> {
    return this.#loop;
  }

}
