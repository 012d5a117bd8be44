// A table as 0.1 made it (key columns named after the fields, no `stage`) is refused at init,
// naming what it lacks, and works once upgraded as the store guides show ("Upgrading from 0.1").
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { StoreError, Tracker, type Store } from '../src/index.js';
import { PostgresStore } from '../src/stores/postgres.js';
import { SqliteStore } from '../src/stores/sqlite.js';

const dir = mkdtempSync(join(tmpdir(), 'leasehold-upgrade-'));
const admin = new pg.Pool({ connectionString: inject('postgresUrl'), max: 2 });
const table = `v01_${process.pid}`;
afterAll(async () => {
  await admin.query(`DROP TABLE IF EXISTS "${table}_keys", "${table}"`);
  await admin.end();
  rmSync(dir, { recursive: true, force: true });
});

const tracker = (store: Store) =>
  new Tracker({
    store,
    statuses: ['new', 'busy', 'done', 'failed'],
    initial: 'new',
    key: z.object({ logId: z.string(), partnerCode: z.string() }),
    stages: { go: { from: 'new', active: 'busy', done: 'done', failed: 'failed' } },
  });

/** The 0.1 table, with one item waiting; `time` is how the dialect writes a time. */
const v01 = (types: { id: string; text: string; json: string; int: string; time: string }, now: string) => `
  CREATE TABLE "${table}" (id ${types.id}, "logId" ${types.text} NOT NULL, "partnerCode" ${types.text} NOT NULL,
    status ${types.text} NOT NULL, data ${types.json} NOT NULL, attempts ${types.int} NOT NULL DEFAULT 0, fence ${types.int} NOT NULL DEFAULT 0,
    owner ${types.text}, deadline ${types.time} NOT NULL, last_error ${types.text}, created_at ${types.time} NOT NULL, updated_at ${types.time} NOT NULL,
    claimed_at ${types.time}, finished_at ${types.time});
  CREATE UNIQUE INDEX "${table}_key" ON "${table}" ("logId", "partnerCode");
  CREATE INDEX "${table}_status_deadline" ON "${table}" (status, deadline, id);
  INSERT INTO "${table}" ("logId", "partnerCode", status, data, deadline, created_at, updated_at) VALUES ('a', 'p', 'new', '{}', ${now}, ${now}, ${now});`;

/** The guides' upgrade. */
const upgrade = `ALTER TABLE "${table}" RENAME COLUMN "logId" TO "key_logId";
  ALTER TABLE "${table}" RENAME COLUMN "partnerCode" TO "key_partnerCode";`;

async function expectRefusedThenUpgraded(open: () => Store, run: (sql: string) => Promise<unknown>, addStage: string) {
  const error = await tracker(open()).init().catch((e: unknown) => e);
  expect(error).toBeInstanceOf(StoreError);
  expect(error).toMatchObject({ failure: 'schema' });
  expect((error as Error).message).toMatch(/has no column\(s\) stage that leasehold keeps: it was made by an older version \(a table of 0\.1 has no stage column\)/);
  expect((error as Error).message).toMatch(/Upgrading from 0\.1/);
  await run(`${upgrade} ${addStage}`);
  const upgraded = tracker(open());
  expect((await upgraded.get({ logId: 'a', partnerCode: 'p' }))?.status).toBe('new');
  const lease = await upgraded.claim('go', { owner: 'w' });
  expect(lease?.key).toEqual({ logId: 'a', partnerCode: 'p' });
  await upgraded.complete(lease!);
  expect((await upgraded.track({ logId: 'b', partnerCode: 'p' })).created).toBe(true);
}

describe('a table made by 0.1', () => {
  it('SQLite refuses it at init, naming the missing column, and works once upgraded', async () => {
    const file = join(dir, 'v01.sqlite');
    const db = new Database(file);
    db.exec(v01({ id: 'INTEGER PRIMARY KEY AUTOINCREMENT', text: 'TEXT', json: 'TEXT', int: 'INTEGER', time: 'INTEGER' }, '0'));
    const stores: SqliteStore[] = [];
    const open = () => {
      const store = new SqliteStore({ filename: file, table });
      stores.push(store);
      return store;
    };
    await expectRefusedThenUpgraded(open, async (sql) => db.exec(sql), `ALTER TABLE "${table}" ADD COLUMN stage TEXT;`);
    for (const store of stores) await store.close();
    db.close();
  });

  it('PostgreSQL refuses it at init, naming the missing column, and works once upgraded', async () => {
    await admin.query(v01({ id: 'bigserial PRIMARY KEY', text: 'text', json: 'jsonb', int: 'bigint', time: 'timestamptz' }, 'now()'));
    await expectRefusedThenUpgraded(() => new PostgresStore({ pool: admin, table }), (sql) => admin.query(sql), `ALTER TABLE "${table}" ADD COLUMN stage text;`);
  });
});
