import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { PostgresStore, type PgQuery } from '../src/stores/postgres.js';
import { Tracker, type Store, type StoreError } from '../src/index.js';
import { z } from 'zod';
import { storeContract } from '../src/testing/suite.js';
import { PROCESS_RACES_TIMEOUT, processRaces } from './support/processes.js';
import { expectBatchRoundTrips, expectOneRoundTripEach } from './support/round-trips.js';
import { captureClaimAndReap } from './support/explain.js';
import { makeTracker } from '../src/testing/definition.js';
import { stderrOf } from './support/stderr.js';
import { randomBytes } from 'node:crypto';
import { MAX_KEY_BYTES } from '../src/codec.js';

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

/** A tracker of one stage (`s`: pending → running → done, or failed) on a table of its own, keyed by `key`. */
const oneStage = <K extends z.ZodObject>(table: string, key: K) =>
  new Tracker({
    store: new PostgresStore({ pool: pool(3), table }),
    statuses: ['pending', 'running', 'done', 'failed'],
    initial: 'pending',
    key,
    stages: { s: { from: 'pending', active: 'running', done: 'done', failed: 'failed' } },
  });

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
  }, PROCESS_RACES_TIMEOUT);
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

describe('PostgresStore key table', () => {
  const key = (seq: number) => ({ logId: `log-${seq}`, partnerCode: 'acme', seq });
  const indexes = async (table: string) =>
    (await admin.query(`SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY indexname`, [table])).rows.map((r) => r.indexname as string);
  const keyRows = async (table: string) => Number((await admin.query(`SELECT count(*) AS n FROM "${table}_keys"`)).rows[0].n);
  /** A table as versions before 2026-12 made it: the unique key index on the items table, no key table. */
  const earlierLayout = (table: string, statusIndex: string) =>
    admin.query(`
      CREATE TABLE "${table}" (
        id bigserial PRIMARY KEY, "key_logId" text NOT NULL, "key_partnerCode" text NOT NULL, key_seq double precision NOT NULL,
        status text NOT NULL, stage text, data jsonb NOT NULL, attempts integer NOT NULL DEFAULT 0, fence bigint NOT NULL DEFAULT 0,
        owner text, deadline timestamptz NOT NULL, last_error text,
        created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, claimed_at timestamptz, finished_at timestamptz);
      CREATE UNIQUE INDEX "${table}_key" ON "${table}" ("key_logId", "key_partnerCode", key_seq);
      CREATE INDEX "${statusIndex}" ON "${table}" (status, deadline, id);`);

  it('keeps the unique key index in `<table>_keys`, so transitions insert into two indexes of the items table, not three', async () => {
    const table = `keys_layout_${run}`;
    const tracker = makeTracker(new PostgresStore({ pool: admin, table }));
    await tracker.init();
    expect(await indexes(table)).toEqual([`${table}_pkey`, `${table}_status_deadline`]);
    expect(await indexes(`${table}_keys`)).toEqual([`${table}_keys_id`, `${table}_keys_pkey`]);
    const { rows } = await admin.query(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'`, [`"${table}_keys"`]);
    expect(rows.map((r) => r.def)).toEqual([`FOREIGN KEY (id) REFERENCES ${table}(id) ON DELETE CASCADE`]);
    // rule 1 through the key table: one item per key, also for 8 concurrent tracks
    const results = await Promise.all(Array.from({ length: 8 }, () => tracker.track(key(1))));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.item.createdAt.getTime())).size).toBe(1);
    expect(await keyRows(table)).toBe(1);
  });

  it('moves a table of the earlier layout over on init: keys copied, the old unique index dropped, items found by key', async () => {
    const table = `keys_migrate_${run}`;
    await earlierLayout(table, `${table}_status_deadline`);
    await admin.query(
      `INSERT INTO "${table}" ("key_logId", "key_partnerCode", key_seq, status, data, deadline, created_at, updated_at)
       SELECT 'log-' || i, 'acme', i, 'pending', '{"bytes": 1}'::jsonb, now(), now(), now() FROM generate_series(1, 3) AS i`,
    );
    const tracker = makeTracker(new PostgresStore({ pool: admin, table }));
    await tracker.init();
    expect(await indexes(table)).toEqual([`${table}_pkey`, `${table}_status_deadline`]);
    expect(await keyRows(table)).toBe(3);
    expect((await tracker.get(key(2)))!.status).toBe('pending');
    expect((await tracker.track(key(2))).created).toBe(false);
    expect((await tracker.claim('download', { owner: 'w', key: key(3) }))!.key).toEqual(key(3));
    expect((await tracker.track(key(4))).created).toBe(true);
    // init again (another process, or a restart) changes nothing
    await makeTracker(new PostgresStore({ pool: admin, table })).init();
    expect(await keyRows(table)).toBe(4);
    expect((await tracker.stats()).total).toBe(4);
  });

  it('gives long table names that share their first 60 characters key tables and indexes of their own', async () => {
    const keyTableOf = async (table: string) =>
      (await admin.query(`SELECT conrelid::regclass::text AS name FROM pg_constraint WHERE confrelid = $1::regclass AND contype = 'f'`, [`"${table}"`])).rows.map((r) => r.name as string);
    const tables = ['a', 'b'].map((c) => `long_${run}_`.padEnd(60, 'x') + c.repeat(3));
    for (const table of tables) {
      const tracker = makeTracker(new PostgresStore({ pool: admin, table }));
      await tracker.init();
      expect((await tracker.track(key(1))).created).toBe(true);
      expect((await tracker.track(key(1))).created).toBe(false);
      expect((await tracker.get(key(1)))!.key).toEqual(key(1));
      // a status index of its own, whose name cut at 63 characters would have been the table's
      expect((await indexes(table)).filter((i) => i.endsWith('_status_deadline'))).toHaveLength(1);
    }
    const [a, b] = await Promise.all(tables.map(keyTableOf));
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(1);
    expect(a![0]).not.toBe(b![0]);
    expect(a![0]).toMatch(/_keys"?$/);
  });

  it('renames the status index an earlier version named by cutting at 63 characters, instead of building a second one', async () => {
    const table = `legacy_${run}_`.padEnd(52, 'l');
    const legacy = `${table}_status_deadline`.slice(0, 63);
    await earlierLayout(table, legacy);
    const { rows: before } = await admin.query(`SELECT $1::regclass::oid AS oid`, [`"${legacy}"`]);
    const tracker = makeTracker(new PostgresStore({ pool: admin, table }));
    await tracker.init();
    const names = await indexes(table);
    expect(names).toHaveLength(2);
    const status = names.find((i) => i.endsWith('_status_deadline'))!;
    expect(status).not.toBe(legacy);
    // the same index, renamed
    expect((await admin.query(`SELECT $1::regclass::oid AS oid`, [`"${status}"`])).rows).toEqual(before);
    expect((await tracker.track(key(1))).created).toBe(true);
  });

  it('stops at a table named `<table>_keys` that is not its key table, and leaves it as it is', async () => {
    const table = `keys_taken_${run}`;
    await admin.query(`CREATE TABLE "${table}_keys" (name text); INSERT INTO "${table}_keys" VALUES ('precious')`);
    const tracker = makeTracker(new PostgresStore({ pool: admin, table }));
    const refused = await tracker.init().then(() => null, (error: unknown) => error as StoreError);
    expect(refused?.message).toMatch(new RegExp(`${table}_keys" exists and is not the key table`));
    // sorted as a table that does not fit, with that advice (not as a passing fault to retry)
    expect(refused?.failure).toBe('schema');
    expect(refused?.message).toMatch(/Point the store at a table of its own/);
    expect((await admin.query(`SELECT name FROM "${table}_keys"`)).rows).toEqual([{ name: 'precious' }]);
  });

  it('takes in the keys of items that a process of the earlier layout inserted meanwhile (rolled back, then forward)', async () => {
    const table = `keys_rollback_${run}`;
    const tracker = makeTracker(new PostgresStore({ pool: admin, table }));
    await tracker.init();
    await tracker.track(key(1));
    // an older version's init and track: its unique index back on the items table, an item without a key row
    await admin.query(`CREATE UNIQUE INDEX "${table}_key" ON "${table}" ("key_logId", "key_partnerCode", key_seq)`);
    await admin.query(
      `INSERT INTO "${table}" ("key_logId", "key_partnerCode", key_seq, status, data, deadline, created_at, updated_at)
       VALUES ('log-2', 'acme', 2, 'pending', '{}'::jsonb, now(), now(), now())`,
    );
    await makeTracker(new PostgresStore({ pool: admin, table })).init();
    expect(await keyRows(table)).toBe(2);
    expect(await indexes(table)).toEqual([`${table}_pkey`, `${table}_status_deadline`]);
    expect((await tracker.get(key(2)))!.status).toBe('pending');
    expect((await tracker.track(key(2))).created).toBe(false);
  });

  it('tracks again when the item that held its key is deleted between the conflict and the read', async () => {
    const table = `keys_gone_${run}`;
    let deleteAfterConflict = false;
    const racing = {
      query: async (q: PgQuery) => {
        const result = await admin.query(q);
        if (deleteAfterConflict && q.text.includes('leasehold_key') && result.rows.length === 0) {
          deleteAfterConflict = false;
          await admin.query(`DELETE FROM "${table}" WHERE key_seq = 1`);
        }
        return result;
      },
    };
    const tracker = makeTracker(new PostgresStore({ pool: racing, table }));
    await tracker.init();
    await tracker.track(key(1), { bytes: 1 });
    deleteAfterConflict = true;
    const again = await tracker.track(key(1), { bytes: 2 });
    expect(deleteAfterConflict).toBe(false);
    expect(again.created).toBe(true);
    expect(again.item.data).toEqual({ bytes: 2 });
  });

  it('follows items deleted by hand, and a table dropped with CASCADE and made again by init', async () => {
    const table = `keys_repair_${run}`;
    const tracker = makeTracker(new PostgresStore({ pool: admin, table }));
    await tracker.init();
    for (const seq of [1, 2]) await tracker.track(key(seq));
    // a row deleted by hand takes its key with it (ON DELETE CASCADE): the key can be tracked again
    await admin.query(`DELETE FROM "${table}" WHERE key_seq = 1`);
    expect(await keyRows(table)).toBe(1);
    expect((await tracker.track(key(1))).created).toBe(true);
    // DROP … CASCADE drops the foreign key and leaves the key table holding keys of gone items:
    // init makes it again, so those keys are free
    await admin.query(`DROP TABLE "${table}" CASCADE`);
    const again = makeTracker(new PostgresStore({ pool: admin, table }));
    await again.init();
    expect(await keyRows(table)).toBe(0);
    expect((await again.track(key(2))).created).toBe(true);
    expect((await again.get(key(2)))!.status).toBe('pending');
  });

  it('refuses a new table whose status index or key table a renamed table still holds, leaving the archive\'s keys as they are', async () => {
    const table = `keys_rename_${run}`;
    const old = makeTracker(new PostgresStore({ pool: admin, table }));
    for (const seq of [1, 2]) await old.track(key(seq));
    // archived by a rename: its indexes and its key table keep their names
    await admin.query(`ALTER TABLE "${table}" RENAME TO "${table}_old"`);
    const refused = await makeTracker(new PostgresStore({ pool: admin, table })).init().catch((e: unknown) => e);
    expect((refused as StoreError).failure).toBe('schema');
    expect(String(refused)).toContain(`the name "public"."${table}_status_deadline" that leasehold gives the (status, deadline) index of "public"."${table}" is taken by an index of ${table}_old`);
    // nothing was made: init's statements are one transaction
    expect((await admin.query('SELECT to_regclass($1) AS t', [`"${table}"`])).rows[0].t).toBeNull();
    // the archive's index renamed, not its key table: that key table is not the new table's to empty
    await admin.query(`ALTER INDEX "${table}_status_deadline" RENAME TO "${table}_old_status_deadline"`);
    const keyTable = await makeTracker(new PostgresStore({ pool: admin, table })).init().catch((e: unknown) => e);
    expect((keyTable as StoreError).failure).toBe('schema');
    expect(String(keyTable)).toContain(`"public"."${table}_keys" is the key table of ${table}_old (its foreign key names it), not of "public"."${table}"`);
    expect(await keyRows(table)).toBe(2);
    // renamed with it (as docs/stores/postgres.md says), the new table gets a key table of its own
    await admin.query(`ALTER TABLE "${table}_keys" RENAME TO "${table}_old_keys"`);
    const idIndex = await makeTracker(new PostgresStore({ pool: admin, table })).init().catch((e: unknown) => e);
    expect(String(idIndex)).toContain(`the name "public"."${table}_keys_id" that leasehold gives the id index of "public"."${table}_keys" is taken by an index of ${table}_old_keys`);
    await admin.query(`ALTER INDEX "${table}_keys_id" RENAME TO "${table}_old_keys_id"`);
    const fresh = makeTracker(new PostgresStore({ pool: admin, table }));
    expect((await fresh.track(key(1))).created).toBe(true);
    expect(await indexes(table)).toContain(`${table}_status_deadline`);
    expect(await keyRows(`${table}_old`)).toBe(2);
    expect((await makeTracker(new PostgresStore({ pool: admin, table: `${table}_old` })).get(key(2)))!.status).toBe('pending');
  });
});

