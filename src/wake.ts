/**
 * How an idle worker sleeps: until its poll delay passes, until it is woken (work appeared,
 * here or in another process), or until the next item it knows of becomes due (a scheduled
 * item, a retry after backoff), whichever comes first. Internal.
 * @module
 */

import { MAX_TIMER_MS } from './validate.js';

/** Due times kept per worker: the earliest few are all a sleeping worker needs. */
const MAX_DUE = 32;

/** A sleep in progress. */
interface Asleep {
  /** When its timer ends it (epoch ms). */
  until: number;
  timer: ReturnType<typeof setTimeout> | undefined;
  end(): void;
}

/**
 * The wake-up state of one worker loop. A wake-up that arrives while the loop is claiming is
 * kept (`pending`), so that the loop claims once more instead of sleeping through it: the
 * claim in flight may have been sent before the item it announces was committed.
 */
export class IdleTimer {
  #pending = false;
  /** Local epoch ms at which known items become claimable, ascending. */
  #due: number[] = [];
  #sleep: Asleep | undefined;

  /** Whether a wake-up arrived since the last claim was sent, which that claim may not cover. */
  get pending(): boolean {
    return this.#pending;
  }

  /** Work may be claimable now: end the sleep, or have the next one end at once. */
  wake(): void {
    if (this.#sleep) this.#sleep.end();
    else this.#pending = true;
  }

  /** An item becomes claimable at `at` (epoch ms): a sleep ends then at the latest. */
  dueAt(at: number): void {
    if (!Number.isFinite(at) || at <= Date.now()) return this.wake();
    const i = this.#due.findIndex((d) => d >= at);
    if (i === -1) this.#due.push(at);
    else if (this.#due[i] !== at) this.#due.splice(i, 0, at);
    // the later ones are looked up again once the kept ones are used (see claiming)
    if (this.#due.length > MAX_DUE) this.#due.length = MAX_DUE;
    const sleep = this.#sleep;
    if (sleep && at < sleep.until) this.#arm(sleep, at);
  }

  /**
   * A claim is about to be sent: it covers every wake-up so far and every time now due. Returns
   * whether it used up a known due time: the worker then looks up the next one once it is idle
   * (it knew only the earliest, or the ones a store's message carried).
   */
  claiming(): boolean {
    this.#pending = false;
    const now = Date.now();
    let used = false;
    while (this.#due.length > 0 && this.#due[0]! <= now) {
      this.#due.shift();
      used = true;
    }
    return used;
  }

  /**
   * Sleeps at most `ms` after a claim that found nothing: returns at once if woken since that
   * claim, and ends early on a wake-up or when the next known item becomes due.
   */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const now = Date.now();
      const due = this.#due[0];
      // the loop's next claim covers it (and its `claiming` counts a due time used)
      if (this.#pending || (due !== undefined && due <= now)) {
        resolve();
        return;
      }
      const sleep: Asleep = {
        until: now + ms,
        timer: undefined,
        end: () => {
          if (this.#sleep === sleep) this.#sleep = undefined;
          clearTimeout(sleep.timer);
          resolve();
        },
      };
      this.#sleep = sleep;
      this.#arm(sleep, due !== undefined && due < sleep.until ? due : sleep.until);
    });
  }

  #arm(sleep: Asleep, until: number): void {
    clearTimeout(sleep.timer);
    sleep.until = until;
    // +1 ms: a timer may fire a little early, and a claim sent before the due time finds nothing;
    // at most the longest delay a timer keeps (a longer one fires after 1 ms)
    sleep.timer = setTimeout(() => sleep.end(), Math.min(MAX_TIMER_MS, Math.max(0, until - Date.now()) + 1));
  }
}
