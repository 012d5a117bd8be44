// Writes the measured part of docs/performance.md (between the `bench:results` markers) from one
// bench run's report, so that every number on that page comes from the run that drew the chart.
// `node bench/report.mjs [bench/results/latest.json]` rewrites it from a saved report.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const START = '<!-- bench:results (written by bench/report.mjs from bench/results/latest.json; do not edit by hand) -->';
const END = '<!-- /bench:results -->';

/** What each ratio compares, for its row in the ratio table. */
const MEANING = {
  leasehold_vs_floor_w8: 'per item ÷ raw per item, W=8',
  leasehold_vs_floor_w32: 'per item ÷ raw per item, W=32',
  leasehold_vs_pgboss_w8: 'per item ÷ pg-boss fetch 1',
  leasehold_batch_vs_graphile_w8: "batched ÷ graphile-worker's best",
  leasehold_batch_vs_floor_batch_w8: 'batched ÷ raw batched',
  graphile_pickup_p50_over_leasehold: "graphile-worker's pickup p50 ÷ leasehold's",
  graphile_pickup_p99_over_leasehold: 'the same for p99',
  leasehold_vs_floor_w8_durable: 'per item ÷ raw per item, W=8, durable server',
  leasehold_vs_floor_w32_durable: 'per item ÷ raw per item, W=32, durable server',
  leasehold_batch_vs_floor_batch_w8_durable: 'batched ÷ raw batched, durable server',
  leasehold_redis_vs_bullmq_w8: 'leasehold on Redis per item ÷ BullMQ, W=8',
  leasehold_redis_batch_vs_bullmq_w8: 'leasehold on Redis in batches of 50 ÷ BullMQ, W=8',
  bullmq_pickup_p50_over_leasehold_redis: "BullMQ's pickup p50 ÷ leasehold on Redis's",
};

const int = (n) => Math.round(n).toLocaleString('en-US');
const fixed = (n, digits = 2) => (n === undefined || n === null ? '—' : n.toFixed(digits));
const ratio = (n) => (n >= 10 ? int(n) : n.toFixed(2));

/** The markdown of one report's measurements. */
export function renderResults(report) {
  const lines = [];
  const out = (line = '') => lines.push(line);
  out(`Run of ${report.date.slice(0, 10)} on ${report.machine.cpus} cores (${report.machine.cpu}), Node ${report.machine.node}, PostgreSQL ${report.versions.postgres}; the whole bench took **${Math.round(report.seconds)} s**.`);
  out();
  out('| workload | items/s (median) | min–max | round trips/item | claim p50 ms | claim p99 ms | peak RSS MiB |');
  out('|---|---|---|---|---|---|---|');
  for (const r of report.results) {
    out(`| ${r.name} | ${int(r.median)} | ${int(r.min)}–${int(r.max)} | ${fixed(r.statementsPerItem)} | ${fixed(r.p50)} | ${fixed(r.p99)} | ${r.rssMiB ?? '—'} |`);
  }
  out();
  out('### Same-run ratios');
  out();
  out('| ratio | value | target | |');
  out('|---|---|---|---|');
  for (const [key, value] of Object.entries(report.ratios)) {
    const target = report.targets[key];
    const verdict = target === undefined ? 'reported' : value >= target ? 'met' : '**missed**';
    out(`| \`${key}\` (${MEANING[key] ?? key}) | ${ratio(value)} | ${target === undefined ? '—' : `≥ ${target}`} | ${verdict} |`);
  }
  out();
  out('### Scale: claim-next and reapStale as the table grows');
  out();
  out('1% of rows waiting, 1% held, the rest finished; 200 claims and 10 sweeps of 20 expired leases each:');
  out();
  out('| rows | claim-next ms (median) | reapStale ms (median) |');
  out('|---|---|---|');
  for (const s of report.scale) out(`| ${int(s.rows)} | ${fixed(s.claimMs)} | ${fixed(s.reapMs)} |`);
  const stats = report.scale.find((s) => s.dashboardStatsMs !== undefined);
  if (stats) out(`\nThe dashboard's stats endpoint at ${int(stats.rows)} rows: ${fixed(stats.dashboardStatsMs, 1)} ms (median of 5, over HTTP, no cache).`);
  out();
  out('### Contention');
  out();
  const c = report.contention;
  out(`${c.workers} workers claiming the same ${c.items} items by key (and releasing them) for 3 s: ${int(c.attempts)} claims, ${int(c.wins)} won, **${fixed(c.wastedPerWin)} wasted round trips per successful claim**.`);
  out();
  out('### Pickup latency (PostgreSQL)');
  out();
  out(`${report.pickup.rounds} rounds of ${report.pickup.perRound} items, ${report.pickup.gapMs.join('–')} ms apart (see below):`);
  out();
  out('| variant | p50 ms | p90 ms | p99 ms | max ms |');
  out('|---|---|---|---|---|');
  for (const [name, v] of Object.entries(report.pickup.variants)) out(`| ${name} | ${fixed(v.p50, 1)} | ${fixed(v.p90, 1)} | ${fixed(v.p99, 1)} | ${fixed(v.max, 1)} |`);
  if (report.redis) {
    const r = report.redis;
    out();
    out(`### Redis: leasehold beside BullMQ (redis-server ${r.versions.redis}, BullMQ ${r.versions.bullmq}, ioredis ${r.versions.ioredis})`);
    out();
    out('| workload | items/s (median) | min–max |');
    out('|---|---|---|');
    for (const x of r.results) out(`| ${x.name} | ${int(x.median)} | ${int(x.min)}–${int(x.max)} |`);
    out();
    out('| pickup (one item at a time) | p50 ms | p90 ms | p99 ms | max ms |');
    out('|---|---|---|---|---|');
    for (const [name, v] of Object.entries(r.pickup.variants)) out(`| ${name} | ${fixed(v.p50, 1)} | ${fixed(v.p90, 1)} | ${fixed(v.p99, 1)} | ${fixed(v.max, 1)} |`);
  }
  return lines.join('\n');
}

/** Rewrites the measured part of `docs/performance.md` from `report`. */
export function writePerformanceDoc(report, file = join(here, '..', 'docs', 'performance.md')) {
  const text = readFileSync(file, 'utf8');
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  if (from < 0 || to < from) throw new Error(`[bench] ${file} has no ${START} … ${END} section to write the results into`);
  writeFileSync(file, `${text.slice(0, from + START.length)}\n\n${renderResults(report)}\n\n${text.slice(to)}`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const source = process.argv[2] ?? join(here, 'results', 'latest.json');
  writePerformanceDoc(JSON.parse(readFileSync(source, 'utf8')));
  console.log(`[bench] docs/performance.md: results written from ${source}`);
}