describe('PostgresStore: a table made for another key', () => {
  const keyedTracker = (table: string, key: z.ZodObject) =>
    new Tracker({ store: new PostgresStore({ pool: admin, table }), statuses: ['pending', 'done', 'failed', 'running'], initial: 'pending', key, stages: { s: { from: 'pending', active: 'running', done: 'done', failed: 'failed' } } });

  it('init refuses a key column of another type, or a missing one, as a schema error naming it', async () => {
    const table = `other_key_${run}`;
    await makeTracker(new PostgresStore({ pool: admin, table })).init();
    // a redeploy that made `seq` a string
    const refused = await keyedTracker(table, z.object({ logId: z.string(), partnerCode: z.string(), seq: z.string() })).init().catch((e: unknown) => e);
    expect((refused as StoreError).failure).toBe('schema');
    expect(String(refused)).toMatch(/has column key_seq of type double precision, not text, as key field seq \(string\) needs/);
    // one that added a field
    const added = await keyedTracker(table, z.object({ logId: z.string(), partnerCode: z.string(), seq: z.number(), region: z.string() })).init().catch((e: unknown) => e);
    expect((added as StoreError).failure).toBe('schema');
    expect(String(added)).toMatch(/has no column key_region/);
    // the table as it was made still opens, also with a text key column narrowed by hand
    await admin.query(`ALTER TABLE "${table}" ALTER COLUMN "key_logId" TYPE varchar(64)`);
    await makeTracker(new PostgresStore({ pool: admin, table })).init();
  });

  // init is one transaction sent as one query: a failure inside it left a lone pg.Client in the
  // aborted transaction, refusing every later statement of every tracker on that client
  it('a pg.Client whose init failed is usable afterwards (the transaction is rolled back)', async () => {
    const table = `client_init_${run}`;
    await makeTracker(new PostgresStore({ pool: admin, table })).init();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const wrong = new Tracker({
        store: new PostgresStore({ pool: client, table }),
        statuses: ['pending', 'done', 'failed', 'running'],
        initial: 'pending',
        key: z.object({ logId: z.string(), partnerCode: z.string(), seq: z.string() }),
        stages: { s: { from: 'pending', active: 'running', done: 'done', failed: 'failed' } },
      });
      expect(((await wrong.init().catch((e: unknown) => e)) as StoreError).failure).toBe('schema');
      const right = makeTracker(new PostgresStore({ pool: client, table }));
      await right.init();
      expect((await right.track({ logId: 'a', partnerCode: 'p', seq: 1 })).created).toBe(true);
      // a worker on the lone client polls: it does not take the client's own connect() for a
      // pool's, which failed ("Client has already been connected") on every listen attempt
      let connects = 0;
      client.connect = (() => (connects++, Promise.reject(new Error('Client has already been connected')))) as never;
      const worker = right.work('download', async () => {}, { reapIntervalMs: false });
      await worker.drain();
      await worker.stop();
      expect((await right.get({ logId: 'a', partnerCode: 'p', seq: 1 }))!.status).toBe('downloaded');
      expect(connects).toBe(0);
    } finally {
      await client.end();
    }
  });

  it('init refuses a table with a key column that no key field declares (a field removed by a redeploy), naming it', async () => {
    const table = `removed_key_${run}`;
    const full = makeTracker(new PostgresStore({ pool: admin, table }));
    for (const seq of [1, 2]) await full.track({ logId: 'x', partnerCode: 'p', seq });
    // a redeploy whose key dropped `seq`: without the check, track failed on the NOT NULL column
    // and a get by key found two items
    const shorter = () => keyedTracker(table, z.object({ logId: z.string(), partnerCode: z.string() }));
    const refused = await shorter().init().catch((e: unknown) => e as StoreError);
    expect(refused).toMatchObject({ name: 'StoreError', failure: 'schema' });
    expect(String(refused)).toMatch(new RegExp(`"${table}" has key column\\(s\\) key_seq that no key field declares`));
    // a nullable column of the user's own under the prefix breaks no track: left alone
    await admin.query(`ALTER TABLE "${table}" ADD COLUMN key_note text`);
    expect(String(await shorter().init().catch((e: unknown) => e))).not.toMatch(/key_note/);
    // dropped from the items table only: the key table's primary key still has it
    await admin.query(`ALTER TABLE "${table}" DROP COLUMN key_seq`);
    const half = await shorter().init().catch((e: unknown) => e as StoreError);
    expect(half).toMatchObject({ name: 'StoreError', failure: 'schema' });
    expect(String(half)).toMatch(/the primary key of "public"."removed_key_.*_keys" is \(key_logId, key_partnerCode, key_seq\), not \(key_logId, key_partnerCode\)/);
    // migrated as docs/stores/postgres.md says (here after removing the item that would share a key)
    await admin.query(`DELETE FROM "${table}" WHERE id = (SELECT max(id) FROM "${table}")`);
    await admin.query(`ALTER TABLE "${table}_keys" DROP COLUMN key_seq; ALTER TABLE "${table}_keys" ADD PRIMARY KEY ("key_logId", "key_partnerCode")`);
    const migrated = shorter();
    await migrated.init();
    expect((await migrated.get({ logId: 'x', partnerCode: 'p' }))?.status).toBe('pending');
    expect((await migrated.track({ logId: 'y', partnerCode: 'p' })).created).toBe(true);
  });
});

