// leasehold on Redis against BullMQ on the same redis-server: a no-op handler, 8 concurrent
// workers taking one item at a time (leasehold: claim + complete; BullMQ: a Worker with
// concurrency 8), and leasehold in batches of 50 (BullMQ has no batches outside its Pro edition),
// repetitions interleaved A B C A B C so that a machine's drift hits all alike; then pickup
// latency of one idle worker in a process of its own (BullMQ's blocking wait vs pub/sub).
// `node bench/redis.mjs [--items N] [--runs R]` runs it alone; bench/run.mjs calls benchRedis().
// `node bench/redis.mjs --memory` measures the server memory per item instead (docs/stores/redis.md).
// The server is REDIS_URL, or the system redis-server started with `appendonly yes` and
// `appendfsync always` (the settings RedisStore requires; BullMQ pays the same fsyncs).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { Tracker } from '../dist/index.js';
import { RedisStore } from '../dist/stores/redis.js';
import { redisServerBinary, startRedisServer } from '../scripts/redis-server.mjs';
import { benchTracker, drainLeasehold } from './leasehold.mjs';
import { median, percentile, sleep, startConsumer } from './lib.mjs';

const WORKERS = 8;
let round = 0;

const BATCH = 50;
const here = dirname(fileURLToPath(import.meta.url));

/** Seeds `items` items (not measured), then drains them with W=8, per item or in batches; items per second. */
async function leaseholdRun(client, items, deadline, batch = 1) {
  const tracker = benchTracker(new RedisStore({ client, prefix: `bench_leasehold_${process.pid}_${++round}` }));
  for (let n = 0; n < items; n += 500) await Promise.all(Array.from({ length: Math.min(500, items - n) }, (_, i) => tracker.track({ n: n + i })));
  const t0 = performance.now();
  const done = await drainLeasehold(tracker, { workers: WORKERS, batch, deadline });
  return { done, seconds: (performance.now() - t0) / 1000 };
}

/** Adds `items` jobs (not measured), then runs one Worker with concurrency 8 until all completed. */
async function bullmqRun(url, items, deadline) {
  const name = `bench_bullmq_${process.pid}_${++round}`;
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection });
  for (let n = 0; n < items; n += 500) await queue.addBulk(Array.from({ length: Math.min(500, items - n) }, (_, i) => ({ name: 'job', data: { n: n + i } })));
  let done = 0;
  let finish;
  const finished = new Promise((resolve) => (finish = resolve));
  const t0 = performance.now();
  const workerConnection = new Redis(url, { maxRetriesPerRequest: null });
  const worker = new Worker(name, async () => {}, { connection: workerConnection, concurrency: WORKERS });
  worker.on('completed', () => {
    if (++done >= items) finish();
  });
  const timer = setTimeout(finish, Math.max(0, deadline - Date.now()));
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  clearTimeout(timer);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  // BullMQ leaves connections it was given open
  await Promise.all([connection.quit(), workerConnection.quit()]);
  return { done, seconds };
}

/**
 * Runs both `runs` times, interleaved; returns both rows and the same-run ratio
 * `leasehold_redis_vs_bullmq_w8` (median items/s of leasehold over BullMQ's), or undefined when
 * no Redis server can be had.
 */
