// How much of the batched drain is leasehold's SQL, and how much its own client code?
// `node bench/replay.mjs [rounds=9]` captures the claim and the settle that a PostgresStore sends
// for a batched drain (batches of 50, W=8), then drains the same table three ways, interleaved
// (floor, replay, leasehold, floor, ...): the raw-SQL floor; "replay", those captured statements
// sent with `pg` alone (no leasehold code: ids and fence read from the claimed rows); and
// leasehold itself. Prints items/s and the client's and the server's CPU per item, then the
// medians of the rounds after the first. A measurement, not part of `npm run bench`: see
// docs/performance.md.
import pg from 'pg';
import { PostgresStore } from '../dist/stores/postgres.js';
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs';
import { drainFloor, seedFloor } from './floor.mjs';
import { benchTracker, drainLeasehold, seedLeaseholdPg } from './leasehold.mjs';
import { concurrently, interleavedRounds } from './lib.mjs';

const rounds = Number(process.argv[2] ?? 9);
const batch = 50, workers = 8, items = 20_000, table = 'replayed';
const server = await startEmbeddedPostgres({});
const admin = new pg.Pool({ connectionString: server.url, max: 2 });
const pools = [0, 1, 2].map(() => new pg.Pool({ connectionString: server.url, max: workers }));
for (const p of [admin, ...pools]) p.on('error', () => {});

// capture: the first claim (it locks rows) and the first settle leasehold sends
const sent = [];
const capturing = { query: (q) => (sent.push(q), pools[1].query(q)) };
const capturer = benchTracker(new PostgresStore({ pool: capturing, table }));
await seedLeaseholdPg(admin, capturer, table, batch);
const leases = await capturer.claimBatch('run', { owner: 'w0', limit: batch });
await capturer.completeBatch(leases);
const claim = sent.find((q) => /FOR UPDATE SKIP LOCKED/.test(q.text));
const settle = sent[sent.indexOf(claim) + 1];
// the settle's first parameter is the id array, its second the (here common) fence
if (!claim || !settle || !/^\{[\d,]+\}$/.test(String(settle.values[0])) || settle.values[1] !== 1) {
  throw new Error('bench/replay.mjs: the store sent statements of another form than this script expects; update it');
}
console.log(`claim:  ${claim.text.slice(0, 160)}...\nsettle: ${settle.text.slice(0, 160)}...`);

async function drainReplay(pool, deadline) {
  let done = 0;
  await concurrently(workers, deadline, async (w) => {
    const values = [...claim.values];
    values[values.indexOf('w0')] = `w${w}`;
    const { rows } = await pool.query({ name: 'replay_claim', text: claim.text, values });
    if (rows.length === 0) return false;
    const settled = await pool.query({ name: 'replay_settle', text: settle.text, values: [`{${rows.map((r) => r.id).join(',')}}`, 1, ...settle.values.slice(2)] });
    if (settled.rowCount !== rows.length) throw new Error(`replay settled ${settled.rowCount} of ${rows.length}`);
    done += rows.length;
    return true;
  });
  return done;
}

const tracker = benchTracker(new PostgresStore({ pool: pools[2], table }));
const seed = () => seedLeaseholdPg(admin, tracker, table, items);
const workloads = [
  ['floor', () => seedFloor(admin, items), () => drainFloor(pools[0], { workers, batch, deadline: Date.now() + 30_000 })],
  ['replay', seed, () => drainReplay(pools[1], Date.now() + 30_000)],
  ['leasehold', seed, () => drainLeasehold(tracker, { workers, batch, deadline: Date.now() + 30_000 })],
];
await interleavedRounds(server.dataDir, workloads, rounds);
await Promise.all([admin, ...pools].map((p) => p.end()));
await server.stop();
