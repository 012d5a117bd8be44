import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../src/stores/sqlite.js';
import { Tracker, type Store, type StoreError } from '../src/index.js';
import { z } from 'zod';
import { storeContract } from '../src/testing/suite.js';
import { PROCESS_RACES_TIMEOUT, processRaces } from './support/processes.js';
import { recordingDatabase } from './support/sqlite-recorder.js';
import { expectOneRoundTripEach } from './support/round-trips.js';
import { captureClaimAndReap } from './support/explain.js';
import { k, makeTracker } from '../src/testing/definition.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { raceTracker } from './support/processes.js';

const run = promisify(execFile);

const dir = mkdtempSync(join(tmpdir(), 'leasehold-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const tables = new WeakMap<Store, { file: string; table: string }>();
let n = 0;

/** Runs raw SQL on the test's file, over a connection of its own (a hand edit). */
export function sql(store: Store, statement: (table: string) => string, ...params: unknown[]) {
  const { file, table } = tables.get(store)!;
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    db.prepare(statement(table)).run(...params);
  } finally {
    db.close();
  }
}

/** A store on a table of its own in a file of its own (`sql` edits it by hand). */
function newStore(): SqliteStore {
  const file = join(dir, `contract-${++n}.sqlite`);
  const table = `items_${n}`;
  const store = new SqliteStore({ filename: file, table });
  tables.set(store, { file, table });
  return store;
}

storeContract({
  name: 'SqliteStore (temp file)',
  raceRepeats: 100,
  async create() {
    return newStore();
  },
  async elapse(store, ms) {
    sql(store, (t) => `UPDATE "${t}" SET deadline = deadline - ?`, Math.round(ms));
  },
  async peer(store) {
    const peer = new SqliteStore({ filename: tables.get(store)!.file, table: tables.get(store)!.table });
    tables.set(peer, tables.get(store)!);
    return peer;
  },
  async corrupt(store, key) {
    sql(store, (t) => `UPDATE "${t}" SET data = '{"bytes":"not a number"}' WHERE "key_logId" = ?`, key.logId);
  },
  // every store and peer the suite made: its connection closed before the folder goes
  async dispose(store) {
    await (store as SqliteStore).close();
  },
});

describe('SqliteStore across processes', () => {
  it('4 processes, each with its own connection, claiming the same 60 items: one winner per item', async () => {
    const file = join(dir, 'race.sqlite');
    await processRaces({ store: 'sqlite', target: file, tag: 'sqlite', make: (table) => new SqliteStore({ filename: file, table }) });
  }, PROCESS_RACES_TIMEOUT);
});

describe('SqliteStore round trips', () => {
  it('runs one statement per track, claim, renew, complete, fail and release', async () => {
    const db = new Database(join(dir, 'round-trips.sqlite'));
    let statements = 0;
    const counted = recordingDatabase(db, () => statements++);
    await expectOneRoundTripEach(new SqliteStore({ database: counted, table: 'round_trips' }), () => statements);
    db.close();
  });
});

describe('SqliteStore bounded reap', () => {
  it('reaps 20,000 expired leases carrying 4 KB of data each in a process with a 96 MB heap', async () => {
    const file = join(dir, 'reap-heap.sqlite');
    const table = 'reap_heap';
    const setup = new SqliteStore({ filename: file, table });
    await raceTracker(setup).init();
    await setup.close();
    const db = new Database(file);
    const data = JSON.stringify({ blob: 'x'.repeat(4_000) });
    const insert = db.prepare(`INSERT INTO ${table} (key_n, status, stage, data, attempts, fence, owner, deadline, created_at, updated_at) VALUES (?, 'running', 'run', ?, 1, 1, 'dead', ?, 0, 0)`);
    db.transaction(() => {
      for (let n = 0; n < 20_000; n++) insert.run(n, data, Date.now() - 60_000);
    })();
    db.close();
    const { stdout } = await run(process.execPath, ['--max-old-space-size=96', join(import.meta.dirname, 'support/reap-child.mjs'), file, table], { timeout: 120_000 });
    const result = JSON.parse(stdout.trim()) as { retried: number; failed: number; heapMiB: number };
    expect(result).toMatchObject({ retried: 20_000, failed: 0 });
  }, 150_000);
});

describe('SqliteStore query plans', () => {
  it('claim-next and reap use the (status, deadline) index on a table of 50,000 rows', async () => {
    const db = new Database(join(dir, 'explain.sqlite'));
    const captured: Array<{ text: string; values: unknown[] }> = [];
    const recording = recordingDatabase(db, (text, values) => captured.push({ text, values }));
    const store = new SqliteStore({ database: recording, table: 'explain' });
    await makeTracker(store).init();
    const statuses = ['pending', 'downloading', 'downloaded', 'processed', 'failed'];
    const insert = db.prepare(`INSERT INTO explain ("key_logId", "key_partnerCode", key_seq, status, data, deadline, created_at, updated_at) VALUES (?, 'p', ?, ?, '{}', ?, 0, 0)`);
    db.transaction(() => {
      for (let i = 0; i < 50_000; i++) insert.run(`l${i}`, i, statuses[i % 5], Date.now() + ((i % 100) - 50) * 60_000);
    })();
    db.exec('ANALYZE');
    const { claim, reap, reapUpdate } = await captureClaimAndReap(store, captured);
    const plan = (statement: { text: string; values: unknown[] }) =>
      (db.prepare(`EXPLAIN QUERY PLAN ${statement.text}`).all(...statement.values) as Array<{ detail: string }>).map((r) => r.detail).join('\n');
    for (const statement of [claim, reap]) {
      expect(plan(statement)).toMatch(/USING (COVERING )?INDEX explain_status_deadline/);
      expect(plan(statement)).not.toMatch(/^SCAN explain\b/m);
    }
    expect(plan(reapUpdate)).toMatch(/SEARCH explain USING INTEGER PRIMARY KEY/);
    db.close();
  });
});

describe('SqliteStore long table names', () => {
  const key = { logId: 'a', partnerCode: 'p', seq: 1 };
  const indexesOf = (file: string, table: string) => {
    const db = new Database(file);
    try {
      return (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`).all(table) as Array<{ name: string }>).map((r) => r.name);
    } finally {
      db.close();
    }
  };

  it('gives a 63-character table name, and names that share their first 60 characters, indexes of their own (one item per key in each)', async () => {
    const file = join(dir, 'long-names.sqlite');
    const tables = ['t'.repeat(63), `${'a'.repeat(60)}bbb`, `${'a'.repeat(60)}ccc`];
    for (const table of tables) {
      const tracker = makeTracker(new SqliteStore({ filename: file, table }));
      await tracker.init();
      expect((await tracker.track(key)).created).toBe(true);
      expect((await tracker.track(key)).created).toBe(false);
      const names = indexesOf(file, table);
      expect(names).toHaveLength(2);
      expect(names.some((i) => i.endsWith('_key')) && names.some((i) => i.endsWith('_status_deadline'))).toBe(true);
    }
  });

  it('refuses a table name that differs from one the file holds only in letter case (SQLite would make them one table)', async () => {
    const file = join(dir, 'case-names.sqlite');
    const jobs = makeTracker(new SqliteStore({ filename: file, table: 'jobs' }));
    await jobs.track(key);
    const other = makeTracker(new SqliteStore({ filename: file, table: 'Jobs' }));
    await expect(other.init()).rejects.toThrow(/`Jobs` names the table `jobs` this file already holds \(SQLite ignores letter case in table names\)/);
    // the same name again is the same table
    expect((await makeTracker(new SqliteStore({ filename: file, table: 'jobs' })).track(key)).created).toBe(false);
  });

  it('names a table that takes an index name as a table that does not fit', async () => {
    const file = join(dir, 'taken-name.sqlite');
    const table = 'taken_items';
    const db = new Database(file);
    db.exec(`CREATE TABLE "${table}_key" (x TEXT)`);
    db.close();
    const refused = await makeTracker(new SqliteStore({ filename: file, table })).init().then(() => null, (error: unknown) => error as StoreError);
    expect(refused?.message).toMatch(/the name `taken_items_key`, which leasehold gives an index of the table `taken_items`, is taken by a table of that name\. Drop or rename what holds the name/);
    expect(refused?.failure).toBe('schema');
  });

  it('makes again, under their own names, the indexes an earlier version named by cutting at 63 characters', async () => {
    const file = join(dir, 'legacy-names.sqlite');
    const table = `${'l'.repeat(50)}_items`;
    const legacy = (suffix: string) => `${table}_${suffix}`.slice(0, 63);
    const db = new Database(file);
    db.exec(`CREATE TABLE "${table}" (id INTEGER PRIMARY KEY AUTOINCREMENT, "key_logId" TEXT NOT NULL, "key_partnerCode" TEXT NOT NULL, key_seq REAL NOT NULL,
      status TEXT NOT NULL, stage TEXT, data TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, fence INTEGER NOT NULL DEFAULT 0,
      owner TEXT, deadline INTEGER NOT NULL, last_error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, claimed_at INTEGER, finished_at INTEGER);
      CREATE UNIQUE INDEX "${legacy('key')}" ON "${table}" ("key_logId", "key_partnerCode", key_seq);
      CREATE INDEX "${legacy('status_deadline')}" ON "${table}" (status, deadline, id);`);
    db.close();
    expect(indexesOf(file, table)).toEqual([legacy('key'), legacy('status_deadline')].sort());
    const tracker = makeTracker(new SqliteStore({ filename: file, table }));
    await tracker.init();
    const names = indexesOf(file, table);
    expect(names).toHaveLength(2);
    expect(names).not.toContain(legacy('status_deadline'));
    expect((await tracker.track(key)).created).toBe(true);
    expect((await tracker.track(key)).created).toBe(false);
  });
});

describe('SqliteStore: items parked before stages were recorded', () => {
  it('retry and retryAll with a stage take an item whose stage is NULL; without one they leave it', async () => {
    const store = newStore();
    const tracker = makeTracker(store);
    await tracker.init();
    for (const n of [1, 2, 3]) {
      await tracker.track(k(n));
      await tracker.fail((await tracker.claim('download', { owner: 'w', key: k(n) }))!, 'broken', { retry: false });
    }
    // as an older version left them: parked, no stage recorded
    sql(store, (t) => `UPDATE "${t}" SET stage = NULL`);
    expect(await tracker.retry(k(1))).toBeNull();
    expect(await tracker.retryAll()).toBe(0);
    expect((await tracker.retry(k(1), { stage: 'download' }))!).toMatchObject({ status: 'pending', stage: null, attempts: 0 });
    // the failed status is shared by both stages: a bulk retry cannot tell whose they were
    expect(await tracker.retryAll({ stage: 'download' })).toBe(0);
    expect((await tracker.retry(k(2), { stage: 'process' }))!).toMatchObject({ status: 'downloaded' });
    expect((await tracker.get(k(3)))!.status).toBe('failed');
  });
});

describe('SqliteStore: a track racing a purge', () => {
  it('tracks again when the item that held its key is deleted (by another process) between the conflict and the read', async () => {
    const store = newStore();
    const tracker = makeTracker(store);
    await tracker.init();
    await tracker.track(k(1), { bytes: 1 });
    const find = store.find.bind(store);
    let purged = false;
    // the read after the conflict finds the row gone: another process purged it meanwhile
    store.find = async (cond, options) => {
      if (!purged && cond.key) (purged = true, sql(store, (t) => `DELETE FROM "${t}"`));
      return find(cond, options);
    };
    const again = await tracker.track(k(1), { bytes: 2 });
    expect(purged).toBe(true);
    expect(again.created).toBe(true);
    expect(again.item.data).toEqual({ bytes: 2 });
  });
});

describe('SqliteStore: a table made for another key', () => {
  const keyedTracker = (store: Store, key: z.ZodObject) =>
    new Tracker({ store, statuses: ['pending', 'done', 'failed', 'running'], initial: 'pending', key, stages: { s: { from: 'pending', active: 'running', done: 'done', failed: 'failed' } } });
  it('init refuses a key column of another type, or a missing one, as a schema error naming it', async () => {
    const store = newStore();
    const { file, table } = tables.get(store)!;
    await makeTracker(store).init();
    // a redeploy that made `seq` a string
    const changed = keyedTracker(store, z.object({ logId: z.string(), partnerCode: z.string(), seq: z.string() }));
    const refused = await changed.init().catch((e: unknown) => e);
    expect((refused as StoreError).failure).toBe('schema');
    expect(String(refused)).toMatch(/has column `key_seq` of type REAL, not TEXT as key field `seq` \(string\) needs/);
    // one that added a field
    const added = keyedTracker(new SqliteStore({ filename: file, table }), z.object({ logId: z.string(), partnerCode: z.string(), seq: z.number(), region: z.string() }));
    expect(String(await added.init().catch((e: unknown) => e))).toMatch(/has no column `key_region`/);
  });

  it('init refuses a table whose key lost a field (its NOT NULL column is left), and one whose unique key index is on other columns', async () => {
    const store = newStore();
    const { file, table } = tables.get(store)!;
    await makeTracker(store).init();
    // a redeploy that removed `partnerCode` from the key: every track would fail on its NOT NULL
    const removed = keyedTracker(new SqliteStore({ filename: file, table }), z.object({ logId: z.string(), seq: z.number() }));
    const refused = await removed.init().catch((e: unknown) => e);
    expect((refused as StoreError).failure).toBe('schema');
    expect(String(refused)).toMatch(/has the NOT NULL column `key_partnerCode`, which no key field declares \(a key field removed\)/);
    // the same fields in another order are the same key
    await keyedTracker(new SqliteStore({ filename: file, table }), z.object({ seq: z.number(), logId: z.string(), partnerCode: z.string() })).init();
    // a unique index left on fewer columns than the key (made by hand, or by a layout before)
    const db = new Database(file);
    try {
      db.exec(`DROP INDEX "${table}_key"; CREATE UNIQUE INDEX "${table}_key" ON "${table}" (key_logId, key_seq)`);
    } finally {
      db.close();
    }
    const narrow = await makeTracker(new SqliteStore({ filename: file, table })).init().catch((e: unknown) => e);
    expect(String(narrow)).toMatch(/has its unique key index "[^"]+_key" on \(key_logid, key_seq\), not on the declared key fields/);
  });

  it('init refuses a new table whose index names a renamed table still holds (no unique key: one key tracked twice), and a key index that is not UNIQUE', async () => {
    const store = newStore();
    const { file, table } = tables.get(store)!;
    const old = makeTracker(store);
    await old.track(k(1));
    const db = new Database(file);
    try {
      // the table archived by a rename: SQLite keeps its indexes' names
      db.exec(`ALTER TABLE "${table}" RENAME TO "${table}_old"`);
    } finally {
      db.close();
    }
    const fresh = makeTracker(new SqliteStore({ filename: file, table }));
    const refused = await fresh.init().catch((e: unknown) => e);
    expect((refused as StoreError).failure).toBe('schema');
    expect(String(refused)).toMatch(new RegExp(`the name \`${table}_key\`, which leasehold gives an index of the table \`${table}\`, is taken by an index of the table \`${table}_old\` \\(a renamed table keeps its indexes' names\\)`));
    // nothing was made, and no track got through
    const check = new Database(file);
    try {
      expect(check.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?`).get(table)).toBeUndefined();
      // the archive's indexes given names of their own: the new table gets its own, and one item per key
      check.exec(`DROP INDEX "${table}_key"; DROP INDEX "${table}_status_deadline"; CREATE UNIQUE INDEX "${table}_old_key" ON "${table}_old" (key_logId, key_partnerCode, key_seq)`);
    } finally {
      check.close();
    }
    const again = makeTracker(new SqliteStore({ filename: file, table }));
    expect((await again.track(k(7))).created).toBe(true);
    expect((await again.track(k(7))).created).toBe(false);
    // a key index of the right columns that is not UNIQUE keeps nothing unique
    const plain = new Database(file);
    try {
      plain.exec(`DROP INDEX "${table}_key"; CREATE INDEX "${table}_key" ON "${table}" (key_logId, key_partnerCode, key_seq)`);
    } finally {
      plain.close();
    }
    const notUnique = await makeTracker(new SqliteStore({ filename: file, table })).init().catch((e: unknown) => e);
    expect(String(notUnique)).toMatch(/has its key index "[^"]+_key" not UNIQUE, so one key could be tracked twice: make the index again as `CREATE UNIQUE INDEX/);
    // nor does a partial one (WHERE …), which SQLite lists as unique
    const partial = new Database(file);
    try {
      partial.exec(`DROP INDEX "${table}_key"; CREATE UNIQUE INDEX "${table}_key" ON "${table}" (key_logId, key_partnerCode, key_seq) WHERE status = 'nope'`);
    } finally {
      partial.close();
    }
    const partialRefused = await makeTracker(new SqliteStore({ filename: file, table })).init().catch((e: unknown) => e);
    expect(String(partialRefused)).toMatch(/has its unique key index "[^"]+_key" partial \(WHERE …\), so one key could be tracked twice/);
  });

  it('takes an index name that only a trigger holds (triggers have names of their own)', async () => {
    const file = join(dir, 'trigger-name.sqlite');
    const table = 'triggered_items';
    const db = new Database(file);
    try {
      db.exec(`CREATE TABLE audit (x TEXT); CREATE TRIGGER "${table}_key" AFTER INSERT ON audit BEGIN SELECT 1; END`);
    } finally {
      db.close();
    }
    const tracker = makeTracker(new SqliteStore({ filename: file, table }));
    expect((await tracker.track(k(1))).created).toBe(true);
    expect((await tracker.track(k(1))).created).toBe(false);
  });
});

describe('SqliteStore: batches and races', () => {
  it('settles a batch larger than one transaction holds (chunks of 1,000), each result in its place', async () => {
    const store = newStore();
    const tracker = makeTracker(store);
    await tracker.init();
    const n = 2_345;
    // tracked in one statement: the test is about the settle
    const db = new Database(tables.get(store)!.file);
    try {
      db.prepare(
        `WITH RECURSIVE seq(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM seq WHERE v < ?)
         INSERT INTO "${tables.get(store)!.table}" (key_logId, key_partnerCode, key_seq, status, data, deadline, created_at, updated_at)
         SELECT 'log-' || v, 'acme', v, 'pending', '{"bytes":1}', 0, 0, 0 FROM seq`,
      ).run(n);
    } finally {
      db.close();
    }
    const leases = await tracker.claimBatch('download', { owner: 'w', limit: n });
    expect(leases).toHaveLength(n);
    const results = await tracker.completeBatch(leases);
    expect(results.every((r, i) => r.ok && r.lease === leases[i] && r.status === 'downloaded')).toBe(true);
    expect((await tracker.stats()).byStatus.downloaded).toBe(n);
  });
});

describe('SqliteStore: leases across store objects', () => {
  it('a lease claimed through one store object settles through another over the same file and table, not another table', async () => {
    const file = join(dir, 'across.sqlite');
    const [a, b, other] = [new SqliteStore({ filename: file, table: 'across' }), new SqliteStore({ filename: file, table: 'across' }), new SqliteStore({ filename: file, table: 'elsewhere' })];
    try {
      expect(a.location).toBe(`sqlite:${file}#across`);
      const [ta, tb, tOther] = [makeTracker(a), makeTracker(b), makeTracker(other)];
      await ta.track(k(1));
      await tOther.track(k(1));
      const lease = (await ta.claim('download', { owner: 'w' }))!;
      // one module claims, another (its own store object on the same table) completes
      expect((await tb.complete(lease)).status).toBe('downloaded');
      const stray = (await tOther.claim('download', { owner: 'w' }))!;
      await expect(ta.complete(stray)).rejects.toThrow(/claimed through a tracker on another store/);
      expect((await tOther.get(k(1)))!.status).toBe('downloading');
    } finally {
      for (const s of [a, b, other]) await s.close();
    }
  });
});
