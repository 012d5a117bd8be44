/**
 * The race the original system lost, shown on purpose: once per run, a worker process that has
 * just claimed a log for `process` is frozen (SIGSTOP), as a long garbage-collection pause or a
 * suspended VM freezes a process. Its heartbeat stops, its lease expires, another worker's reaper
 * takes the log back and another worker processes it under a newer fence. Only then is the frozen
 * one woken (SIGCONT): it carries on where it stopped, with its old lease, and what it writes is
 * refused (the results table keeps the newer fence's rows; leasehold refuses its complete).
 */
import type { ChildProcess } from 'node:child_process';
import type { Report } from './flows';
import type { PartnerLogs } from './tracker';

/** A claim a worker process reported (see `Report` in flows.ts). */
type ClaimReport = Extract<Report, { type: 'claimed' }>;

/** Gives up waiting for the takeover after this long (a machine too loaded to reap in time). */
const GIVE_UP_MS = 60_000;

export class Pause {
  #state: 'armed' | 'paused' | 'done' = 'armed';
  #summary = 'none';
  #frozen: ChildProcess | undefined;

  constructor(
    private readonly tracker: PartnerLogs,
    private readonly say: (line: string) => void,
  ) {}

  /** The process frozen now, if any (chaos leaves it alone: it must wake to show the refusal). */
  get frozen(): ChildProcess | undefined {
    return this.#frozen;
  }

  /** What happened, for the summary table. */
  get summary(): string {
    return this.#summary;
  }

  /**
   * Freezes `child` if the pause is still to come and `claim` is a `process` claim; `others` says
   * whether another worker process is running to take over.
   */
  offer(child: ChildProcess, claim: ClaimReport, others: boolean): void {
    if (this.#state !== 'armed' || claim.stage !== 'process' || !others || !child.pid) return;
    this.#state = 'paused';
    this.#frozen = child;
    child.kill('SIGSTOP');
    this.#watch(child, claim).catch((error: unknown) => {
      child.kill('SIGCONT');
      this.#state = 'done';
      this.#frozen = undefined;
      this.say(`PAUSE: gave up watching (${String(error)}); worker ${child.pid} woken`);
    });
  }

  /** Wakes every process this may have frozen (before stopping them). */
  wake(child: ChildProcess): void {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
  }

  async #watch(child: ChildProcess, claim: ClaimReport): Promise<void> {
    const { logId } = claim.key;
    const since = Date.now();
    let said = false;
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      const item = await this.tracker.get(claim.key);
      if (item && item.fence === claim.fence && item.status !== 'processing') {
        // it finished the log before the signal landed: nothing to show with this one, try again
        child.kill('SIGCONT');
        this.#state = 'armed';
        this.#frozen = undefined;
        return;
      }
      if (!said) {
        said = true;
        this.say(`PAUSE: worker ${child.pid} frozen (SIGSTOP) holding the lease of ${logId} (fence ${claim.fence}), as a long GC pause would freeze it; it wakes once another worker has processed that log`);
      }
      const takenOver = item !== null && item.fence > claim.fence && (item.status === 'processed' || item.status === 'failed');
      if (takenOver || Date.now() - since > GIVE_UP_MS || child.exitCode !== null || child.signalCode !== null) {
        const seconds = ((Date.now() - since) / 1000).toFixed(1);
        child.kill('SIGCONT');
        this.#state = 'done';
        this.#frozen = undefined;
        this.#summary = takenOver ? `1, ${seconds} s (${logId})` : `1, ${seconds} s, no takeover`;
        this.say(
          takenOver
            ? `PAUSE: worker ${child.pid} woken after ${seconds} s; meanwhile ${logId} was reaped and ${item.status} under fence ${item.fence}, so what it sends under fence ${claim.fence} is refused`
            : `PAUSE: worker ${child.pid} woken after ${seconds} s without a takeover of ${logId}`,
        );
        return;
      }
    }
  }
}
