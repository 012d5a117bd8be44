// What do the columns a statement returns cost, and what is left when it returns almost nothing?
// `node bench/returning.mjs [rounds=9]` captures the claim and the batch settle that a
// PostgresStore sends (batches of 50, W=8), then drains the same table with those statements sent
// by `pg` alone, each with another RETURNING list, interleaved with the raw-SQL floor:
//   shipped   the statements as leasehold sends them
//   lean      the claim without `updated_at` (it equals the deadline minus the ttl)
//   untimed   the claim without times or the last error
//   ids       the claim returning only `id`, the settle nothing: the floor's output on leasehold's
//             table, so what is left against the floor is the table (its width, two indexes per
//             transition, the key table's foreign key) and the wider SET and WHERE
// and prints medians of the rounds after the first. A measurement, not part of `npm run bench`:
// see docs/performance.md.
import pg from 'pg';
import { PostgresStore } from '../dist/stores/postgres.js';
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs';
import { drainFloor, seedFloor } from './floor.mjs';
import { benchTracker, seedLeaseholdPg } from './leasehold.mjs';
import { concurrently, interleavedRounds } from './lib.mjs';

const rounds = Number(process.argv[2] ?? 9);
const batch = 50, workers = 8, items = 20_000, table = 'returning';
const server = await startEmbeddedPostgres({});
const admin = new pg.Pool({ connectionString: server.url, max: 2 });
const pool = new pg.Pool({ connectionString: server.url, max: workers });
for (const p of [admin, pool]) p.on('error', () => {});

const sent = [];
const tracker = benchTracker(new PostgresStore({ pool: { query: (q) => (sent.push(q), pool.query(q)) }, table }));
await seedLeaseholdPg(admin, tracker, table, batch);
await tracker.completeBatch(await tracker.claimBatch('run', { owner: 'w0', limit: batch }));
const claim = sent.find((q) => /FOR UPDATE SKIP LOCKED/.test(q.text));
const settle = sent[sent.indexOf(claim) + 1];
if (!claim || !settle || !/ RETURNING /.test(claim.text) || !/^\{[\d,]+\}$/.test(String(settle.values[0]))) {
  throw new Error('bench/returning.mjs: the store sent statements of another form than this script expects; update it');
}
const body = (q) => q.text.slice(0, q.text.lastIndexOf(' RETURNING '));
// the returned columns, split at the commas outside parentheses
const returned = [''];
let depth = 0;
for (const ch of claim.text.slice(claim.text.lastIndexOf(' RETURNING ') + 11)) {
  depth += ch === '(' ? 1 : ch === ')' ? -1 : 0;
  if (ch === ',' && depth === 0) returned.push('');
  else returned[returned.length - 1] += ch;
}
const without = (...names) => returned.filter((c) => !names.some((n) => c.includes(`t.${n}`))).map((c) => c.trim()).join(', ');
const variants = {
  shipped: [claim.text, settle.text],
  lean: [`${body(claim)} RETURNING ${without('updated_at')}`, settle.text],
  untimed: [`${body(claim)} RETURNING ${without('updated_at', 'created_at', 'deadline', 'last_error')}`, settle.text],
  ids: [`${body(claim)} RETURNING t.id::text AS id`, body(settle)],
};

function drainVariant(name, [claimText, settleText]) {
  return async () => {
    let done = 0;
    await concurrently(workers, Date.now() + 30_000, async (w) => {
      const values = [...claim.values];
      values[values.indexOf('w0')] = `w${w}`;
      const { rows } = await pool.query({ name: `returning_claim_${name}`, text: claimText, values });
      if (rows.length === 0) return false;
      const settled = await pool.query({ name: `returning_settle_${name}`, text: settleText, values: [`{${rows.map((r) => r.id).join(',')}}`, ...settle.values.slice(1)] });
      if (settled.rowCount !== rows.length) throw new Error(`${name} settled ${settled.rowCount} of ${rows.length}`);
      done += rows.length;
      return true;
    });
    return done;
  };
}

const seed = () => seedLeaseholdPg(admin, tracker, table, items);
const workloads = [
  ['floor', () => seedFloor(admin, items), () => drainFloor(pool, { workers, batch, deadline: Date.now() + 30_000 })],
  ...Object.entries(variants).map(([name, texts]) => [name, seed, drainVariant(name, texts)]),
];
await interleavedRounds(server.dataDir, workloads, rounds);
await Promise.all([admin, pool].map((p) => p.end()));
await server.stop();
