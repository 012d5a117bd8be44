// Where does a drain spend its time? `node bench/profile.mjs [batch=1] [floor|leasehold] [workers=8] [--durable] [--listen]`
// prints items/s, this process's CPU per item and the PostgreSQL server's CPU per item for the
// raw-SQL floor and leasehold on one embedded PostgreSQL, alternating (floor, leasehold, floor,
// leasehold, ...) so that a noisy machine moves both alike. Add `node --cpu-prof` to see the hot
// functions of this process. `--listen` adds leasehold with a `claimed` listener (its claims also
// read each item's deadline from before the claim, for `waitedMs`).
import pg from 'pg';
import { PostgresStore } from '../dist/stores/postgres.js';
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs';
import { drainFloor, seedFloor } from './floor.mjs';
import { benchTracker, drainLeasehold, seedLeaseholdPg } from './leasehold.mjs';
import { drainLine, measureDrain } from './lib.mjs';

const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const batch = Number(positional[0] ?? 1);
const only = positional[1] && positional[1] !== 'both' ? positional[1] : undefined;
const workers = Number(positional[2] ?? 8);
const durable = process.argv.includes('--durable');
const listen = process.argv.includes('--listen');
const rounds = Number(process.env.ROUNDS ?? 2);
const items = batch > 1 ? 20_000 : 8_000;
const server = await startEmbeddedPostgres({ durable });
const admin = new pg.Pool({ connectionString: server.url, max: 2 });
const pool = new pg.Pool({ connectionString: server.url, max: workers });
for (const p of [admin, pool]) p.on('error', () => {});
const tracker = benchTracker(new PostgresStore({ pool, table: 'profile' }));
const workloads = [
  ['floor', () => seedFloor(admin, items), () => drainFloor(pool, { workers, batch, deadline: Date.now() + 30_000 })],
  ['leasehold', () => seedLeaseholdPg(admin, tracker, 'profile', items), () => drainLeasehold(tracker, { workers, batch, deadline: Date.now() + 30_000 })],
];
if (listen) {
  const listened = benchTracker(new PostgresStore({ pool, table: 'profile_listened' }));
  listened.on('claimed', () => {});
  workloads.push(['listened', () => seedLeaseholdPg(admin, listened, 'profile_listened', items), () => drainLeasehold(listened, { workers, batch, deadline: Date.now() + 30_000 })]);
}
console.log(`batch ${batch}, W=${workers}, ${items} items, ${durable ? 'durable (fsync on)' : 'fsync off'}`);
for (let round = 0; round < rounds; round++) {
  for (const [name, setup, drain] of workloads) {
    if (only && name !== only) continue;
    await setup();
    console.log(drainLine(name, await measureDrain(server.dataDir, drain)));
  }
}
await pool.end();
await admin.end();
await server.stop();
