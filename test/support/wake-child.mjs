// A worker process for the wake-up tests: `node wake-child.mjs <store> <target> <table>`.
// Runs work() with polling so slow (POLL_MS, default 30 s) that only a wake-up can explain a
// quick pickup; prints `idle` once its first claim found nothing, `started <n>` per handler,
// and exits on SIGTERM after stop(). Uses the built package (dist/), as a user would.
import { Tracker } from '../../dist/index.js';
import { jobDefinition } from './job-definition.mjs';

const [kind, target, table] = process.argv.slice(2);
const pollMs = Number(process.env.POLL_MS ?? 30_000);
let store;
let close = async () => {};
if (kind === 'sqlite') {
  const { SqliteStore } = await import('../../dist/stores/sqlite.js');
  store = new SqliteStore({ filename: target, table });
  close = () => store.close();
} else if (kind === 'redis') {
  const { openStore } = await import('./open-store.mjs');
  ({ store, close } = await openStore(kind, target, table));
} else {
  const { default: pg } = await import('pg');
  const { PostgresStore } = await import('../../dist/stores/postgres.js');
  const pool = new pg.Pool({ connectionString: target, max: 3 });
  pool.on('error', () => {});
  store = new PostgresStore({ pool, table });
  close = () => pool.end();
}
const say = (line) => process.stdout.write(`${line}\n`);
const tracker = new Tracker(jobDefinition(store, { ttlMs: 60_000 }));
tracker.on('error', (e) => say(`error ${e.operation}: ${e.error}`));
await tracker.init();
const worker = tracker.work('run', async (lease) => say(`started ${lease.key.n}`), { pollMinMs: pollMs, pollMaxMs: pollMs, reapIntervalMs: false });
// the first drain's wake-up is still pending when it resolves (the claim that settled it was
// already under way) and costs one more claim; after the second, the worker is asleep
await worker.drain();
await worker.drain();
say('idle');
process.once('SIGTERM', async () => {
  await worker.stop();
  await close();
  say('stopped');
});
