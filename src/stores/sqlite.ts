/**
 * `SqliteStore`: items in a SQLite file through `better-sqlite3` (a peer dependency); WAL mode,
 * safe across processes on one machine.
 *
 * @module leasehold/sqlite
 */
import type Database from 'better-sqlite3';
import { ConfigError, StoreError } from '../errors.js';
import {
  guardCondition,
  type Change,
  type Condition,
  type GuardedUpdate,
  type InsertResult,
  type NewItem,
  type Store,
  type StoreCapabilities,
  type StoreSchema,
  type StoredItem,
  type StoreStats,
  type UpdateOptions,
} from '../store.js';
import { ELIGIBLE_ORDER, insertStatement, Params, toItem, updateStatement, where, type KeyColumn } from './sql/compile.js';
import { keyColumns, quoteIdentifier, type Dialect } from './sql/dialect.js';

/** The part of a better-sqlite3 `Database` the store uses. */
export type SqliteDatabase = Pick<Database.Database, 'prepare' | 'pragma' | 'exec' | 'transaction' | 'close'>;

/** Options of {@link SqliteStore}: give `filename` or an open `database`. */
export interface SqliteStoreOptions {
  /** Path of the database file; created if missing (its folder must exist). */
  readonly filename?: string;
  /** An open better-sqlite3 database, instead of `filename`. */
  readonly database?: SqliteDatabase;
  /** The table holding the items. Letters, digits and `_`. */
  readonly table: string;
  /**
   * How long a writer waits for another process's write lock before failing.
   * @default 5000
   */
  readonly busyTimeoutMs?: number;
}

const dialect: Dialect = {
  name: 'sqlite',
  placeholder: () => '?',
  // integer milliseconds from SQLite's own clock; stable within one statement
  now: "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
  plusMs: (ms) => `(CAST(unixepoch('subsec') * 1000 AS INTEGER) + ${ms})`,
  greatest: 'MAX',
  json: (p) => p,
  keyParam: (type, v) => (type === 'date' ? (v as Date).getTime() : type === 'boolean' ? (v ? 1 : 0) : v),
  keyValue: (type, v) => (type === 'date' ? new Date(Number(v)) : type === 'boolean' ? v === 1 : (v as string | number)),
  time: (v) => (v === null || v === undefined ? null : new Date(Number(v))),
  data: (v) => JSON.parse(v as string) as unknown,
  // the subselect runs inside the same statement, under SQLite's single writer
  pickIds: (table, where, limit) => `id IN (SELECT id FROM ${table} WHERE ${where} ORDER BY ${ELIGIBLE_ORDER} LIMIT ${limit})`,
};

const COLUMN_TYPE = { string: 'TEXT', number: 'REAL', boolean: 'INTEGER', date: 'INTEGER' } as const;

/**
 * A store in one SQLite file through better-sqlite3 (WAL mode, busy timeout). Safe across
 * processes on one machine: every operation is one statement, and SQLite runs one writer at
 * a time. Not for network filesystems, whose locks SQLite cannot trust.
 *
 * @example
 * ```ts
 * const store = new SqliteStore({ filename: './data/leasehold.sqlite', table: 'partner_log_trackers' });
 * ```
 */
export class SqliteStore implements Store {
  readonly name = 'sqlite';
  readonly capabilities: StoreCapabilities = Object.freeze({ batchClaim: true, batchSettle: true });
  readonly #table: string;
  readonly #filename: string | undefined;
  readonly #busyTimeoutMs: number;
  #db: SqliteDatabase | undefined;
  #keys: KeyColumn[] | undefined;
  readonly #owned: boolean;

