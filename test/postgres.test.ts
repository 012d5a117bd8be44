import pg from 'pg';
import { afterAll, inject } from 'vitest';
import { PostgresStore } from '../src/stores/postgres.js';
import type { Store } from '../src/index.js';
import { storeContract } from './conformance/suite.js';

const url = inject('postgresUrl');
const pools: pg.Pool[] = [];
const pool = (max = 10) => {
  const p = new pg.Pool({ connectionString: url, max });
  pools.push(p);
  return p;
};
const admin = pool(4);
const tables = new WeakMap<Store, string>();
const run = `${process.pid}_${Date.now() % 1e6}`;
let n = 0;

afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
});

storeContract({
  name: `PostgresStore (${inject('postgresSource')})`,
  raceRepeats: 100,
  async create() {
    const table = `contract_${run}_${++n}`;
    const store = new PostgresStore({ pool: admin, table });
    tables.set(store, table);
    return store;
  },
  async elapse(store, ms) {
    await admin.query(`UPDATE "${tables.get(store)}" SET deadline = deadline - $1::float8 * interval '1 millisecond'`, [ms]);
  },
  async peer(store) {
    // a pool of its own: separate connections race for real
    const peer = new PostgresStore({ pool: pool(16), table: tables.get(store)! });
    tables.set(peer, tables.get(store)!);
    return peer;
  },
  async corrupt(store, key) {
    await admin.query(`UPDATE "${tables.get(store)}" SET data = '{"bytes":"not a number"}'::jsonb WHERE "logId" = $1`, [key.logId]);
  },
});
