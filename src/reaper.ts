/**
 * The background reaper workers run by default: one per tracker per process, however many
 * workers share the tracker, at the shortest interval they ask for, with jitter. Internal.
 * @module
 */

/** One background reaper per tracker per process, at the shortest interval its workers ask for. */
export class SharedReaper {
  readonly #members = new Map<object, number>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<unknown> | undefined;
  readonly #reap: () => Promise<unknown>;
  readonly #report: (error: unknown) => void;

  constructor(reap: () => Promise<unknown>, report: (error: unknown) => void) {
    this.#reap = reap;
    this.#report = report;
  }

  join(member: object, intervalMs: number): void {
    this.#members.set(member, intervalMs);
    if (!this.#timer) this.#schedule();
  }

  leave(member: object): void {
    this.#members.delete(member);
    if (this.#members.size === 0 && this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  #schedule(): void {
    const every = Math.min(...this.#members.values());
    // jitter, so that processes started together do not all reap at once
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running ??= this.#reap()
        .catch((error: unknown) => this.#report(error))
        .finally(() => {
          this.#running = undefined;
          if (this.#members.size > 0 && !this.#timer) this.#schedule();
        });
    }, every * (0.75 + Math.random() * 0.5));
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