  constructor(options: SqliteStoreOptions) {
    if (!options || (options.filename === undefined) === (options.database === undefined)) {
      throw new ConfigError('filename', '[sqlite] give exactly one of `filename` (a path) or `database` (an open better-sqlite3 Database).');
    }
    this.#table = quoteIdentifier('sqlite', 'table', options.table);
    this.#filename = options.filename;
    this.#db = options.database;
    this.#owned = options.database === undefined;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
    if (!Number.isInteger(this.#busyTimeoutMs) || this.#busyTimeoutMs < 0) {
      throw new ConfigError('busyTimeoutMs', `[sqlite] expected a non-negative integer, got \`${String(options.busyTimeoutMs)}\`.`);
    }
  }

  async init(schema: StoreSchema): Promise<void> {
    const db = await this.#open();
    const keys = keyColumns('sqlite', schema);
    const cols = keys.map((k) => `${k.sql} ${COLUMN_TYPE[k.type]} NOT NULL`).join(', ');
    const t = this.#table;
    const index = (suffix: string) => quoteIdentifier('sqlite', 'table', `${this.#table.slice(1, -1)}_${suffix}`.slice(0, 63));
    db.exec(`
      CREATE TABLE IF NOT EXISTS ${t} (
        id INTEGER PRIMARY KEY AUTOINCREMENT, ${cols},
        status TEXT NOT NULL, data TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, fence INTEGER NOT NULL DEFAULT 0,
        owner TEXT, deadline INTEGER NOT NULL, last_error TEXT,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, claimed_at INTEGER, finished_at INTEGER
      );
      CREATE UNIQUE INDEX IF NOT EXISTS ${index('key')} ON ${t} (${keys.map((k) => k.sql).join(', ')});
      CREATE INDEX IF NOT EXISTS ${index('status_deadline')} ON ${t} (status, deadline, id);
    `);
    this.#keys = keys;
  }

  async insert(item: NewItem): Promise<InsertResult> {
    const { db, keys } = this.#ready('insert');
    const { text, values } = insertStatement(this.#table, item, keys, dialect, '*');
    const row = db.prepare(text).get(...values) as Record<string, unknown> | undefined;
    if (row) return { item: toItem(row, keys, dialect), created: true };
    const [existing] = await this.find({ key: item.key }, { limit: 1 });
    return { item: existing!, created: false };
  }

  async update(cond: Condition, change: Change, options: UpdateOptions = {}): Promise<StoredItem[]> {
    const { db, keys } = this.#ready('update');
    return this.#update(db, keys, cond, change, options);
  }

  async updateEach(updates: readonly GuardedUpdate[]): Promise<Array<StoredItem | null>> {
    const { db, keys } = this.#ready('updateEach');
    // one transaction, one writer lock: the batch settles atomically in one call
    const run = db.transaction(() => updates.map(({ guard, change }) => this.#update(db, keys, guardCondition(guard), change, { limit: 1 })[0] ?? null));
    return run();
  }

  async find(cond: Partial<Condition>, options: { limit?: number } = {}): Promise<StoredItem[]> {
    const { db, keys } = this.#ready('find');
    const p = new Params(dialect);
    const sql = `SELECT * FROM ${this.#table} WHERE ${where(cond, keys, dialect, p)} ORDER BY ${ELIGIBLE_ORDER}${options.limit === undefined ? '' : ` LIMIT ${p.add(options.limit)}`}`;
    return (db.prepare(sql).all(...p.values) as Array<Record<string, unknown>>).map((row) => toItem(row, keys, dialect));
  }

  async stats(active: readonly string[]): Promise<StoreStats> {
    const { db } = this.#ready('stats');
    const p = new Params(dialect);
    const isActive = active.length ? `status IN (${active.map((s) => p.add(s)).join(', ')})` : 'FALSE';
    const sql =
      `SELECT status, COUNT(*) AS n, SUM(CASE WHEN ${isActive} AND deadline <= ${dialect.now} THEN 1 ELSE 0 END) AS expired, ` +
      `SUM(CASE WHEN NOT (${isActive}) AND deadline > ${dialect.now} THEN 1 ELSE 0 END) AS waiting FROM ${this.#table} GROUP BY status`;
    // the active list is used twice; bind it twice
    const values = [...p.values, ...p.values];
    const rows = db.prepare(sql).all(...values) as Array<{ status: string; n: number; expired: number; waiting: number }>;
    return {
      byStatus: Object.fromEntries(rows.map((r) => [r.status, r.n])),
      expired: rows.reduce((a, r) => a + r.expired, 0),
      waiting: rows.reduce((a, r) => a + r.waiting, 0),
    };
  }

  /** Closes the database if this store opened it. */
  async close(): Promise<void> {
    if (this.#owned) this.#db?.close();
    this.#db = undefined;
  }

  #update(db: SqliteDatabase, keys: KeyColumn[], cond: Condition, change: Change, options: UpdateOptions): StoredItem[] {
    const { text, values } = updateStatement(this.#table, this.#table, cond, change, options, keys, dialect, '*');
    const rows = db.prepare(text).all(...values) as Array<Record<string, unknown>>;
    return rows.map((row) => toItem(row, keys, dialect));
  }

  async #open(): Promise<SqliteDatabase> {
    if (!this.#db) {
      let Driver: typeof Database;
      try {
        Driver = (await import('better-sqlite3')).default;
      } catch (cause) {
        throw new StoreError({ operation: 'init', store: 'sqlite', cause: new Error('cannot load `better-sqlite3`; install it: npm i better-sqlite3@12', { cause }) });
      }
      this.#db = new Driver(this.#filename!);
    }
    const db = this.#db;
    db.pragma('journal_mode = WAL');
    db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`);
    db.pragma('synchronous = NORMAL');
    return db;
  }

  #ready(operation: string): { db: SqliteDatabase; keys: KeyColumn[] } {
    if (!this.#db || !this.#keys) {
      throw new StoreError({ operation, store: 'sqlite', cause: new Error('the store is not initialised; call `tracker.init()` first') });
    }
    return { db: this.#db, keys: this.#keys };
  }
}
