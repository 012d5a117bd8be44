/**
 * One tracker as the dashboard holds it: its definition, its hour chart, and a short-lived cache
 * of its `stats()` so that every open page costs one store query. Internal.
 * @module
 */
import type { TrackerStats } from '../results.js';
import type { TrackerDefinition } from '../tracker.js';
import { History } from './history.js';
import type { DashboardTracker } from './types.js';

/** How long a `stats()` query still unanswered serves every poll before another is sent. */
export const PENDING_SHARED_MS = 10_000;

/** A tracker shown by the dashboard. */
export class Entry {
  readonly name: string;
  readonly tracker: DashboardTracker;
  readonly def: TrackerDefinition;
  readonly history: History;
  /** The clock the cache's age is read on: the monotonic one, unless the dashboard was given `now`. */
  readonly #clock: () => number;
  readonly #cacheMs: number;
  #cached: { readonly at: number; readonly value: Promise<TrackerStats<string>>; answered: boolean } | undefined;
  #asked = 0;
  #recorded = 0;
  #lastMs = 0;

  constructor(name: string, tracker: DashboardTracker, now: () => number, cacheMs: number, clock: () => number = now) {
    this.name = name;
    this.tracker = tracker;
    this.def = tracker.definition;
    this.history = new History(this.def, now);
    this.#clock = clock;
    this.#cacheMs = cacheMs;
  }

  /** The statuses items are parked in when they fail. */
  get failedStatuses(): string[] {
    return [...new Set(this.def.stages.map((s) => s.failed))];
  }

  /**
   * The tracker's counts. One store query serves every poll within `cacheMs`, or within 4 times
   * the last query's duration when that is longer: on a big table (stats takes ~0.3–0.7 s at
   * 1,000,000 PostgreSQL rows) the dashboard never keeps the database busy more than a fifth
   * of the time. Each answer is also a sample for the hour chart. A query still unanswered serves
   * every poll for {@link PENDING_SHARED_MS} at least: one that hangs (a dead connection) is not
   * joined by another per sample and per page poll, and past that one more is sent (which a pool
   * may give a healthy connection), shared in turn.
   */
  stats(): Promise<TrackerStats<string>> {
    const t = this.#clock();
    const fresh = this.#cacheMs === 0 ? 0 : Math.max(this.#cacheMs, 4 * this.#lastMs);
    if (this.#cached && t - this.#cached.at < (this.#cached.answered ? fresh : Math.max(fresh, PENDING_SHARED_MS))) return this.#cached.value;
    const asked = ++this.#asked;
    const started = performance.now();
    const value = this.tracker.stats().then((stats) => {
      this.#lastMs = performance.now() - started;
      // answers may arrive out of order; a later sample must not be followed by an older one
      if (asked > this.#recorded) {
        this.#recorded = asked;
        this.history.record(stats.byStatus);
      }
      return stats;
    });
    const cached = { at: t, value, answered: false };
    this.#cached = cached;
    value.then(
      () => (cached.answered = true),
      () => {
        if (this.#cached === cached) this.#cached = undefined;
      },
    );
    return value;
  }

  /** After a mutation: the next poll asks the store again. */
  invalidate(): void {
    this.#cached = undefined;
  }
}
