/**
 * The options of `tracker.work()`, and their checks: every option is checked before a worker
 * starts anything. Internal, but for the exported option types.
 * @module
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ConfigError } from './errors.js';
import { requireFinishedStatus } from './definition.js';
import { requireOwner } from './tracker/claim.js';
import { MAX_TIMER_MS, requireAgeMs, requireKnownOptions, requireLimit, requirePositiveInt, requireTimerMs } from './validate.js';

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
   * Polling is the safety net: an idle worker wakes at once when an item of its stage becomes
   * claimable in this process, or in another one where the store tells (`watch`: PostgreSQL
   * `LISTEN/NOTIFY`, SQLite `data_version`, MongoDB change streams on a replica set), and when a
   * waiting item it knows of becomes due.
   * @default 50
   */
  readonly pollMinMs?: number;
  /**
   * Longest idle poll delay. Each wait (also the one after a failed claim) is spread by ±25%,
   * never past this, so that workers started together do not poll, or ask a failed store again,
   * at one instant.
   * @default 2000
   */
  readonly pollMaxMs?: number;
  /**
   * Renew interval while a handler runs.
   * @default ttlMs / 3
   */
  readonly heartbeatMs?: number;
  /**
   * How long one renew may take before it counts as failed (the next heartbeat tries again).
   * @default heartbeatMs
   */
  readonly renewTimeoutMs?: number;
  /**
   * Reap expired leases (`reapStale()`) about this often, with ±25% jitter, so that the items
   * of a worker process that died come back without anyone running a reaper. One reaper runs
   * per Tracker per process, however many workers share it. `false` turns it off (when a
   * dedicated process reaps).
   * @default ttlMs
   */
  readonly reapIntervalMs?: number | false;
  /**
   * Longest a handler may run. When it passes, `lease.signal` aborts with a
   * `HandlerTimeoutError` and the attempt fails with it at once (retried after backoff while
   * attempts remain, as any failure), so the item is free for another worker; what the handler
   * returns or throws after that is not written. The handler keeps its slot until it ends (at
   * most `concurrency` run): pass `lease.signal` to whatever can hang. Without it a handler that
   * hangs (a socket with no timeout) holds its item, renewed, for as long as the process lives.
   * @default no limit
   */
  readonly handlerTimeoutMs?: number;
  /**
   * How long `stop()` waits for in-flight handlers before releasing their leases (and, at
   * most, for a claim, reap or purge under way).
   * @default 30000
   */
  readonly stopTimeoutMs?: number;
  /**
   * Delete finished items periodically (`tracker.purge`): items in `status` that finished more
   * than `olderThanMs` ago, checked every `everyMs` (default 60000). Off by default.
   *
   * @example
   * ```ts
   * tracker.work('process', handler, { retention: { status: 'processed', olderThanMs: 7 * 24 * 3600_000 } });
   * ```
   */
  readonly retention?: Retention | readonly Retention[];
}

/** One retention rule of {@link WorkOptions.retention}. */
export interface Retention {
  /** A finished status (one no stage claims from or holds). */
  readonly status: string;
  /** Delete items that finished longer ago than this, by the store's clock. */
  readonly olderThanMs: number;
  /**
   * How often to check.
   * @default 60000
   */
  readonly everyMs?: number;
}

/** A default owner id: host, pid and a random suffix. */
export function defaultOwner(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/** The checked options of one worker, defaults filled in. */
export interface WorkSettings {
  readonly concurrency: number;
  readonly batchSize: number;
  readonly pollMin: number;
  readonly pollMax: number;
  readonly heartbeatMs: number;
  readonly renewTimeoutMs: number;
  readonly stopTimeoutMs: number;
  /** `undefined`: no limit. */
  readonly handlerTimeoutMs: number | undefined;
  readonly owner: string;
  /** `undefined`: no reaper. */
  readonly reapMs: number | undefined;
  readonly retention: ReadonlyArray<{ readonly status: string; readonly olderThanMs: number; readonly everyMs: number }>;
}

/** Every option `work()` takes (a name outside it is a typo, refused); the type keeps it complete. */
const WORK_OPTIONS = Object.keys({
  concurrency: true,
  owner: true,
  batchSize: true,
  pollMinMs: true,
  pollMaxMs: true,
  heartbeatMs: true,
  renewTimeoutMs: true,
  reapIntervalMs: true,
  stopTimeoutMs: true,
  handlerTimeoutMs: true,
  retention: true,
} satisfies Record<keyof WorkOptions, true>);

const RETENTION_OPTIONS = Object.keys({ status: true, olderThanMs: true, everyMs: true } satisfies Record<keyof Retention, true>);

/** Checks every option of `work()` (a ConfigError naming the first bad one) and fills in defaults. */
export function workSettings(ttlMs: number, def: Parameters<typeof requireFinishedStatus>[0], options: WorkOptions): WorkSettings {
  requireKnownOptions('work', options, WORK_OPTIONS);
  const pollMin = requireTimerMs('work.pollMinMs', options.pollMinMs ?? 50);
  // defaults from a ttl longer than the longest timer are cut to it
  const heartbeatMs = requireTimerMs('work.heartbeatMs', options.heartbeatMs ?? Math.min(MAX_TIMER_MS, Math.max(1, Math.floor(ttlMs / 3))));
  if (heartbeatMs >= ttlMs) {
    throw options.heartbeatMs === undefined
      ? new ConfigError('lease.ttlMs', `a lease of ${ttlMs} ms is too short for a worker to renew (its heartbeat runs every ttl/3, at least every 1 ms); give the Tracker a longer \`lease.ttlMs\`.`)
      : new ConfigError('work.heartbeatMs', `must be shorter than the lease ttl (${ttlMs} ms), got ${heartbeatMs}.`);
  }
  const reapEvery = options.reapIntervalMs ?? Math.min(MAX_TIMER_MS, ttlMs);
  const rules = options.retention === undefined ? [] : Array.isArray(options.retention) ? options.retention : [options.retention as Retention];
  return {
    concurrency: requirePositiveInt('work.concurrency', options.concurrency ?? 1),
    batchSize: requireLimit('work.batchSize', options.batchSize ?? 1),
    pollMin,
    pollMax: requireTimerMs('work.pollMaxMs', options.pollMaxMs ?? 2_000, { min: pollMin, allowZero: true }),
    heartbeatMs,
    renewTimeoutMs: requireTimerMs('work.renewTimeoutMs', options.renewTimeoutMs ?? heartbeatMs),
    stopTimeoutMs: requireTimerMs('work.stopTimeoutMs', options.stopTimeoutMs ?? 30_000, { allowZero: true }),
    handlerTimeoutMs: options.handlerTimeoutMs === undefined ? undefined : requireTimerMs('work.handlerTimeoutMs', options.handlerTimeoutMs),
    owner: requireOwner('work', options.owner ?? defaultOwner()),
    reapMs: reapEvery === false ? undefined : requireTimerMs('work.reapIntervalMs', reapEvery),
    retention: rules.map((rule: Retention, i) => {
      // a list's rules are named by position
      const at = Array.isArray(options.retention) ? `work.retention[${i}]` : 'work.retention';
      requireKnownOptions(at, rule, RETENTION_OPTIONS);
      const olderThanMs = requireAgeMs(`${at}.olderThanMs`, rule.olderThanMs);
      const everyMs = requireTimerMs(`${at}.everyMs`, rule.everyMs ?? 60_000);
      requireFinishedStatus(def, `${at}.status`, rule.status);
      return { status: rule.status, olderThanMs, everyMs };
    }),
  };
}
