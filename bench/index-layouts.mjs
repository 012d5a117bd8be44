// What would other index layouts buy the batched drain? `node bench/index-layouts.mjs [batch=50] [A O C D]`
// drains the same table under leasehold with its indexes changed by hand after init, beside the
// raw-SQL floor, interleaved (floor, A, O, C, D, floor, ...), printing items/s and the client's and
// the server's CPU per item. The layouts, all on the same statements:
//   A  as shipped: primary key (id), (status, deadline, id); the unique key index in the key table
//   O  the layout before 2026-12: A plus a unique key index on the items table itself, which every
//      transition inserts into (no update is HOT: each changes status and deadline)
//   C  A, with the status index partial to unfinished rows (`status IN ('queued','running')`)
//   D  A, with the status index partial to claimable rows only, as the floor's is (no index to reap)
// C and D need the statuses written into the index and the queries (the statements here bind
// them, so the server plans each call anew). A measurement, not a design: see docs/performance.md.
import pg from 'pg';
import { PostgresStore } from '../dist/stores/postgres.js';
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs';
import { drainFloor, seedFloor } from './floor.mjs';
import { benchTracker, drainLeasehold, seedLeaseholdPg } from './leasehold.mjs';
import { drainLine, measureDrain } from './lib.mjs';
const batch = Number(process.argv[2] ?? 50), workers = 8, items = 20000;
const server = await startEmbeddedPostgres({});
const admin = new pg.Pool({ connectionString: server.url, max: 2 });
admin.on('error', () => {});
const variants = {
  A: [],
  O: ['CREATE UNIQUE INDEX "T_key" ON "T" (key_n)'],
  C: ['DROP INDEX "T_status_deadline"', `CREATE INDEX "T_u" ON "T" (status, deadline, id) WHERE status IN ('queued','running')`],
  D: ['DROP INDEX "T_status_deadline"', `CREATE INDEX "T_u" ON "T" (status, deadline, id) WHERE status IN ('queued')`],
};
const names = process.argv.slice(3).length ? process.argv.slice(3) : Object.keys(variants);
const setups = [];
for (const v of names) {
  const pool = new pg.Pool({ connectionString: server.url, max: workers }); pool.on('error', () => {});
  const table = `t${v}`;
  const tracker = benchTracker(new PostgresStore({ pool, table }));
  await tracker.init();
  const { rows } = await admin.query(`SELECT indexname FROM pg_indexes WHERE tablename = $1`, [table]);
  console.log(v, rows.map((r) => r.indexname).join(' '));
  for (const s of variants[v]) await admin.query(s.replaceAll('"T_', `"${table}_`).replaceAll('"T"', `"${table}"`));
  setups.push([v, () => seedLeaseholdPg(admin, tracker, table, items), () => drainLeasehold(tracker, { workers, batch, deadline: Date.now() + 30000 })]);
}
const fpool = new pg.Pool({ connectionString: server.url, max: workers }); fpool.on('error', () => {});
setups.unshift(['floor', () => seedFloor(admin, items), () => drainFloor(fpool, { workers, batch, deadline: Date.now() + 30000 })]);
for (let round = 0; round < 3; round++) {
  for (const [name, setup, drain] of setups) {
    await setup();
    console.log(drainLine(name, await measureDrain(server.dataDir, drain)));
  }
}
await server.stop();
process.exit(0);
