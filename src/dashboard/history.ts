/**
 * The hour chart's numbers. No store query can say how many items reached a done status in a
 * given minute (no index on `finishedAt`, and items leave intermediate statuses again), so the
 * dashboard samples `stats()` while it runs and keeps, per minute, how much the counts of the
 * finished statuses grew: a ring of 60 one-minute buckets, in memory, since it started. Internal.
 * @module
 */
import type { TrackerDefinition } from '../tracker.js';

/** One minute of the chart; `null` counts mean the dashboard was not running then. */
export interface HistoryBucket {
  /** Start of the minute, epoch milliseconds. */
  readonly start: number;
  /** Items that reached a finished done status in that minute. */
  readonly done: number | null;
  /** Items that reached a failed status in that minute. */
  readonly failed: number | null;
}

/** What the stats endpoint sends for the chart. */
export interface HistorySeries {
  /** When sampling started (the dashboard started). */
  readonly startedAt: number;
  /** Bucket width: one minute. */
  readonly bucketMs: number;
  /** The statuses counted as done. */
  readonly doneStatuses: readonly string[];
  /** The statuses counted as failed. */
  readonly failedStatuses: readonly string[];
  /** The last 60 minutes, oldest first. */
  readonly buckets: readonly HistoryBucket[];
}

const MINUTE = 60_000;
const BUCKETS = 60;

/**
 * Per-minute growth of the finished statuses. Counts only go up by arrivals in a status no
 * stage claims from, so the growth between two samples is what arrived, less what a purge or
 * retry took away meanwhile; the dashboard's own purges and retries are added back
 * ({@link History.adjust}), and a net fall counts as zero.
 */
export class History {
  readonly #done: readonly string[];
  readonly #failed: readonly string[];
  readonly #now: () => number;
  readonly startedAt: number;
  #last: Map<string, number> | undefined;
  readonly #buckets = new Map<number, { done: number; failed: number }>();

  constructor(def: TrackerDefinition, now: () => number) {
    const failed = new Set(def.stages.map((s) => s.failed));
    this.#failed = [...failed];
    this.#done = def.terminalStatuses.filter((s) => !failed.has(s) && def.stages.some((st) => st.done.includes(s)));
    this.#now = now;
    this.startedAt = now();
  }

  /** Takes one sample of the counts per status. */
  record(byStatus: Readonly<Record<string, number>>): void {
    const minute = Math.floor(this.#now() / MINUTE);
    const last = this.#last;
    this.#last = new Map([...this.#done, ...this.#failed].map((s) => [s, byStatus[s] ?? 0]));
    if (!last) return;
    const grown = (list: readonly string[]) => list.reduce((sum, s) => sum + Math.max(0, (byStatus[s] ?? 0) - (last.get(s) ?? 0)), 0);
    const bucket = this.#buckets.get(minute) ?? { done: 0, failed: 0 };
    bucket.done += grown(this.#done);
    bucket.failed += grown(this.#failed);
    this.#buckets.set(minute, bucket);
    for (const m of this.#buckets.keys()) if (m <= minute - BUCKETS) this.#buckets.delete(m);
  }

  /** The dashboard itself removed `n` items from `status` (purge, retry): not a fall in arrivals. */
  adjust(status: string, n: number): void {
    const count = this.#last?.get(status);
    if (count !== undefined) this.#last!.set(status, count - n);
  }

  /** The last hour, one bucket a minute, oldest first. */
  series(): HistorySeries {
    const current = Math.floor(this.#now() / MINUTE);
    const first = Math.floor(this.startedAt / MINUTE);
    const buckets: HistoryBucket[] = [];
    for (let m = current - BUCKETS + 1; m <= current; m++) {
      const b = this.#buckets.get(m);
      buckets.push({ start: m * MINUTE, done: m < first ? null : (b?.done ?? 0), failed: m < first ? null : (b?.failed ?? 0) });
    }
    return { startedAt: this.startedAt, bucketMs: MINUTE, doneStatuses: this.#done, failedStatuses: this.#failed, buckets };
  }
}
