// The consumer process of the pickup-latency workload: `node pickup-child.mjs <kind> <url> <table>`,
// kind `leasehold` (wake-ups on), `leasehold-poll` (notifications off: idle workers poll) or
// `graphile` (graphile-worker's run(), LISTEN/NOTIFY). Prints `ready` once idle, then
// `<n> <ms>` when the handler of item n starts (ms: the machine's monotonic clock,
// `process.hrtime`, which every process reads alike). Exits on SIGTERM.
import pg from 'pg';
import { PostgresStore } from '../dist/stores/postgres.js';
import { benchTracker } from './leasehold.mjs';

const [kind, url, table] = process.argv.slice(2);
const now = () => Number(process.hrtime.bigint()) / 1e6;
const say = (line) => process.stdout.write(`${line}\n`);
let stop;

if (kind === 'graphile') {
  const { run, Logger } = await import('graphile-worker');
  const runner = await run({
    connectionString: url,
    concurrency: 1,
    noHandleSignals: true,
    logger: new Logger(() => () => {}),
    taskList: { pickup: async (payload) => say(`${payload.n} ${now()}`) },
  });
  stop = () => runner.stop();
} else {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => {});
  const tracker = benchTracker(new PostgresStore({ pool, table, notifications: kind === 'leasehold' }));
  await tracker.init();
  // default poll delays (50 ms doubling to 2 s): what a user gets
  const worker = tracker.work('run', (lease) => say(`${lease.key.n} ${now()}`));
  await worker.drain();
  stop = async () => {
    await worker.stop();
    await pool.end();
  };
}
say('ready');
process.once('SIGTERM', () => stop().then(() => process.exit(0), () => process.exit(1)));
