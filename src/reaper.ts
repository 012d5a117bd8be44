/**
 * The background reaper workers run by default: one per tracker per process, however many
 * workers share the tracker, at the shortest interval they ask for, with jitter. Internal.
 * @module
 */

import { MAX_TIMER_MS } from './validate.js';

/** One background reaper per tracker per process, at the shortest interval its workers ask for. */
export class SharedReaper {
  readonly #members = new Map<object, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The interval the pending timer was set for. */
  #every = Infinity;
  #running: Promise<unknown> | undefined;
  readonly #reap: () => Promise<unknown>;
  readonly #report: (error: unknown) => void;

  constructor(reap: () => Promise<unknown>, report: (error: unknown) => void) {
    this.#reap = reap;
    this.#report = report;
  }

  join(member: object, intervalMs: number): void {
    this.#members.set(member, intervalMs);
    // a member that asks for a shorter interval than the pending timer's gets it now
    if (this.#timer && intervalMs < this.#every) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (!this.#timer && !this.#running) this.#schedule();
  }

  /** Leaves; the last member to leave stops the timer and gets the pass under way, if any, to await. */
  leave(member: object): Promise<unknown> | undefined {
    this.#members.delete(member);
    if (this.#members.size > 0) return undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return this.#running;
  }

  #schedule(): void {
    const every = Math.min(...this.#members.values());
    this.#every = every;
    // jitter, so that processes started together do not all reap at once
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running ??= this.#reap()
        .catch((error: unknown) => this.#report(error))
        .finally(() => {
          this.#running = undefined;
          if (this.#members.size > 0 && !this.#timer) this.#schedule();
        });
    }, Math.min(MAX_TIMER_MS, every * (0.75 + Math.random() * 0.5)));
    // the workers' own loop keeps the process alive; the reaper alone never does
    this.#timer.unref?.();
  }
}

const reapers = new WeakMap<object, SharedReaper>();

/** The reaper of `owner` (a tracker's internals), created on first use. */
export function sharedReaper(owner: object, reap: () => Promise<unknown>, report: (error: unknown) => void): SharedReaper {
  let reaper = reapers.get(owner);
  if (!reaper) reapers.set(owner, (reaper = new SharedReaper(reap, report)));
  return reaper;
}
