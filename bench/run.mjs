// `npm run bench`: leasehold against the raw-SQL floor, pg-boss and graphile-worker on one
// embedded PostgreSQL, side by side in one run; then scale, contention and the other stores.
// Writes bench/results/latest.json (with same-run ratios), docs/performance.svg and the measured
// part of docs/performance.md, all from one run.
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';
import { createDashboard } from '../dist/dashboard.js';
import { MemoryStore } from '../dist/stores/memory.js';
import { PostgresStore } from '../dist/stores/postgres.js';
import { SqliteStore } from '../dist/stores/sqlite.js';
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs';
import { drainFloor, seedFloor } from './floor.mjs';
import { benchTracker, drainLeasehold, seedLeaseholdPg } from './leasehold.mjs';
import { commits, countingPool, countingStore, median, percentile, rssSampler, sleep } from './lib.mjs';
import { drainGraphile, drainPgBoss } from './peers.mjs';
import { pickupLatency } from './pickup.mjs';
import { benchRedis } from './redis.mjs';
import { writePerformanceDoc } from './report.mjs';
import { contention, scaleLatency } from './scale.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: {
    items: { type: 'string', default: '20000' },
    runs: { type: 'string', default: '3' },
    // per-item drains finish a few thousand items in this time: plenty for a rate, and 3 runs
    // of every workload, interleaved, fit the whole bench in a few minutes on 2 cores
    'max-seconds': { type: 'string', default: '3' },
    'chart-only': { type: 'boolean', default: false },
    smoke: { type: 'boolean', default: false },
    out: { type: 'string', default: join(here, 'results', 'latest.json') },
    chart: { type: 'string', default: join(here, '..', 'docs', 'performance.svg') },
    // the measured part of this page is rewritten from the same run (bench/report.mjs); a smoke
    // run leaves the page alone unless given one
    doc: { type: 'string', default: '' },
  },
});
const smoke = args.smoke;
const ITEMS = smoke ? 300 : Number(args.items);
const RUNS = smoke ? 1 : Number(args.runs);
const MAX_SECONDS = smoke ? 2 : Number(args['max-seconds']);
const BATCH = 50;
// a batched drain of ITEMS takes under a second: more runs of it cost little and steady its median
const BATCH_RUNS = smoke ? 1 : Math.max(RUNS, 5);
// the uncounted first round of a floor/leasehold comparison (see `compare`)
const WARMUP_SECONDS = 1;
const log = (line) => console.log(line);

