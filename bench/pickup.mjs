// Pickup latency: items tracked one at a time with idle gaps, consumed by a worker in another
// process; measured from the producer's track call (graphile-worker: addJob) to the start of
// the handler. leasehold with wake-ups, graphile-worker (LISTEN/NOTIFY) and leasehold with
// polling only, in interleaved rounds (A B C, B C A, ...) so that load on a shared machine
// falls on all of them alike.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { PostgresStore } from '../dist/stores/postgres.js';
import { benchTracker } from './leasehold.mjs';
import { percentile, sleep, startConsumer } from './lib.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Starts a consumer process; resolves once it is idle. */
const consumer = (kind, url, table) => startConsumer(join(here, 'pickup-child.mjs'), [kind, url, table], `pickup consumer ${kind}`);

const summary = (xs) => ({ items: xs.length, p50: percentile(xs, 50), p90: percentile(xs, 90), p99: percentile(xs, 99), max: Math.max(...xs) });

/**
 * Runs `rounds` rounds; in each, every variant gets `perRound` items, `gapMs` apart (uniformly
 * random in the range), and its consumer must have started them all before the next variant
 * goes. Returns p50/p90/p99/max per variant, in milliseconds.
 */
export async function pickupLatency(url, admin, { rounds, perRound, warmup, gapMs: [gapMin, gapMax] }) {
  await admin.query('DROP SCHEMA IF EXISTS graphile_worker CASCADE');
  const { makeWorkerUtils } = await import('graphile-worker');
  const utils = await makeWorkerUtils({ connectionString: url });
  await utils.migrate();
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on('error', () => {});
  const trackerFor = async (table, notifications) => {
    await admin.query(`DROP TABLE IF EXISTS "${table}_keys", "${table}"`);
    const tracker = benchTracker(new PostgresStore({ pool, table, notifications }));
    await tracker.init();
    return tracker;
  };
  const variants = [
    { name: 'leasehold', kind: 'leasehold', table: 'bench_pickup', tracker: await trackerFor('bench_pickup', true) },
    { name: 'graphile-worker', kind: 'graphile', table: '-', add: (n) => utils.addJob('pickup', { n }) },
    { name: 'leasehold, polling only', kind: 'leasehold-poll', table: 'bench_pickup_poll', tracker: await trackerFor('bench_pickup_poll', false) },
  ];
  const consumers = await Promise.all(variants.map((v) => consumer(v.kind, url, v.table)));
  try {
    // let the consumers settle into idling (and LISTEN)
    await sleep(500);
    const latencies = variants.map(() => []);
    let next = 1;
    const batch = async (i, count, record) => {
      const v = variants[i];
      const sent = new Map();
      for (let k = 0; k < count; k++) {
        await sleep(gapMin + Math.random() * (gapMax - gapMin));
        const n = next++;
        sent.set(n, now());
        await (v.tracker ? v.tracker.track({ n }) : v.add(n));
      }
      const deadline = Date.now() + 30_000;
      while ([...sent.keys()].some((n) => !consumers[i].started.has(n)) && Date.now() < deadline) await sleep(20);
      if (!record) return;
      for (const [n, t] of sent) {
        const s = consumers[i].started.get(n);
        // an item not started within 30 s counts as 30 s: a miss must not flatter anyone
        latencies[i].push(s === undefined ? 30_000 : s - t);
      }
    };
    for (let i = 0; i < variants.length; i++) await batch(i, warmup, false);
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < variants.length; j++) await batch((r + j) % variants.length, perRound, true);
    }
    return { rounds, perRound, gapMs: [gapMin, gapMax], variants: Object.fromEntries(variants.map((v, i) => [v.name, summary(latencies[i])])) };
  } finally {
    await Promise.all(consumers.map((c) => c.stop()));
    await utils.release();
    await pool.end();
  }
}
