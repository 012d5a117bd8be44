// A chaos worker process: `node chaos/worker.mjs <store> <target> <table>`. Runs `work()`,
// records each (key, fence) it finishes and each completion the store accepted, and reports
// lost leases to the harness over IPC. It may be killed with SIGKILL or frozen with SIGSTOP.
// Every tracker call it makes is appended to a history file of its own (CHAOS_HISTORY_DIR) for
// the linearizability check; a call cut short by SIGKILL is left without a return.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileHistory, recordTracker } from '../test/support/history-recorder.mjs';
import { chaosTracker, openChaosStore } from './definition.mjs';

const [kind, target, table] = process.argv.slice(2);

// clock skew: this process believes it is CLOCK_SKEW_MS later (or earlier) than it is
const skew = Number(process.env.CLOCK_SKEW_MS ?? 0);
if (skew) {
  const RealDate = Date;
  globalThis.Date = class SkewedDate extends RealDate {
    constructor(...args) {
      super(...(args.length ? args : [RealDate.now() + skew]));
    }
    static now() {
      return RealDate.now() + skew;
    }
  };
}
const exclusive = process.env.CHAOS_EXCLUSIVE === '1';
process.on('disconnect', () => process.exit(0));
const side = await openChaosStore(kind, target, table);
const tracker = chaosTracker(side.store, Number(process.env.CHAOS_TTL_MS) || undefined);
await tracker.init();
if (process.env.CHAOS_HISTORY_DIR) {
  // a restarted worker may get a pid an earlier one had: the name must stay unique in the run
  const name = `worker-${process.pid}-${randomBytes(3).toString('hex')}`;
  // what its recorder notices reaches the verdict (a problem only this process sees)
  recordTracker(tracker, fileHistory(join(process.env.CHAOS_HISTORY_DIR, `${name}.jsonl`)), name, (problem) => process.send?.({ type: 'problem', message: problem }));
}
tracker.on('leaseLost', () => process.send?.({ type: 'leaseLost' }));
tracker.on('reaped', () => process.send?.({ type: 'reaped' }));
tracker.on('error', (e) => process.send?.({ type: 'error', name: e.error?.name, message: String(e.error?.message ?? e.error) }));
// recorded only once the store accepted the completion
tracker.on('completed', (e) => void side.completed(e.key.n, e.fence).catch(() => {}));
const worker = tracker.work(
  'run',
  async (lease) => {
    // with no crashes, no two holders may ever work on one item at once
    if (exclusive && !(await side.hold(lease.key.n))) process.send?.({ type: 'overlap' });
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 100));
    await side.finished(lease.key.n, lease.fence);
    if (exclusive) await side.unhold(lease.key.n);
  },
  { concurrency: 4, owner: `chaos-${process.pid}`, pollMaxMs: 200 },
);
process.once('SIGTERM', async () => {
  await worker.stop({ timeoutMs: 1_000 });
  await side.close();
  process.exit(0);
});
