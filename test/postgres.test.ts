import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { PostgresStore, type PgQuery } from '../src/stores/postgres.js';
import type { Store } from '../src/index.js';
import { storeContract } from '../src/testing/suite.js';
import { processRaces } from './support/processes.js';
import { expectBatchRoundTrips, expectOneRoundTripEach } from './support/round-trips.js';
import { captureClaimAndReap } from './support/explain.js';
import { makeTracker } from '../src/testing/definition.js';

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
    await admin.query(`UPDATE "${tables.get(store)}" SET data = '{"bytes":"not a number"}'::jsonb WHERE "key_logId" = $1`, [key.logId]);
  },
});

describe('PostgresStore across processes', () => {
  it('4 processes, each with its own pool, claiming the same 60 items: one winner per item', async () => {
    await processRaces({ store: 'postgres', target: url, tag: run, make: (table) => new PostgresStore({ pool: admin, table }) });
  });
});

describe('PostgresStore round trips', () => {
  it('runs one statement per track, claim, renew, complete, fail and release', async () => {
    let statements = 0;
    const counting = { query: (q: PgQuery) => (statements++, admin.query(q.text, q.values)) };
    await expectOneRoundTripEach(new PostgresStore({ pool: counting, table: `round_trips_${run}` }), () => statements);
  });

  it('runs one statement per batch claim and settle, and two per reap batch, whatever the batch size', async () => {
    let statements = 0;
    const counting = { query: (q: PgQuery) => (statements++, admin.query(q.text, q.values)) };
    let m = 0;
    await expectBatchRoundTrips(
      async () => {
        const table = `batch_trips_${run}_${++m}`;
        const store = new PostgresStore({ pool: counting, table });
        tables.set(store, table);
        return store;
      },
      (store, ms) => admin.query(`UPDATE "${tables.get(store)}" SET deadline = deadline - $1::float8 * interval '1 millisecond'`, [ms]).then(() => {}),
      () => statements,
      // a failBatch with a retry and a park is one statement per outcome; a reap reads, then updates, per stage
      { claimBatch: 1, completeBatch: 1, failBatch: 2, reapStale: 3 },
    );
  });
});

describe('PostgresStore query plans', () => {
  it('claim-next and reap use the (status, deadline) index on a table of 50,000 rows', async () => {
    const table = `explain_${run}`;
    const captured: Array<{ text: string; values: unknown[] }> = [];
    const recording = { query: (q: PgQuery) => (captured.push({ text: q.text, values: q.values ?? [] }), admin.query(q.text, q.values)) };
    const store = new PostgresStore({ pool: recording, table });
    await makeTracker(store).init();
    await admin.query(
      `INSERT INTO "${table}" ("key_logId", "key_partnerCode", key_seq, status, data, deadline, created_at, updated_at)
       SELECT 'l' || i, 'p', i, (ARRAY['pending','downloading','downloaded','processed','failed'])[1 + i % 5], '{}'::jsonb,
              now() + (i % 100 - 50) * interval '1 minute', now(), now() FROM generate_series(1, 50000) AS i`,
    );
    await admin.query(`ANALYZE "${table}"`);
    const { claim, reap, reapUpdate } = await captureClaimAndReap(store, captured);
    const plan = async (statement: { text: string; values: unknown[] }) =>
      (await admin.query(`EXPLAIN ${statement.text}`, statement.values)).rows.map((r) => r['QUERY PLAN']).join('\n');
    for (const statement of [claim, reap]) {
      expect(await plan(statement)).toMatch(new RegExp(`Index (Only )?Scan (using|on) "?${table}_status_deadline`));
      expect(await plan(statement)).not.toContain('Seq Scan');
    }
    expect(await plan(reapUpdate)).toMatch(new RegExp(`Index Scan using "?${table}_pkey`));
    expect(await plan(reapUpdate)).not.toContain('Seq Scan');
  });
});

describe('PostgresStore init', () => {
  it('is safe when many processes create the same table at once', async () => {
    const table = `init_race_${run}`;
    const trackers = Array.from({ length: 8 }, () => makeTracker(new PostgresStore({ pool: pool(2), table })));
    await Promise.all(trackers.map((t) => t.init()));
    await trackers[0]!.track({ logId: 'x', partnerCode: 'p', seq: 1 });
    expect((await trackers[7]!.stats()).total).toBe(1);
  });
});