/** What `promise` settles to within `ms`, or `'still waiting'`. */
const within = <T>(promise: Promise<T>, ms: number): Promise<T | 'still waiting'> =>
  Promise.race([promise, new Promise<'still waiting'>((resolve) => setTimeout(() => resolve('still waiting'), ms).unref())]);

describe('PostgresStore init and table locks', () => {
  const key = (seq: number) => ({ logId: `log-${seq}`, partnerCode: 'acme', seq });
  /** A client holding `mode` on the tables in an open transaction, as a VACUUM or a long write does. */
  const holdLock = async (mode: string, ...tables: string[]) => {
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    await holder.query(`BEGIN; LOCK TABLE ${tables.map((t) => `"${t}"`).join(', ')} IN ${mode} MODE`);
    return async () => {
      await holder.query('ROLLBACK');
      await holder.end();
    };
  };

  it('init of an existing table takes no lock on it: a VACUUM holding the tables stalls neither a new process init nor running claims', async () => {
    const table = `init_vacuum_${run}`;
    const worker = makeTracker(new PostgresStore({ pool: pool(3), table, notifications: false }));
    for (const seq of [1, 2, 3]) await worker.track(key(seq));
    // what VACUUM takes: SHARE UPDATE EXCLUSIVE, which conflicts with the SHARE lock of CREATE INDEX
    const release = await holdLock('SHARE UPDATE EXCLUSIVE', table, `${table}_keys`);
    try {
      const newcomer = makeTracker(new PostgresStore({ pool: pool(2), table, notifications: false }));
      const init = within(newcomer.init(), 5_000);
      const claim = within(worker.claim('download', { owner: 'w' }), 5_000);
      expect(await init).toBeUndefined();
      expect(await claim).toMatchObject({ key: key(1) });
      expect(await within(newcomer.track(key(4)), 5_000)).toMatchObject({ created: true });
    } finally {
      await release();
    }
  });

  it('a create that must wait for a table lock gives up after a few seconds with a transient StoreError, instead of queuing every worker behind it', async () => {
    const table = `init_wait_${run}`;
    const worker = makeTracker(new PostgresStore({ pool: pool(3), table, notifications: false }));
    for (const seq of [1, 2]) await worker.track(key(seq));
    // an index dropped by hand: init creates it again, which needs a SHARE lock on the table
    await admin.query(`DROP INDEX "${table}_status_deadline"`);
    const release = await holdLock('SHARE UPDATE EXCLUSIVE', table);
    try {
      const newcomer = makeTracker(new PostgresStore({ pool: pool(2), table, notifications: false }));
      const started = Date.now();
      const init = within(newcomer.init().then(() => null, (error: unknown) => error as StoreError), 15_000);
      // queued behind init's lock request while it waits, then free
      const claim = within(worker.claim('download', { owner: 'w' }), 15_000);
      const refused = await init;
      expect(refused).toMatchObject({ name: 'StoreError', operation: 'init', failure: 'transient', transient: true });
      expect((refused as StoreError).message).toMatch(/gave up rather than hold up the running workers/);
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await claim).toMatchObject({ key: key(1) });
    } finally {
      await release();
    }
    // once the lock is gone, init creates the index
    await makeTracker(new PostgresStore({ pool: admin, table })).init();
    expect((await admin.query(`SELECT to_regclass($1) IS NOT NULL AS made`, [`"${table}_status_deadline"`])).rows).toEqual([{ made: true }]);
  });
});

