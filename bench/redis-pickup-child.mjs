// The consumer process of the Redis pickup-latency workload: `node redis-pickup-child.mjs <kind> <url> <name>`,
// kind `leasehold` (RedisStore, pub/sub wake-ups, default poll delays) or `bullmq` (a Worker with
// concurrency 1 and default options: it blocks on Redis for the next job). Prints `ready` once
// idle, then `<n> <ms>` when the handler of item n starts (ms: the machine's monotonic
// clock, `process.hrtime`, which every process reads alike). Exits on SIGTERM.
import { Redis } from 'ioredis';

const [kind, url, name] = process.argv.slice(2);
const now = () => Number(process.hrtime.bigint()) / 1e6;
const say = (line) => process.stdout.write(`${line}\n`);
let stop;

if (kind === 'bullmq') {
  const { Worker } = await import('bullmq');
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const worker = new Worker(name, async (job) => say(`${job.data.n} ${now()}`), { connection, concurrency: 1 });
  await worker.waitUntilReady();
  stop = async () => {
    await worker.close();
    await connection.quit();
  };
} else {
  const { RedisStore } = await import('../dist/stores/redis.js');
  const { benchTracker } = await import('./leasehold.mjs');
  const client = new Redis(url);
  const tracker = benchTracker(new RedisStore({ client, prefix: name }));
  await tracker.init();
  const worker = tracker.work('run', (lease) => say(`${lease.key.n} ${now()}`));
  await worker.drain();
  stop = async () => {
    await worker.stop();
    await client.quit();
  };
}
say('ready');
process.once('SIGTERM', () => stop().then(() => process.exit(0), () => process.exit(1)));