export async function benchRedis({ items = 5_000, runs = 3, maxSeconds = 10, pickup: pickupOptions = { rounds: 4, perRound: 30, warmup: 3, gapMs: [20, 50] }, log = console.log } = {}) {
  const binary = process.env.REDIS_URL ? undefined : redisServerBinary();
  if (!process.env.REDIS_URL && !binary) {
    log('[bench] redis: no REDIS_URL and no redis-server installed: leasehold on Redis vs BullMQ is not part of this run');
    return undefined;
  }
  const server = binary ? await startRedisServer(binary) : { url: process.env.REDIS_URL, stop: async () => {} };
  const client = new Redis(server.url);
  try {
    // one small unmeasured round each first: JIT warm-up and script loading are not part of either
    await leaseholdRun(client, Math.ceil(items / 10), Date.now() + maxSeconds * 1000);
    await bullmqRun(server.url, Math.ceil(items / 10), Date.now() + maxSeconds * 1000);
    const rates = { leasehold: [], bullmq: [], 'leasehold batch': [] };
    const deadline = () => Date.now() + maxSeconds * 1000;
    const variants = [
      ['leasehold', () => leaseholdRun(client, items, deadline())],
      ['bullmq', () => bullmqRun(server.url, items, deadline())],
      ['leasehold batch', () => leaseholdRun(client, items, deadline(), BATCH)],
    ];
    for (let r = 0; r < runs; r++) {
      for (const [library, run] of variants) {
        const { done, seconds } = await run();
        rates[library].push(done / seconds);
        log(`[bench] redis: ${library} run ${r + 1}: ${done} items in ${seconds.toFixed(2)} s, ${(done / seconds).toFixed(0)} items/s`);
      }
    }
    const version = (name) => JSON.parse(readFileSync(join(fileURLToPath(new URL('..', import.meta.url)), 'node_modules', name, 'package.json'), 'utf8')).version;
    const row = (library, name, mode = 'per-item') => ({ name, library: library.split(' ')[0], store: 'redis', mode, workers: WORKERS, median: median(rates[library]), min: Math.min(...rates[library]), max: Math.max(...rates[library]) });
    const results = [
      row('leasehold', 'leasehold redis, per item, W=8'),
      row('bullmq', `BullMQ ${version('bullmq')}, Worker concurrency 8`),
      row('leasehold batch', `leasehold redis, batches of ${BATCH}, W=8`, 'batch'),
    ];
    const pickup = await redisPickup(server.url, pickupOptions);
    const serverVersion = /redis_version:(\S+)/.exec(await client.info('server'))?.[1];
    const ratios = {
      leasehold_redis_vs_bullmq_w8: results[0].median / results[1].median,
      leasehold_redis_batch_vs_bullmq_w8: results[2].median / results[1].median,
      bullmq_pickup_p50_over_leasehold_redis: pickup.variants.bullmq.p50 / pickup.variants.leasehold.p50,
    };
    return { results, pickup, versions: { bullmq: version('bullmq'), ioredis: version('ioredis'), redis: serverVersion }, ratio: ratios.leasehold_redis_vs_bullmq_w8, ratios };
  } finally {
    await client.quit();
    await server.stop();
  }
}

/** Starts a consumer process; resolves once it is idle. */
const consumer = (kind, url, name) => startConsumer(join(here, 'redis-pickup-child.mjs'), [kind, url, name], `redis pickup consumer ${kind}`);

/**
 * Pickup latency on one redis-server: items added one at a time, `gapMs` apart, each consumed by
 * one idle worker (concurrency 1) in a process of its own; from the producer's call (`track`,
 * BullMQ's `queue.add`) to the start of the handler, in interleaved rounds. BullMQ's worker
 * waits on a blocking Redis command; leasehold's on pub/sub.
 */