export async function main() {
  const started = Date.now();
  const server = process.env.TEST_POSTGRES_URL ? { url: process.env.TEST_POSTGRES_URL, stop: async () => {} } : await startEmbeddedPostgres();
  const url = server.url;
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  admin.on('error', () => {});
  const results = [];
  const pools = [];
  const poolOf = (max, at = url) => {
    const p = new pg.Pool({ connectionString: at, max });
    p.on('error', () => {});
    pools.push(p);
    return p;
  };
  let durable;
  try {
    /**
     * One run of a workload: `setup` seeds, `drain(deadline, latencies)` returns items done (and
     * optionally its own seconds). Round trips are counted at the client (`counter.calls`) where
     * we drive the queries; for pg-boss and graphile-worker, whose connections are closed when
     * they return (which flushes their statistics), from the server's commit counter.
     */
    const counter = { calls: 0 };
    const runOnce = async (w, db = admin, limit = w.seconds ?? MAX_SECONDS) => {
      await w.setup();
      counter.calls = 0;
      const before = await commits(db);
      const latencies = [];
      const peak = rssSampler();
      const t0 = performance.now();
      const out = await w.drain(Date.now() + limit * 1000, latencies);
      const seconds = out.seconds ?? (performance.now() - t0) / 1000;
      const done = out.done ?? out;
      let calls = counter.calls;
      if (w.meta.serverCount) {
        await sleep(300);
        calls = (await commits(db)) - before;
      }
      return { done, seconds, itemsPerSec: done / seconds, statementsPerItem: calls / Math.max(1, done), p50: percentile(latencies, 50), p99: percentile(latencies, 99), rssMiB: peak() };
    };
    const summarize = (w, runs) => {
      const rates = runs.map((x) => x.itemsPerSec);
      const row = { name: w.name, ...w.meta, median: median(rates), min: Math.min(...rates), max: Math.max(...rates), statementsPerItem: median(runs.map((x) => x.statementsPerItem)), p50: median(runs.map((x) => x.p50)), p99: median(runs.map((x) => x.p99)), rssMiB: Math.max(...runs.map((x) => x.rssMiB)), runs };
      results.push(row);
      log(`${w.name.padEnd(52)} ${fmt(row.median).padStart(9)} items/s  (${fmt(row.min)}–${fmt(row.max)})  ${row.statementsPerItem.toFixed(2)} stmt/item`);
      return row;
    };
    /**
     * Runs workloads `runs` times each, interleaved (A B A B ...), so that load from elsewhere on
     * a shared machine falls on every side of a comparison alike. With `warmup`, one interleaved
     * round of at most `WARMUP_SECONDS` a drain runs first and is not counted: a first drain of a
     * new shape runs cold (JIT, connections, the server's caches), on both sides but not alike.
     */
    const compare = async (workloads, runs = RUNS, db = admin, { warmup = false } = {}) => {
      if (warmup) for (const w of workloads) await runOnce(w, db, WARMUP_SECONDS);
      const all = workloads.map(() => []);
      for (let r = 0; r < runs; r++) for (const [i, w] of workloads.entries()) all[i].push(await runOnce(w, db));
      return workloads.map((w, i) => summarize(w, all[i]));
    };

    /** The raw-SQL floor and leasehold on one server, per item (batch 1) or batched, W workers. */
    const floorAndLeasehold = (at, db, { workers, batch = 1, suffix = '', extra = {} }) => {
      const pool = poolOf(workers, at);
      const tracker = benchTracker(countingStore(new PostgresStore({ pool, table: 'bench_leasehold' }), counter));
      const mode = batch === 1 ? 'per-item' : 'batch';
      const shape = batch === 1 ? `per item, W=${workers}` : `batches of ${batch}, W=${workers}`;
      return [
        { name: `raw SQL floor, ${shape}${suffix}`, meta: { library: 'floor', mode, workers, ...extra }, setup: () => seedFloor(db, ITEMS), drain: (deadline, latencies) => drainFloor(countingPool(pool, counter), { workers, batch, deadline, latencies }) },
        { name: `leasehold postgres, ${shape}${suffix}`, meta: { library: 'leasehold', mode, workers, ...extra }, setup: () => seedLeaseholdPg(db, tracker, 'bench_leasehold', ITEMS), drain: (deadline, latencies) => drainLeasehold(tracker, { workers, batch, deadline, latencies }), tracker },
      ];
    };

    log(`leasehold bench: ${ITEMS} items, median of ${RUNS} interleaved run(s) (${BATCH_RUNS} batched)${smoke ? '' : ' after an uncounted warm-up round'}, at most ${MAX_SECONDS} s each, no-op handler, PostgreSQL ${(await admin.query('SHOW server_version')).rows[0].server_version}`);
    for (const workers of smoke ? [8, 32] : [1, 8, 32]) await compare(floorAndLeasehold(url, admin, { workers }), RUNS, admin, { warmup: !smoke });
    const batched = floorAndLeasehold(url, admin, { workers: 8, batch: BATCH });
    await compare(batched, BATCH_RUNS, admin, { warmup: !smoke });
    if (!smoke) {
      const run = promisify(execFile);
      const tracker = batched[1].tracker;
      await compare([
        {
          name: 'leasehold postgres, per item, 4 processes x W=2',
          meta: { library: 'leasehold', mode: 'processes', workers: 8 },
          // starting four Node processes takes a second or two of the deadline on a loaded machine
          seconds: MAX_SECONDS + 3,
          setup: () => seedLeaseholdPg(admin, tracker, 'bench_leasehold', ITEMS),
          drain: async (deadline) => {
            const outs = await Promise.all([0, 1, 2, 3].map(() => run(process.execPath, [join(here, 'child.mjs'), url, 'bench_leasehold', '2', '1', String(deadline)])));
            const reports = outs.map((o) => JSON.parse(o.stdout.trim()));
            counter.calls += reports.reduce((a, r) => a + r.calls, 0);
            return { done: reports.reduce((a, r) => a + r.done, 0), seconds: Math.max(...reports.map((r) => r.seconds)) };
          },
        },
      ]);
    }
    // the peers: their rates are steady (pg-boss fetch 1 is bound by its polling interval), and
    // their ratios to leasehold are far from their targets, so fewer runs do
    const noSetup = async () => {};
    const PEER_RUNS = smoke ? 1 : 2;
    for (const batch of [1, 200]) {
      // fetch 1 finishes a few dozen jobs in the time: no need to insert thousands first
      const items = batch === 1 ? Math.min(ITEMS, 1_000) : ITEMS;
      await compare([{ name: `pg-boss 10, fetch ${batch}, W=8`, meta: { library: 'pg-boss', mode: batch === 1 ? 'per-item' : 'batch', workers: 8, batch, serverCount: true }, setup: noSetup, drain: (deadline) => drainPgBoss(url, admin, { items, workers: 8, batch, deadline }) }], PEER_RUNS);
    }
    await compare(
      [0, 500].map((localQueue) => ({ name: `graphile-worker 0.17, ${localQueue ? `local queue ${localQueue}` : 'no local queue'}, W=8`, meta: { library: 'graphile-worker', mode: localQueue ? 'batch' : 'per-item', workers: 8, localQueue, serverCount: true }, setup: noSetup, drain: (deadline) => drainGraphile(url, admin, { items: ITEMS, workers: 8, localQueue, deadline }) })),
      PEER_RUNS,
    );

    // durable: the same comparisons on a second server with PostgreSQL's default durability
    // (fsync and synchronous_commit on), as users run it: every commit waits for the disk
    durable = await startEmbeddedPostgres({ durable: true });
    {
      const first = pools.length;
      const durableAdmin = poolOf(2, durable.url);
      const setting = async (name) => (await durableAdmin.query(`SHOW ${name}`)).rows[0][name];
      log(`durable server: fsync ${await setting('fsync')}, synchronous_commit ${await setting('synchronous_commit')}, full_page_writes ${await setting('full_page_writes')}`);
      const extra = { durable: true };
      for (const workers of [8, 32]) await compare(floorAndLeasehold(durable.url, durableAdmin, { workers, suffix: ', durable', extra }), RUNS, durableAdmin, { warmup: !smoke });
      await compare(floorAndLeasehold(durable.url, durableAdmin, { workers: 8, batch: BATCH, suffix: ', durable', extra }), BATCH_RUNS, durableAdmin, { warmup: !smoke });
      await Promise.all(pools.splice(first).map((p) => p.end()));
      await durable.stop();
    }

    // pickup latency: one item at a time, consumer in another process
    const pickup = await pickupLatency(url, admin, smoke ? { rounds: 2, perRound: 4, warmup: 1, gapMs: [20, 50] } : { rounds: 6, perRound: 50, warmup: 3, gapMs: [20, 50] });
    for (const [name, v] of Object.entries(pickup.variants)) {
      log(`pickup: ${name.padEnd(26)} p50 ${v.p50.toFixed(1).padStart(7)} ms  p90 ${v.p90.toFixed(1).padStart(7)} ms  p99 ${v.p99.toFixed(1).padStart(7)} ms  max ${v.max.toFixed(1).padStart(7)} ms  (${v.items} items)`);
    }

    // the same drain on the other stores
    const others = [
      ['sqlite', () => new SqliteStore({ filename: join(mkdtempSync(join(tmpdir(), 'leasehold-bench-')), 'bench.sqlite'), table: 'bench' })],
      ['memory', () => new MemoryStore()],
    ];
    if (process.env.MONGODB_URI) {
      const { MongoClient } = await import('mongodb');
      const { MongoStore } = await import('../dist/stores/mongodb.js');
      const client = await MongoClient.connect(process.env.MONGODB_URI);
      others.push(['mongodb', () => new MongoStore({ collection: client.db('leasehold_bench').collection(`bench_${Date.now()}`) })]);
    }
    for (const [store, make] of others) {
      for (const batch of [1, BATCH]) {
        let tracker;
        const seed = async () => {
          tracker = benchTracker(countingStore(make(), counter));
          for (let n = 0; n < ITEMS; n += 500) await Promise.all(Array.from({ length: Math.min(500, ITEMS - n) }, (_, i) => tracker.track({ n: n + i })));
        };
        await compare([{ name: `leasehold ${store}, ${batch === 1 ? 'per item' : `batches of ${batch}`}, W=8`, meta: { library: 'leasehold', store, mode: batch === 1 ? 'per-item' : 'batch', workers: 8 }, setup: seed, drain: (deadline, latencies) => drainLeasehold(tracker, { workers: 8, batch, deadline, latencies }) }]);
      }
    }

    const scale = [];
    for (const rows of smoke ? [1_000] : [10_000, 100_000, 1_000_000]) {
      const largest = rows === (smoke ? 1_000 : 1_000_000);
      const s = await scaleLatency(admin, poolOf(2), rows, largest ? { also: dashboardStats } : {});
      scale.push(s);
      log(`scale: ${String(rows).padStart(9)} rows: claim-next ${s.claimMs.toFixed(2)} ms, reapStale ${s.reapMs.toFixed(2)} ms (median)`);
      if (largest) log(`scale: ${String(rows).padStart(9)} rows: dashboard stats endpoint ${s.dashboardStatsMs.toFixed(1)} ms (median of 5, over HTTP, no cache)`);
    }
    const contended = await contention(poolOf(64), admin, smoke ? 500 : 3_000);
    log(`contention: 64 workers on 10 items: ${contended.attempts} claims, ${contended.wins} won, ${contended.wastedPerWin.toFixed(2)} wasted round trips per successful claim`);
    await Promise.all(pools.map((p) => p.end()));

    const pick = (pred) => results.find(pred)?.median ?? Number.NaN;
    const isPg = (r) => !r.store;
    /** leasehold over the floor on one server, per item at W workers or batched. */
    const overFloor = (mode, workers, isDurable) => {
      const of = (library) => pick((r) => r.library === library && isPg(r) && r.mode === mode && r.workers === workers && !r.durable === !isDurable);
      return of('leasehold') / of('floor');
    };
    const leaseholdW8 = pick((r) => r.library === 'leasehold' && isPg(r) && !r.durable && r.mode === 'per-item' && r.workers === 8);
    const leaseholdBatch = pick((r) => r.library === 'leasehold' && isPg(r) && !r.durable && r.mode === 'batch');
    const graphileBest = Math.max(...results.filter((r) => r.library === 'graphile-worker').map((r) => r.median));
    const ratios = {
      leasehold_vs_floor_w8: overFloor('per-item', 8, false),
      leasehold_vs_floor_w32: overFloor('per-item', 32, false),
      leasehold_vs_pgboss_w8: leaseholdW8 / pick((r) => r.library === 'pg-boss' && r.batch === 1),
      leasehold_batch_vs_graphile_w8: leaseholdBatch / graphileBest,
      leasehold_batch_vs_floor_batch_w8: overFloor('batch', 8, false),
      graphile_pickup_p50_over_leasehold: pickup.variants['graphile-worker'].p50 / pickup.variants.leasehold.p50,
      graphile_pickup_p99_over_leasehold: pickup.variants['graphile-worker'].p99 / pickup.variants.leasehold.p99,
      leasehold_vs_floor_w8_durable: overFloor('per-item', 8, true),
      leasehold_vs_floor_w32_durable: overFloor('per-item', 32, true),
      leasehold_batch_vs_floor_batch_w8_durable: overFloor('batch', 8, true),
    };
    const targets = {
      leasehold_vs_floor_w8: 0.8,
      leasehold_vs_floor_w32: 0.7,
      leasehold_vs_pgboss_w8: 10,
      leasehold_batch_vs_graphile_w8: 1.0,
      leasehold_batch_vs_floor_batch_w8: 0.7,
      graphile_pickup_p50_over_leasehold: 1.0,
      graphile_pickup_p99_over_leasehold: 1.0,
      // the same targets as without durability
      leasehold_vs_floor_w8_durable: 0.8,
      leasehold_vs_floor_w32_durable: 0.7,
      leasehold_batch_vs_floor_batch_w8_durable: 0.7,
    };
    // leasehold on Redis vs BullMQ, on a redis-server of its own (bench/redis.mjs); absent without one
    const redis = await benchRedis({ items: Math.min(ITEMS, 5_000), runs: RUNS, maxSeconds: MAX_SECONDS, ...(smoke ? { pickup: { rounds: 1, perRound: 4, warmup: 1, gapMs: [20, 50] } } : {}), log });
    // the Redis ratios are reported beside BullMQ; issue 17 sets no target for them
    if (redis) Object.assign(ratios, redis.ratios);
    log('\nratios (same run):');
    for (const [k, v] of Object.entries(ratios)) {
      const verdict = k in targets ? `target >= ${targets[k]}  ${v >= targets[k] ? 'met' : 'MISSED'}` : 'reported (no target)';
      log(`  ${k.padEnd(42)} ${v.toFixed(2).padStart(7)}   ${verdict}`);
    }

    const pkg = (name) => JSON.parse(readFileSync(join(here, '..', 'node_modules', name, 'package.json'), 'utf8')).version;
    const report = {
      date: new Date().toISOString(),
      smoke,
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, platform: `${process.platform}-${process.arch}` },
      versions: { leasehold: JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8')).version, pg: pkg('pg'), 'pg-boss': pkg('pg-boss'), 'graphile-worker': pkg('graphile-worker'), 'better-sqlite3': pkg('better-sqlite3'), postgres: (await admin.query('SHOW server_version')).rows[0].server_version },
      method: { items: ITEMS, runs: RUNS, batchRuns: BATCH_RUNS, peerRuns: smoke ? 1 : 2, maxSeconds: MAX_SECONDS, batch: BATCH, warmup: smoke ? 'none' : `each floor/leasehold comparison first runs one uncounted interleaved round, at most ${WARMUP_SECONDS} s a drain`, handler: 'no-op', interleaved: 'the runs of the workloads compared (floor and leasehold at one W, the peers among themselves) alternate: A B A B ...', durable: 'rows marked durable and *_durable ratios: a second embedded PostgreSQL with the default fsync=on, synchronous_commit=on, full_page_writes=on; all other rows: fsync, synchronous_commit and full_page_writes off', pickup: 'items tracked one at a time (graphile-worker: addJob), gapMs apart, each consumed by one idle worker (concurrency 1, default options) in a process of its own; latency from the track call to the start of the handler, in interleaved rounds', roundTripsPerItem: 'client-side count of statements (floor) or store calls (leasehold) per item; pg-boss and graphile-worker: pg_stat_database.xact_commit delta per item, read after their connections closed' },
      results: results.map(({ runs, ...r }) => r),
      scale,
      contention: contended,
      pickup,
      ratios,
      targets,
      redis,
      seconds: (Date.now() - started) / 1000,
    };
    mkdirSync(dirname(args.out), { recursive: true });
    writeFileSync(args.out, `${JSON.stringify(report, null, 2)}\n`);
    writeFileSync(args.chart, chart(report));
    const doc = args.doc || (smoke ? undefined : join(here, '..', 'docs', 'performance.md'));
    if (doc) writePerformanceDoc(report, doc);
    log(`\nwrote ${[args.out, args.chart, doc].filter(Boolean).join(', ')} in ${report.seconds.toFixed(0)} s`);
    return report;
  } finally {
    await admin.end();
    await server.stop();
    await durable?.stop();
  }
}

