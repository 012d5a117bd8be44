// A worker process for the worker tests: `node worker-child.mjs <mode> <store> <target> <table>`.
// Uses the built package (dist/), as a user would. Modes:
//   hang      run work() with a handler that never returns (the parent kills it with SIGKILL)
//   defaults  run work() with default options; complete every item; exit on SIGTERM
//   stop      run work() with a handler that never settles and ignores its signal, call stop()
//             once the item is claimed, and then do nothing: the process must exit by itself
import { Tracker } from '../../dist/index.js';
import { jobDefinition } from './job-definition.mjs';
import { openStore } from './open-store.mjs';

const [mode, kind, target, table] = process.argv.slice(2);
const { store, close } = await openStore(kind, target, table);
const say = (line) => process.stdout.write(`${line}\n`);
const ttlMs = Number(process.env.LEASE_TTL_MS ?? 1_000);
const tracker = new Tracker(jobDefinition(store, { ttlMs, backoff: () => 0 }));
await tracker.init();

if (mode === 'hang') {
  tracker.work('run', async (lease) => {
    say(`started ${lease.key.n} fence=${lease.fence}`);
    await new Promise(() => {});
  });
} else if (mode === 'defaults') {
  const worker = tracker.work('run', async (lease) => {
    say(`completing ${lease.key.n} fence=${lease.fence}`);
  });
  say('ready');
  process.once('SIGTERM', async () => {
    await worker.stop();
    await close();
  });
} else if (mode === 'stop') {
  // the handler runs when stop() is called (the `claimed` event comes before it starts); a
  // handler limit far off: its timer must not outlive stop() either
  let started;
  const running = new Promise((resolve) => (started = resolve));
  const worker = tracker.work('run', () => (started(), new Promise(() => {})), { heartbeatMs: 50, stopTimeoutMs: 200, handlerTimeoutMs: 600_000 });
  await running;
  await worker.stop();
  const item = (await tracker.find({ limit: 1 }))[0];
  say(`stopped; item ${item.status} attempts=${item.attempts}`);
  await close();
  // nothing else: no process.exit. Leftover timers of leasehold would keep the process alive.
}