async function redisPickup(url, { rounds, perRound, warmup, gapMs: [gapMin, gapMax] }) {
  const name = `bench_pickup_${process.pid}`;
  const client = new Redis(url);
  const tracker = benchTracker(new RedisStore({ client, prefix: name }));
  await tracker.init();
  const queue = new Queue(name, { connection: new Redis(url, { maxRetriesPerRequest: null }) });
  const variants = [
    { name: 'leasehold', add: (n) => tracker.track({ n }), consumer: await consumer('leasehold', url, name) },
    { name: 'bullmq', add: (n) => queue.add('pickup', { n }), consumer: await consumer('bullmq', url, name) },
  ];
  const summary = (xs) => ({ items: xs.length, p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: Math.max(...xs) });
  const now = () => Number(process.hrtime.bigint()) / 1e6;
  try {
    await sleep(500);
    const latencies = variants.map(() => []);
    let next = 1;
    const batch = async (i, count, record) => {
      const sent = new Map();
      for (let k = 0; k < count; k++) {
        await sleep(gapMin + Math.random() * (gapMax - gapMin));
        const n = next++;
        sent.set(n, now());
        await variants[i].add(n);
      }
      const deadline = Date.now() + 30_000;
      while ([...sent.keys()].some((n) => !variants[i].consumer.started.has(n)) && Date.now() < deadline) await sleep(20);
      if (!record) return;
      // an item not started within 30 s counts as 30 s: a miss must not flatter anyone
      for (const [n, t] of sent) latencies[i].push((variants[i].consumer.started.get(n) ?? t + 30_000) - t);
    };
    for (let i = 0; i < variants.length; i++) await batch(i, warmup, false);
    for (let r = 0; r < rounds; r++) for (let j = 0; j < variants.length; j++) await batch((r + j) % variants.length, perRound, true);
    return { rounds, perRound, gapMs: [gapMin, gapMax], variants: Object.fromEntries(variants.map((v, i) => [v.name, summary(latencies[i])])) };
  } finally {
    await Promise.all(variants.map((v) => v.consumer.stop()));
    await queue.obliterate({ force: true });
    await queue.close();
    await queue.opts.connection.quit();
    await client.quit();
  }
}

/**
 * Bytes of server memory (`INFO memory` used_memory) per item after tracking `items` items and
 * claiming and completing a fifth of them: a small key without data, and the partner-log key and
 * data, under Redis's default `hash-max-listpack-value` (64) and with 256.
 */
export async function memoryPerItem({ items = 100_000 } = {}) {
  const binary = redisServerBinary();
  if (!binary) throw new Error('needs the system redis-server');
  const out = {};
  for (const listpack of [undefined, '256']) {
    const server = await startRedisServer(binary, ['--appendonly', 'no', ...(listpack ? ['--hash-max-listpack-value', listpack] : [])]);
    const client = new Redis(server.url);
    const used = async () => Number(/used_memory:(\d+)/.exec(await client.info('memory'))[1]);
    for (const shape of ['small', 'partner-log']) {
      await client.flushall();
      const before = await used();
      const small = shape === 'small';
      const tracker = new Tracker({
        store: new RedisStore({ client, prefix: 'memory', durability: 'relaxed' }),
        statuses: ['pending', 'downloading', 'downloaded', 'failed'],
        initial: 'pending',
        key: small ? z.object({ n: z.number() }) : z.object({ logId: z.string(), partnerCode: z.string(), aircraftId: z.string(), customerId: z.string() }),
        data: z.object({ localFilePath: z.string().optional(), bytes: z.number().optional() }),
        stages: { download: { from: 'pending', active: 'downloading', done: 'downloaded', failed: 'failed' } },
        lease: { ttlMs: 30_000 },
      });
      const track = (n) =>
        small
          ? tracker.track({ n })
          : tracker.track({ logId: `LOG-2024-${String(n).padStart(8, '0')}`, partnerCode: 'ACME', aircraftId: `N${10_000 + (n % 500)}`, customerId: `C-${n % 97}` }, { localFilePath: `/data/partner/acme/LOG-${n}.bin`, bytes: 123_456 });
      for (let n = 0; n < items; n += 500) await Promise.all(Array.from({ length: Math.min(500, items - n) }, (_, i) => track(n + i)));
      for (let left = Math.floor(items / 5); left > 0; left -= 500) await tracker.completeBatch(await tracker.claimBatch('download', { owner: 'worker-1', limit: Math.min(500, left) }));
      out[`${shape}, hash-max-listpack-value ${listpack ?? '64 (default)'}`] = Math.round(((await used()) - before) / items);
    }
    await client.quit();
    await server.stop();
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { items: { type: 'string' }, runs: { type: 'string', default: '3' }, memory: { type: 'boolean', default: false } } });
  const out = values.memory
    ? await memoryPerItem({ items: Number(values.items ?? 100_000) })
    : await benchRedis({ items: Number(values.items ?? 5_000), runs: Number(values.runs) });
  console.log(JSON.stringify(out, null, 2));
}