/** The dashboard's stats endpoint (what its page polls) over node:http, uncached: median ms of 5. */
async function dashboardStats(tracker) {
  const handler = createDashboard({ trackers: { bench: tracker }, readOnly: true, statsCacheMs: 0, sampleIntervalMs: 0 });
  const server = createServer(handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}/api/trackers/bench/stats`;
  const times = [];
  try {
    for (let i = 0; i < 6; i++) {
      const started = performance.now();
      const res = await fetch(url);
      if (!res.ok) throw new Error(`dashboard stats endpoint answered ${res.status}: ${await res.text()}`);
      await res.json();
      // the first request warms up (and overlaps the dashboard's own first sample)
      if (i > 0) times.push(performance.now() - started);
    }
  } finally {
    handler.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  return { dashboardStatsMs: median(times) };
}

function fmt(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a';
}

/** A horizontal bar chart of items/s per workload, median with a min–max whisker. */
function chart(report) {
  // the libraries side by side on PostgreSQL; the other stores are in the table
  const rows = report.results.filter((r) => !r.store);
  const width = 900;
  const barLeft = 330;
  const rowH = 24;
  const height = 60 + rows.length * rowH;
  const max = Math.max(...rows.map((r) => r.max));
  const x = (v) => barLeft + (v / max) * (width - barLeft - 90);
  const color = { leasehold: '#2b6cb0', floor: '#718096', 'pg-boss': '#dd6b20', 'graphile-worker': '#38a169' };
  const esc = (s) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const bars = rows
    .map((r, i) => {
      const y = 40 + i * rowH;
      return `<text x="${barLeft - 8}" y="${y + 15}" text-anchor="end">${esc(r.name)}</text>` +
        `<rect x="${barLeft}" y="${y + 3}" width="${Math.max(1, x(r.median) - barLeft).toFixed(1)}" height="${rowH - 8}" fill="${color[r.library] ?? '#555'}"/>` +
        `<line x1="${x(r.min).toFixed(1)}" x2="${x(r.max).toFixed(1)}" y1="${y + 11}" y2="${y + 11}" stroke="#000" stroke-width="1"/>` +
        `<text x="${(x(r.max) + 6).toFixed(1)}" y="${y + 15}">${fmt(r.median)}</text>`;
    })
    .join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="22" font-size="14" font-weight="bold">Drain throughput on PostgreSQL ${report.versions.postgres}, items/s (median of ${report.method.runs}, batched ${report.method.batchRuns ?? report.method.runs}, whisker min–max) — ${report.method.items} items, ${report.machine.cpus} cores</text>
${bars}
</svg>
`;
}

if (process.argv[1] === fileURLToPath(import.meta.url) && args['chart-only']) {
  // redraw the chart from the last results without measuring again
  writeFileSync(args.chart, chart(JSON.parse(readFileSync(args.out, 'utf8'))));
} else if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().then(
    () => process.exit(0),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}