describe('PostgresStore: type parsers the application sets for the whole process', () => {
  it('reads items back the same with timestamptz and jsonb kept as text and int8 as BigInt (`pg.types.setTypeParser`)', async () => {
    const oids = [20, 114, 1184, 3802];
    const before = oids.map((oid) => pg.types.getTypeParser(oid));
    pg.types.setTypeParser(20, BigInt);
    for (const oid of [114, 1184, 3802]) pg.types.setTypeParser(oid, (v: string) => v);
    try {
      const day = new Date('2026-01-01T12:34:56.789Z');
      const tracker = new Tracker({
        store: new PostgresStore({ pool: pool(3), table: `parsers_${run}` }),
        statuses: ['pending', 'running', 'done', 'failed'],
        initial: 'pending',
        key: z.object({ id: z.string(), day: z.date(), n: z.number(), on: z.boolean() }),
        data: z.object({ at: z.date(), list: z.array(z.number()) }),
        stages: { s: { from: 'pending', active: 'running', done: 'done', failed: 'failed' } },
        retry: { maxAttempts: 3, backoff: () => 0 },
      });
      const keyOf = (id: string) => ({ id, day, n: 1.5, on: true });
      const data = { at: day, list: [1, 2] };
      const tracked = await tracker.track(keyOf('a'), data);
      expect(tracked.item).toMatchObject({ key: keyOf('a'), data, status: 'pending' });
      expect(await tracker.track(keyOf('a'), { at: new Date(0), list: [] })).toMatchObject({ created: false, item: { key: keyOf('a'), data } });
      for (const id of ['b', 'c', 'd']) await tracker.track(keyOf(id), data);
      const lease = (await tracker.claim('s', { owner: 'w', key: keyOf('a') }))!;
      expect(lease.key).toEqual(keyOf('a'));
      expect(lease.fence).toBe(1);
      await tracker.renew(lease);
      await tracker.complete(lease, { data: { at: day, list: [3] } });
      expect(await tracker.get(keyOf('a'))).toMatchObject({ status: 'done', fence: 1, data: { at: day, list: [3] } });
      const batch = await tracker.claimBatch('s', { owner: 'w', limit: 2 });
      expect(batch.map((l) => l.key)).toEqual([keyOf('b'), keyOf('c')]);
      expect((await tracker.completeBatch(batch)).every((r) => r.ok)).toBe(true);
      const last = (await tracker.claim('s', { owner: 'w' }))!;
      await tracker.fail(last, new Error('again'));
      expect((await tracker.find({ status: 'pending' })).map((i) => i.key)).toEqual([keyOf('d')]);
      expect(await tracker.stats()).toMatchObject({ total: 4 });
    } finally {
      oids.forEach((oid, i) => pg.types.setTypeParser(oid, before[i]!));
    }
  });
});

