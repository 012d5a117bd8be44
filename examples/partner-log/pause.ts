/**
 * The race the original system lost, shown on purpose. Once per run (when the worker asked gets a
 * log to process before the run ends), one worker process freezes itself (SIGSTOP) in the middle
 * of processing a log, between its last look at the lease and its write of the log's records, as
 * a long garbage-collection pause or a suspended VM freezes a process. Its heartbeat stops, its leases expire, another worker's reaper takes the log back and
 * another worker processes it under a newer fence. Only then does the orchestrator wake it
 * (SIGCONT): it carries on where it stopped and writes with its old fence. The results table
 * refuses those rows (a newer fence wrote them), and leasehold refuses its complete.
 *
 * It freezes itself at an await point, so it never stops while holding a database lock (SQLite's
 * write lock would stall every other process).
 */
import type { ChildProcess } from 'node:child_process';
import type { Report } from './flows';
import type { PartnerLogs } from './tracker';

/** What a process reports as it freezes. */
type Frozen = Extract<Report, { type: 'frozen' }>;

/** Gives up waiting for the takeover after this long (a machine too loaded to reap in time). */
const GIVE_UP_MS = 60_000;

/** How long a woken process is spared and waited for, to report its lost lease. */
const TELL_MS = 20_000;

const alive = (child: ChildProcess) => child.exitCode === null && child.signalCode === null;

/** The orchestrator's side: asks one worker process to freeze, and wakes it after the takeover. */
export class Pause {
  #asked: ChildProcess | undefined;
  #frozen: ChildProcess | undefined;
  /** Woken after the takeover, until it reports its lost lease (or exits, or TELL_MS pass). */
  #woken: { child: ChildProcess; at: number } | undefined;
  #done = false;
  #summary = 'none';

  constructor(
    private readonly tracker: PartnerLogs,
    private readonly say: (line: string) => void,
  ) {}

  /**
   * Whether a process is frozen now, or woken and not yet refused: the run waits for both (its
   * log may be the last one done, and the summary counts its refused rows and lost lease).
   */
  get pending(): boolean {
    return this.#frozen !== undefined || this.#telling() !== undefined;
  }

  /** What happened, for the summary table. */
  get summary(): string {
    return this.#summary;
  }

  /** Whether chaos may kill `child`: not the one asked to freeze, nor the frozen one (it must wake to be refused). */
  spares(child: ChildProcess | undefined): boolean {
    return child !== undefined && child !== this.#asked && child !== this.#frozen && child !== this.#telling();
  }

  /** A report from `child`: the woken process's lost lease ends the pause. */
  reported(child: ChildProcess, report: Report): void {
    if (report.type === 'leaseLost' && child === this.#woken?.child) this.#woken = undefined;
  }

  #telling(): ChildProcess | undefined {
    const woken = this.#woken;
    return woken && alive(woken.child) && Date.now() - woken.at < TELL_MS ? woken.child : undefined;
  }

  /**
   * Called when a worker process is ready or has exited, with those ready now: asks one of them
   * to freeze at its next log, unless one is asked (and alive) or the pause is over.
   */
  ask(ready: readonly ChildProcess[]): void {
    if (this.#done || this.#frozen || (this.#asked && alive(this.#asked))) return;
    const asked = ready.find((child) => alive(child) && child.connected);
    this.#asked = asked;
    // a channel that closes meanwhile (the child exiting) answers with an error, not a throw
    asked?.send({ type: 'freeze' }, (error) => {
      if (error && this.#asked === asked) this.#asked = undefined;
    });
  }

  /** `child` froze itself holding the lease of `report.key`: wakes it once another worker has finished that log. */
  frozen(child: ChildProcess, report: Frozen): void {
    // froze after the run ended (a handler asked before that, still going): nothing to show
    if (this.#done) {
      if (alive(child)) child.kill('SIGCONT');
      return;
    }
    this.#asked = undefined;
    this.#frozen = child;
    const { logId } = report.key;
    this.say(`PAUSE: worker ${child.pid} froze itself (SIGSTOP) processing ${logId} under fence ${report.fence}, as a long GC pause would freeze it; it wakes once another worker has processed that log`);
    this.#watch(child, report).catch((error: unknown) => {
      this.#wakeUp(child, `1, gave up watching (${String(error)})`);
      this.say(`PAUSE: gave up watching (${String(error)}); worker ${child.pid} woken`);
    });
  }

  /**
   * Wakes the frozen process, if any: before the orchestrator stops its children, and whenever
   * the orchestrator exits (a stopped process cannot notice that its parent is gone).
   */
  wake(): void {
    if (this.#frozen) this.#wakeUp(this.#frozen, `1, woken at the end of the run`);
    this.#woken = undefined;
    this.#done = true;
  }

  async #watch(child: ChildProcess, report: Frozen): Promise<void> {
    const since = Date.now();
    for (;;) {
      await new Promise((r) => setTimeout(r, 200));
      if (this.#frozen !== child) return;
      const item = await this.tracker.get(report.key);
      const takenOver = item !== null && item.fence > report.fence && (item.status === 'processed' || item.status === 'failed');
      if (!takenOver && Date.now() - since < GIVE_UP_MS && alive(child)) continue;
      const seconds = ((Date.now() - since) / 1000).toFixed(1);
      const { logId } = report.key;
      this.#wakeUp(child, takenOver ? `1, ${seconds} s (${logId})` : `1, ${seconds} s, no takeover`);
      if (takenOver) this.#woken = { child, at: Date.now() };
      const woken = `PAUSE: worker ${child.pid} woken after ${seconds} s`;
      this.say(
        !takenOver
          ? `${woken} without a takeover of ${logId}`
          : item.status === 'processed'
            ? `${woken}; meanwhile ${logId} was reaped and processed under fence ${item.fence}, so what it writes under fence ${report.fence} is refused`
            : `${woken}; meanwhile ${logId} was reaped and parked (${item.status}) under fence ${item.fence}, so its complete under fence ${report.fence} is refused`,
      );
      return;
    }
  }

  #wakeUp(child: ChildProcess, summary: string): void {
    if (alive(child)) child.kill('SIGCONT');
    this.#frozen = undefined;
    this.#done = true;
    this.#summary = summary;
  }
}

/** A worker process's side: whether the orchestrator asked it to freeze (see {@link freezeIfAsked}). */
let asked = false;

/** In a worker process: listens for the orchestrator's request to freeze. */
export function listenForFreeze(): void {
  process.on('message', (m: { type?: string }) => {
    if (m?.type === 'freeze') asked = true;
  });
}

/**
 * In a worker process asked to freeze: tells the orchestrator which lease it holds, then stops
 * itself until the orchestrator wakes it. Elsewhere (or once done) it returns at once.
 */
export async function freezeIfAsked(key: Frozen['key'], fence: number): Promise<void> {
  if (!asked || !process.send) return;
  asked = false;
  const report: Frozen = { type: 'frozen', key, fence };
  await new Promise<void>((resolve) => process.send!(report, () => resolve()));
  process.kill(process.pid, 'SIGSTOP');
}
