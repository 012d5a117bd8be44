// Where does a drain spend its time? `node bench/profile.mjs [batch=1] [floor|leasehold]`
// prints items/s and this process's CPU per item for the raw-SQL floor and leasehold on one
// embedded PostgreSQL. Add `node --cpu-prof` to see the hot functions.
import pg from 'pg';
import { PostgresStore } from '../dist/stores/postgres.js';
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs';
import { drainFloor, seedFloor } from './floor.mjs';
import { benchTracker, drainLeasehold, seedLeaseholdPg } from './leasehold.mjs';

const batch = Number(process.argv[2] ?? 1);
const only = process.argv[3];
const items = 20_000;
const server = await startEmbeddedPostgres();
const admin = new pg.Pool({ connectionString: server.url, max: 2 });
const pool = new pg.Pool({ connectionString: server.url, max: 8 });
for (const p of [admin, pool]) p.on('error', () => {});
const workloads = [
  ['floor', () => seedFloor(admin, items), () => drainFloor(pool, { workers: 8, batch, deadline: Date.now() + 30_000 })],
  [
    'leasehold',
    async () => {
      const tracker = benchTracker(new PostgresStore({ pool, table: 'profile' }));
      await seedLeaseholdPg(admin, tracker, 'profile', items);
      return tracker;
    },
    (tracker) => drainLeasehold(tracker, { workers: 8, batch, deadline: Date.now() + 30_000 }),
  ],
];
for (const [name, setup, drain] of workloads) {
  if (only && name !== only) continue;
  const context = await setup();
  const cpu = process.cpuUsage();
  const started = performance.now();
  const done = await drain(context);
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  console.log(`${name.padEnd(10)} batch ${batch}: ${Math.round((done / ms) * 1000)} items/s, ${((used.user + used.system) / done).toFixed(1)} µs of this process's CPU per item`);
}
await pool.end();
await admin.end();
await server.stop();
