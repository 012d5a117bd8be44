import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../src/stores/sqlite.js';
import type { Store } from '../src/index.js';
import { storeContract } from './conformance/suite.js';

const dir = mkdtempSync(join(tmpdir(), 'leasehold-sqlite-'));
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

storeContract({
  name: 'SqliteStore (temp file)',
  raceRepeats: 100,
  async create() {
    const file = join(dir, `contract-${++n}.sqlite`);
    const table = `items_${n}`;
    const store = new SqliteStore({ filename: file, table });
    tables.set(store, { file, table });
    return store;
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
    sql(store, (t) => `UPDATE "${t}" SET data = '{"bytes":"not a number"}' WHERE "logId" = ?`, key.logId);
  },
});