describe('PostgresStore: a date key stored with microseconds', () => {
  it('is claimed, renewed and settled: the lease\'s row is checked against the key as read, not to the microsecond', async () => {
    const table = `micro_${run}`;
    const tracker = new Tracker({
      store: new PostgresStore({ pool: pool(3), table }),
      statuses: ['pending', 'running', 'done', 'failed'],
      initial: 'pending',
      key: z.object({ id: z.string(), day: z.date() }),
      stages: { s: { from: 'pending', active: 'running', done: 'done', failed: 'failed' } },
      retry: { maxAttempts: 3, backoff: () => 0 },
    });
    const day = new Date('2026-01-01T12:34:56.789Z');
    for (const id of ['a', 'b', 'c']) await tracker.track({ id, day });
    // another writer (or a migration) stored the keys with microseconds a Date cannot hold
    for (const t of [table, `${table}_keys`]) await admin.query(`UPDATE "${t}" SET key_day = key_day + interval '456 microseconds'`);
    const first = (await tracker.claim('s', { owner: 'w' }))!;
    expect(first.key).toEqual({ id: 'a', day });
    await tracker.renew(first);
    expect(await tracker.complete(first)).toMatchObject({ status: 'done' });
    const second = (await tracker.claim('s', { owner: 'w' }))!;
    expect(await tracker.fail(second, new Error('again'))).toMatchObject({ status: 'pending', attempts: 1 });
    const third = (await tracker.claim('s', { owner: 'w' }))!;
    expect(await tracker.release(third)).toMatchObject({ status: 'pending' });
    const rows = await admin.query(`SELECT key_id, status FROM "${table}" ORDER BY key_id`);
    expect(rows.rows).toEqual([{ key_id: 'a', status: 'done' }, { key_id: 'b', status: 'pending' }, { key_id: 'c', status: 'pending' }]);
  });
});

describe('PostgresStore: date keys at the ends of what a Date and timestamptz hold', () => {
  it('the earliest date every store accepts (4714-11-24 BC) and the last a Date holds round-trip through track, get and claim', async () => {
    const tracker = oneStage(`date_ends_${run}`, z.object({ at: z.date() }));
    const ends = [new Date(-210_866_803_200_000), new Date(8.64e15)];
    for (const at of ends) expect((await tracker.track({ at })).item.key.at).toEqual(at);
    for (const at of ends) expect((await tracker.get({ at }))?.key.at).toEqual(at);
    for (const at of ends) await tracker.complete((await tracker.claim('s', { owner: 'w', key: { at } }))!);
    await expect(tracker.track({ at: new Date(-210_866_803_200_001) })).rejects.toThrow(/key dates before 4714-11-24 BC cannot be stored/);
  });
});

describe('PostgresStore: date keys and times from processes in other time zones', () => {
  /** Runs `fn` with the process in time zone `zone` (Node reads `TZ` again when it is set). */
  const inZone = async <T>(zone: string, fn: () => Promise<T>): Promise<T> => {
    const was = process.env.TZ;
    process.env.TZ = zone;
    try {
      return await fn();
    } finally {
      if (was === undefined) delete process.env.TZ;
      else process.env.TZ = was;
    }
  };

  it('one date key is one item whatever the zone, also where its offset then had seconds (Monrovia 1960, Paris 1905), and a notBefore is the instant given', async () => {
    const tracker = oneStage(`zones_${run}`, z.object({ born: z.date() }));
    const days = [new Date('1960-06-01T00:00:00.000Z'), new Date('1905-03-01T00:00:00.000Z'), new Date('2026-07-01T12:00:00.123Z')];
    for (const born of days) {
      const first = await inZone('Africa/Monrovia', () => tracker.track({ born }));
      expect(first.created).toBe(true);
      expect(first.item.key.born).toEqual(born);
      for (const zone of ['UTC', 'Europe/Paris', 'America/Sao_Paulo']) {
        const again = await inZone(zone, () => tracker.track({ born }));
        expect({ zone, created: again.created, born: again.item.key.born }).toEqual({ zone, created: false, born });
        expect((await inZone(zone, () => tracker.get({ born })))?.key.born).toEqual(born);
      }
    }
    const rows = await admin.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE key_born = ANY($1::timestamptz[]))::int AS exact FROM "zones_${run}"`, [days.map((d) => d.toISOString())]);
    expect(rows.rows[0]).toEqual({ n: 3, exact: 3 });
    // a time given as a Date goes as that instant too
    const notBefore = new Date('1960-06-01T00:00:00.000Z');
    await inZone('Africa/Monrovia', () => tracker.track({ born: new Date(0) }, undefined, { notBefore }));
    const stored = await admin.query(`SELECT round(date_part('epoch', deadline) * 1000)::float8 AS ms FROM "zones_${run}" WHERE key_born = 'epoch'`);
    expect(stored.rows[0].ms).toBe(notBefore.getTime());
  });
});

describe('PostgresStore: look-ups by a key it cannot hold', () => {
  it('a key with a NUL or a date before 4714 BC names no item: get, claim, cancel, retry and reschedule find nothing, as on the other stores', async () => {
    const tracker = oneStage(`unholdable_${run}`, z.object({ id: z.string(), day: z.date() }));
    await tracker.track({ id: 'a', day: new Date(0) });
    for (const key of [{ id: 'a\0b', day: new Date(0) }, { id: 'a', day: new Date(-8.64e15) }]) {
      expect(await tracker.get(key)).toBeNull();
      expect(await tracker.claim('s', { owner: 'w', key })).toBeNull();
      expect(await tracker.cancel(key)).toBeNull();
      expect(await tracker.retry(key)).toBeNull();
      expect(await tracker.reschedule(key, { delayMs: 1_000 })).toBeNull();
    }
    expect((await tracker.get({ id: 'a', day: new Date(0) }))!.status).toBe('pending');
  });
});

describe('PostgresStore: the longest key every store takes', () => {
  it('a key of 2,000 bytes of text that does not compress, over two fields, is tracked, found and claimed by key (the unique index holds it)', async () => {
    const tracker = oneStage(`long_keys_${run}`, z.object({ a: z.string(), b: z.string() }));
    const key = { a: randomBytes(750).toString('base64'), b: randomBytes(750).toString('base64') };
    expect(Buffer.byteLength(key.a + key.b)).toBe(MAX_KEY_BYTES);
    expect((await tracker.track(key)).created).toBe(true);
    expect((await tracker.track(key)).created).toBe(false);
    expect((await tracker.get(key))?.key).toEqual(key);
    expect(await tracker.complete((await tracker.claim('s', { owner: 'w', key }))!)).toMatchObject({ status: 'done' });
  });
});

describe('PostgresStore prepared statements', () => {
  it('gives two stores on one pool statements of their own names, also for tables whose statement texts hashed alike before (jobs_520779, jobs_1045536)', async () => {
    const names = ['jobs_520779', 'jobs_1045536'];
    await admin.query(names.map((t) => `DROP TABLE IF EXISTS "${t}_keys", "${t}";`).join(' '));
    // one connection, so that both stores prepare their statements on it
    const one = pool(1);
    const [a, b] = names.map((table) => makeTracker(new PostgresStore({ pool: one, table })));
    for (const tracker of [a!, b!]) {
      expect((await tracker.stats()).total).toBe(0);
      expect((await tracker.track({ logId: 'l', partnerCode: 'p', seq: 1 })).created).toBe(true);
      expect((await tracker.claim('download', { owner: 'w' }))?.key).toEqual({ logId: 'l', partnerCode: 'p', seq: 1 });
      expect((await tracker.stats()).total).toBe(1);
    }
    await admin.query(names.map((t) => `DROP TABLE "${t}_keys", "${t}";`).join(' '));
  });
});

describe('PostgresStore behind a pooler in transaction mode: statements prepared elsewhere', () => {
  it('a statement the server connection lost (26000) is sent again unnamed, once said, and the store stays unnamed', async () => {
    const one = pool(1);
    const tracker = makeTracker(new PostgresStore({ pool: one, table: `lost_statement_${run}`, notifications: false }));
    await tracker.track({ logId: 'a', partnerCode: 'p', seq: 1 });
    // what a pooler does: the next statement reaches a server connection that never prepared it
    await one.query('DEALLOCATE ALL');
    const said = await stderrOf(async () => {
      expect((await tracker.track({ logId: 'b', partnerCode: 'p', seq: 2 })).created).toBe(true);
      await one.query('DEALLOCATE ALL');
      expect((await tracker.track({ logId: 'c', partnerCode: 'p', seq: 3 })).created).toBe(true);
      expect((await tracker.claim('download', { owner: 'w' }))?.key.logId).toBe('a');
    });
    expect(said.match(/PostgresStore/g)).toHaveLength(1);
    expect(said).toMatch(/did not have a prepared statement .*pooler in transaction mode.*preparedStatements: false/);
    expect((await one.query('SELECT count(*)::int AS n FROM pg_prepared_statements')).rows).toEqual([{ n: 0 }]);
  });

  it('a statement name the server connection already had (42P05) is sent again unnamed, not reported as a table of the wrong shape', async () => {
    const sent: string[] = [];
    const first = pool(1);
    const capture = { query: (q: PgQuery) => (q.name && sent.push(q.name), first.query(q)) } as unknown as pg.Pool;
    const table = `taken_statement_${run}`;
    await makeTracker(new PostgresStore({ pool: capture, table, notifications: false })).track({ logId: 'a', partnerCode: 'p', seq: 1 });
    const insert = sent.at(-1)!;
    // another server connection, on which some other client prepared that name
    const other = pool(1);
    await other.query(`PREPARE ${insert} AS SELECT 1`);
    const tracker = makeTracker(new PostgresStore({ pool: other, table, notifications: false }));
    const said = await stderrOf(async () => {
      expect((await tracker.track({ logId: 'b', partnerCode: 'p', seq: 2 })).created).toBe(true);
    });
    expect(said).toMatch(/already had a prepared statement/);
    expect((await tracker.stats()).total).toBe(2);
  });
});

describe('PostgresStore on a client inside the caller\'s transaction', () => {
  const key = { logId: 'tx', partnerCode: 'p', seq: 1 };
  for (const existing of [true, false]) {
    it(`track is part of the caller's transaction: a rollback undoes it and the caller's rows alike (${existing ? 'table made before' : 'table made by this init'})`, async () => {
      const table = `in_tx_${existing ? 'made' : 'new'}_${run}`;
      const side = `${table}_orders`;
      await admin.query(`CREATE TABLE "${side}" (id int)`);
      if (existing) await makeTracker(new PostgresStore({ pool: admin, table })).init();
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query('BEGIN');
        await client.query(`INSERT INTO "${side}" VALUES (1)`);
        const tracker = makeTracker(new PostgresStore({ pool: client, table, notifications: false }));
        expect((await tracker.track(key)).created).toBe(true);
        // still the caller's transaction, open: its init did not commit it
        expect(client.getTransactionStatus()).toBe('T');
        await client.query('ROLLBACK');
        expect((await admin.query(`SELECT count(*)::int AS n FROM "${side}"`)).rows).toEqual([{ n: 0 }]);
        const made = (await admin.query('SELECT to_regclass($1) IS NOT NULL AS made', [`"${table}"`])).rows[0].made;
        expect(made).toBe(existing);
        if (existing) expect((await admin.query(`SELECT count(*)::int AS n FROM "${table}"`)).rows).toEqual([{ n: 0 }]);
      } finally {
        await client.end();
      }
    });
  }
});

describe('PostgresStore init failing inside the caller\'s transaction', () => {
  it('undoes its savepoint and leaves none open: the caller\'s transaction goes on', async () => {
    const table = `in_tx_failed_${run}`;
    // a table of another shape under the name: init refuses it
    await admin.query(`CREATE TABLE "${table}" (id int)`);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('BEGIN');
      const tracker = makeTracker(new PostgresStore({ pool: client, table }));
      await expect(tracker.init()).rejects.toMatchObject({ name: 'StoreError', failure: 'schema' });
      expect(client.getTransactionStatus()).toBe('T');
      // released, not only rolled back to: a savepoint left open would answer this
      await expect(client.query('RELEASE SAVEPOINT leasehold_init')).rejects.toMatchObject({ code: '3B001' });
    } finally {
      await client.query('ROLLBACK');
      await client.end();
    }
  });
});

describe('PostgresStore init under a role\'s lock_timeout', () => {
  it('waits for another process\'s init (the advisory lock) past the role\'s lock_timeout and statement_timeout', async () => {
    const table = `role_lock_timeout_${run}`;
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    // another process's init, under way
    await holder.query('BEGIN');
    await holder.query(`SELECT pg_advisory_xact_lock(hashtext('leasehold:' || $1))`, [`public.${table}`]);
    const short = new pg.Pool({ connectionString: url, max: 2, options: '-c lock_timeout=50 -c statement_timeout=100' });
    pools.push(short);
    const init = makeTracker(new PostgresStore({ pool: short, table, notifications: false })).init();
    const outcome = init.then(() => 'done', (error: unknown) => error);
    // well past the role's 50 ms: the init still waits (a wait of its own would have failed by now)
    await new Promise((resolve) => setTimeout(resolve, 300));
    await holder.query('COMMIT');
    await holder.end();
    expect(await outcome).toBe('done');
  });

  it('leaves the session\'s statement_timeout, one set with SET included, as it was (init changes it for its own transaction only)', async () => {
    const one = new pg.Pool({ connectionString: url, max: 1 });
    pools.push(one);
    await one.query('SET statement_timeout = 9999');
    await makeTracker(new PostgresStore({ pool: one, table: `session_timeout_${run}`, notifications: false })).init();
    expect((await one.query('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '9999ms' }]);
  });
});

describe('PostgresStore failures', () => {
  it('classes a read-only transaction (a pool still connected to a primary demoted by a failover) as a transient StoreError', async () => {
    const table = `read_only_${run}`;
    await makeTracker(new PostgresStore({ pool: admin, table })).init();
    const readOnly = new pg.Pool({ connectionString: url, max: 2, options: '-c default_transaction_read_only=on' });
    pools.push(readOnly);
    const tracker = makeTracker(new PostgresStore({ pool: readOnly, table }));
    const refused = await tracker.track({ logId: 'l', partnerCode: 'p', seq: 1 }).then(() => null, (error: unknown) => error as StoreError);
    expect(refused).toMatchObject({ name: 'StoreError', failure: 'transient', transient: true });
    expect((refused!.cause as { code?: string }).code).toBe('25006');
  });

  it('a track whose key is deleted between the conflict and the read three times in a row throws a transient StoreError, not an undefined item', async () => {
    const table = `keys_gone_thrice_${run}`;
    const k = { logId: 'l', partnerCode: 'p', seq: 1 };
    const other = makeTracker(new PostgresStore({ pool: admin, table }));
    let inserts = 0;
    const racing = {
      query: async (q: PgQuery) => {
        if (!q.text.includes('leasehold_key')) return admin.query(q);
        // another process tracks the key first, and a purge deletes its item after the conflict
        inserts++;
        await other.track(k);
        const result = await admin.query(q);
        if (result.rows.length === 0) await admin.query(`DELETE FROM "${table}" WHERE key_seq = 1`);
        return result;
      },
    };
    const tracker = makeTracker(new PostgresStore({ pool: racing, table }));
    await other.init();
    const refused = await tracker.track(k).then(
      (result) => result,
      (error: unknown) => error as StoreError,
    );
    expect(inserts).toBe(3);
    expect(refused).toMatchObject({ name: 'StoreError', operation: 'track', failure: 'transient' });
    expect((refused as StoreError).message).toMatch(/three times in a row/);
  });
});

describe('PostgresStore: purge beside a retry', () => {
  // the delete picked its rows in a subquery that PostgreSQL does not check again: a row a retry
  // moved out of the failed status while the purge waited for its lock was deleted anyway
  it('keeps an item that a retry committing meanwhile moved out of the purged status', async () => {
    const table = `purge_retry_${run}`;
    const key = (seq: number) => ({ logId: `log-${seq}`, partnerCode: 'acme', seq });
    const tracker = makeTracker(new PostgresStore({ pool: admin, table }));
    await tracker.track(key(1));
    await tracker.fail((await tracker.claim('download', { owner: 'w', key: key(1) }))!, new Error('boom'), { retry: false });
    const retrying = await admin.connect();
    try {
      // the retry's update, not committed yet
      await retrying.query('BEGIN');
      await retrying.query(`UPDATE "${table}" SET status = 'pending', attempts = 0 WHERE status = 'failed'`);
      const purging = tracker.purge({ status: 'failed' });
      // the purge waits for the row's lock
      await expect.poll(async () => Number((await admin.query(`SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT l.granted AND a.query LIKE 'DELETE FROM%${table}%'`)).rows[0].n), { timeout: 10_000 }).toBe(1);
      await retrying.query('COMMIT');
      expect(await purging).toEqual({ deleted: 0 });
    } finally {
      retrying.release();
    }
    expect(await tracker.get(key(1))).toMatchObject({ status: 'pending' });
  });
});

describe('PostgresStore: location', () => {
  it('is one text for two pools on one database and table (their leases settle through either), another for another table, and holds no password', async () => {
    const pools = [new pg.Pool({ connectionString: url, max: 1 }), new pg.Pool({ connectionString: url, max: 1 })];
    try {
      const [a, b, other] = [new PostgresStore({ pool: pools[0]!, table: 'jobs' }), new PostgresStore({ pool: pools[1]!, table: 'jobs' }), new PostgresStore({ pool: pools[1]!, table: 'other_jobs' })];
      const { hostname, port, pathname, password } = new URL(url);
      expect(a.location).toBe(`postgres://${hostname}:${port}/${pathname.slice(1)}#public.jobs`);
      expect(b.location).toBe(a.location);
      expect(other.location).not.toBe(a.location);
      if (password) expect(a.location).not.toContain(password);
      // a client names its server too; a pool that names no database, or an object of another
      // kind, tells nothing for sure: no location, so leases stay with their own store object
      const client = new pg.Client({ connectionString: url });
      expect(new PostgresStore({ pool: client as never, table: 'jobs' }).location).toBe(a.location);
      expect(new PostgresStore({ pool: new pg.Pool({ host: hostname, port: Number(port) }), table: 'jobs' }).location).toBeUndefined();
      expect(new PostgresStore({ pool: { query: (q: PgQuery) => admin.query(q) }, table: 'jobs' }).location).toBeUndefined();
      expect(new PostgresStore({ pool: new pg.Pool({ host: '/tmp/one', database: 'app' }), table: 'jobs' }).location).not.toBe(
        new PostgresStore({ pool: new pg.Pool({ host: '/tmp/two', database: 'app' }), table: 'jobs' }).location,
      );
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });
});

describe('PostgresStore for a role that may only read', () => {
  it('initialises an existing table and reads it (read-only dashboards and CLI commands); writes are refused', async () => {
    const table = `readonly_${run}`;
    const writer = makeTracker(new PostgresStore({ pool: admin, table }));
    await writer.track({ logId: 'a', partnerCode: 'p', seq: 1 });
    const role = `viewer_${run}`;
    await admin.query(`CREATE ROLE "${role}" LOGIN PASSWORD 'viewer'; GRANT SELECT ON "${table}", "${table}_keys" TO "${role}"`);
    const login = new URL(url);
    login.username = role;
    login.password = 'viewer';
    const reader = new pg.Pool({ connectionString: login.toString(), max: 2 });
    try {
      // init on an existing schema only reads catalogs: no DDL rights needed
      const viewer = makeTracker(new PostgresStore({ pool: reader, table }));
      await viewer.init();
      expect((await viewer.stats()).byStatus.pending).toBe(1);
      expect((await viewer.get({ logId: 'a', partnerCode: 'p', seq: 1 }))?.status).toBe('pending');
      await expect(viewer.track({ logId: 'b', partnerCode: 'p', seq: 1 })).rejects.toThrow(/permission denied/);
    } finally {
      await reader.end();
      await admin.query(`REVOKE ALL ON "${table}", "${table}_keys" FROM "${role}"; DROP ROLE "${role}"`);
    }
  });
});
