/**
 * `SqliteStore`: items in a SQLite file through `better-sqlite3` (a peer dependency); WAL mode,
 * safe across processes on one machine.
 *
 * @module leasehold/sqlite
 */
import type Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError, notInitialised, StoreError } from '../errors.js';
import { MAX_TIMER_MS } from '../validate.js';
import {
  guardCondition,
  type Change,
  type Condition,
  type FindOptions,
  type GuardedUpdate,
  type InsertResult,
  type NewItem,
  type Returning,
  type Store,
  type StoreCapabilities,
  type StoreChange,
  type StoreSchema,
  type StoredItem,
  type StoreStats,
  type UpdateOptions,
} from '../store.js';
import { claimNextLimit, columnList, deleteStatement, findStatement, insertOrRead, insertStatement, schemaStatements, toItem, updateStatement, type KeyColumn } from './sql/compile.js';
import { KEY_PREFIX, keyColumns, legacySideName, quoteIdentifier, sideName, type Dialect } from './sql/dialect.js';
import { watchFile, type WatchConnection } from './sql/sqlite-watcher.js';

/** The part of a better-sqlite3 `Database` the store uses. */
export type SqliteDatabase = Pick<Database.Database, 'prepare' | 'pragma' | 'exec' | 'transaction' | 'close'>;
type Statement = Database.Statement<unknown[], unknown>;

/** Updates of a batch settle per transaction: the writer lock is held for milliseconds, not seconds. */
const SETTLE_CHUNK = 1_000;

/** Options of {@link SqliteStore}: give `filename` or an open `database`. */
export interface SqliteStoreOptions {
  /** Path of the database file; the file and its folder are created if missing. */
  readonly filename?: string;
  /**
   * An open better-sqlite3 database, instead of `filename`. Its pragmas are left as you set
   * them: for several processes on one file use `journal_mode = WAL`, and keep a `busy_timeout`
   * (better-sqlite3 sets 5000 ms on a new connection).
   */
  readonly database?: SqliteDatabase;
  /** The table holding the items. Letters, digits and `_`. */
  readonly table: string;
  /**
   * How long a writer waits for another process's write lock before failing (when the store
   * opens the file itself).
   * @default 5000
   */
  readonly busyTimeoutMs?: number;
  /**
   * While a worker of this process is idle, check this often whether another connection
   * committed to the file (`PRAGMA data_version`, a read of shared memory on a connection of
   * its own, one per file per process), and if so wake the worker to claim. Other processes'
   * work is then picked up within about this long instead of the next poll. `false`: idle
   * workers only poll (`pollMinMs`/`pollMaxMs`).
   * @default 15
   */
  readonly watchIntervalMs?: number | false;
}

/** Loads better-sqlite3 (an optional peer dependency) when first needed. */
async function loadDriver(operation: string): Promise<typeof Database> {
  try {
    return (await import('better-sqlite3')).default;
  } catch (cause) {
    throw new StoreError({ operation, store: 'sqlite', cause: new Error('cannot load `better-sqlite3`; install it: npm i better-sqlite3@12', { cause }) });
  }
}

/** A connection of the watcher's own, reading `data_version` on an existing file. */
async function openWatchConnection(filename: string): Promise<WatchConnection> {
  const Driver = await loadDriver('watch');
  const db = new Driver(filename, { fileMustExist: true });
  const version = db.prepare('PRAGMA data_version').pluck();
  return { dataVersion: () => Number(version.get()), close: () => db.close() };
}

const NOW = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

const dialect: Dialect = {
  name: 'sqlite',
  placeholder: () => '?',
  // integer milliseconds from SQLite's own clock; stable within one statement
  now: NOW,
  plusMs: (ms) => `(${NOW} + ${ms})`,
  at: (p) => p,
  timeParam: (v) => v.getTime(),
  greatest: 'MAX',
  json: (p) => p,
  keyParam: (type, v) => (type === 'date' ? (v as Date).getTime() : type === 'boolean' ? (v ? 1 : 0) : v),
  // Number(): a `database` opened with `defaultSafeIntegers(true)` gives integers as bigint
  keyValue: (type, v) => (type === 'date' ? new Date(Number(v)) : type === 'boolean' ? Number(v) === 1 : (v as string | number)),
  time: (v) => (v === null || v === undefined ? null : new Date(Number(v))),
  jsonValue: (v) => JSON.parse(v as string) as unknown,
  // the subselect runs inside the same statement, under SQLite's single writer
  pickIds: (table, where, limit) => `id IN (SELECT id FROM ${table} WHERE ${where} ORDER BY deadline, id LIMIT ${limit})`,
};

const TYPES = {
  id: 'INTEGER PRIMARY KEY AUTOINCREMENT',
  text: 'TEXT',
  json: 'TEXT',
  int: 'INTEGER',
  bigint: 'INTEGER',
  time: 'INTEGER',
  key: { string: 'TEXT', number: 'REAL', boolean: 'INTEGER', date: 'INTEGER' },
} as const;

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
  /** `sqlite:<absolute file>#<table>`; absent for an in-memory database (see `Store.location`). */
  readonly location?: string;
  readonly capabilities: StoreCapabilities = Object.freeze({ batchClaim: true, batchSettle: true, priorDeadline: true });
  readonly #table: string;
  readonly #filename: string | undefined;
  readonly #busyTimeoutMs: number;
  #db: SqliteDatabase | undefined;
  /** The connection being opened: two `init()`s at once share it. */
  #opening: Promise<SqliteDatabase> | undefined;
  /** Compiled statements by their text, for the open connection (compiling costs ten times running). */
  readonly #statements = new Map<string, Statement>();
  #keys: KeyColumn[] | undefined;
  #columns: Record<Returning, string> = { item: '*', state: '*' };
  readonly #owned: boolean;

  /**
   * Calls `listener` (with `{}`: something changed) when another connection commits to the
   * file, checked every `watchIntervalMs` while anyone listens. Absent for in-memory databases
   * and with `watchIntervalMs: false`.
   */
  readonly watch?: (listener: (change: StoreChange) => void) => () => void;

  constructor(options: SqliteStoreOptions) {
    if (!options || (options.filename === undefined) === (options.database === undefined)) {
      throw new ConfigError('filename', '[sqlite] give exactly one of `filename` (a path) or `database` (an open better-sqlite3 Database).');
    }
    this.#table = quoteIdentifier('sqlite', 'table', options.table);
    this.#filename = options.filename;
    this.#db = options.database;
    this.#owned = options.database === undefined;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
    // SQLite reads a busy timeout past 2^31 - 1 as 0 (no waiting), and Node runs a longer interval at once
    if (!Number.isInteger(this.#busyTimeoutMs) || this.#busyTimeoutMs < 0 || this.#busyTimeoutMs > MAX_TIMER_MS) {
      throw new ConfigError('busyTimeoutMs', `[sqlite] expected an integer from 0 to ${MAX_TIMER_MS} (milliseconds), got \`${String(options.busyTimeoutMs)}\`.`);
    }
    const everyMs = options.watchIntervalMs ?? 15;
    if (everyMs !== false && (!Number.isInteger(everyMs) || everyMs < 1 || everyMs > MAX_TIMER_MS)) {
      throw new ConfigError('watchIntervalMs', `[sqlite] expected an integer from 1 to ${MAX_TIMER_MS} (milliseconds) or \`false\`, got \`${String(options.watchIntervalMs)}\`.`);
    }
    const file = this.#filename ?? fileOf(options.database);
    // a file on disk: other connections (and store objects) can reach its items
    if (file !== undefined && file !== '' && file !== ':memory:') {
      this.location = `sqlite:${resolve(file)}#${options.table}`;
      if (everyMs !== false) this.watch = (listener) => watchFile(file, everyMs, openWatchConnection, listener);
    }
  }

  async init(schema: StoreSchema): Promise<void> {
    const db = await this.#open();
    const keys = keyColumns('sqlite', schema);
    const table = this.#table.slice(1, -1);
    const index = (suffix: string) => quoteIdentifier('sqlite', 'table', sideName(table, suffix));
    // an index an earlier version named by cutting at 63 characters: made again under its name (no
    // write unless there is one: processes starting at once must not queue on a write lock here)
    for (const suffix of ['key', 'status_deadline']) {
      const legacy = legacySideName(table, suffix);
      if (legacy === sideName(table, suffix)) continue;
      const ours = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ? AND tbl_name = ?`).get(legacy, table);
      if (ours) db.exec(`DROP INDEX IF EXISTS ${quoteIdentifier('sqlite', 'table', legacy)}`);
    }
    db.exec(schemaStatements(this.#table, index, keys, TYPES));
    this.#checkKeyColumns(db, keys, index('key'));
    this.#keys = keys;
    this.#columns = { item: columnList(keys, 'item'), state: columnList(keys, 'state') };
  }

  /**
   * An existing table made for another key (a key field added, removed or its type changed by a
   * redeploy) is refused here: SQLite would store a number in a TEXT column as text, and every
   * read would then fail its schema; a removed field's NOT NULL column would fail every track,
   * and a unique index on other columns would neither keep the new keys unique nor serve them.
   */
  #checkKeyColumns(db: SqliteDatabase, keys: readonly KeyColumn[], keyIndex: string): void {
    const refuse = (problem: string) =>
      new StoreError({
        operation: 'init',
        store: 'sqlite',
        failure: 'schema',
        cause: new Error(`the table ${this.#table} ${problem}: it was made for another key. Use a new table, or migrate this one (docs/stores/sqlite.md)`),
      });
    // SQLite's column names are not case sensitive
    const columns = db.prepare(`PRAGMA table_info(${this.#table})`).all() as Array<{ name: string; type: string; notnull: number }>;
    const found = new Map(columns.map((c) => [c.name.toLowerCase(), c.type.toUpperCase()]));
    const declared = new Set(keys.map((k) => k.column.toLowerCase()));
    for (const key of keys) {
      const want = TYPES.key[key.type];
      const have = found.get(key.column.toLowerCase());
      if (have === want) continue;
      throw refuse(`${have === undefined ? `has no column \`${key.column}\`` : `has column \`${key.column}\` of type ${have}, not ${want}`} as key field \`${key.name}\` (${key.type}) needs`);
    }
    // a NOT NULL key column no field declares: a key field removed (a nullable one may be the user's own)
    const leftover = columns.find((c) => c.notnull === 1 && c.name.toLowerCase().startsWith(KEY_PREFIX) && !declared.has(c.name.toLowerCase()));
    if (leftover) throw refuse(`has the NOT NULL column \`${leftover.name}\`, which no key field declares (a key field removed), so every track would fail`);
    const indexed = (db.prepare(`PRAGMA index_info(${keyIndex})`).all() as Array<{ name: string }>).map((c) => c.name.toLowerCase());
    if (indexed.length !== declared.size || !indexed.every((c) => declared.has(c))) {
      throw refuse(`has its unique key index ${keyIndex} on (${indexed.join(', ')}), not on the declared key fields (${[...declared].join(', ')})`);
    }
  }

  async insert(item: NewItem): Promise<InsertResult> {
    const { db, keys } = this.#ready('insert');
    const { text, values } = insertStatement(this.#table, item, keys, dialect, this.#columns.item);
    // the item that holds the key may be deleted (a purge in another process) between the insert
    // that found it and the read: then the insert runs again
    return insertOrRead(
      'sqlite',
      item.key,
      async () => {
        const row = this.#prepare(db, text).get(...values) as Record<string, unknown> | undefined;
        return row && toItem(row, keys, dialect);
      },
      async () => (await this.find({ key: item.key }, { limit: 1 }))[0],
    );
  }

  async update(cond: Condition, change: Change, options: UpdateOptions = {}): Promise<StoredItem[]> {
    const { db, keys } = this.#ready('update');
    return this.#update(db, keys, cond, change, options);
  }

  async updateEach(updates: readonly GuardedUpdate[], options: { returning?: Returning } = {}): Promise<Array<StoredItem | null>> {
    const { db, keys } = this.#ready('updateEach');
    const returning = options.returning ?? 'item';
    // a transaction per chunk: one writer lock for many updates, but never held for so long that
    // other processes' claims give up (each update is guarded on its own: a batch need not commit
    // as one)
    const run = db.transaction((chunk: readonly GuardedUpdate[]) => chunk.map(({ guard, change }) => this.#update(db, keys, guardCondition(guard), change, { limit: 1, returning })[0] ?? null));
    const results: Array<StoredItem | null> = [];
    for (let i = 0; i < updates.length; i += SETTLE_CHUNK) results.push(...run(updates.slice(i, i + SETTLE_CHUNK)));
    return results;
  }

  async find(cond: Partial<Condition>, options: FindOptions = {}): Promise<StoredItem[]> {
    const { db, keys } = this.#ready('find');
    const { text, values } = findStatement(this.#table, cond, options.limit, keys, dialect, this.#columns[options.returning ?? 'item']);
    return (this.#prepare(db, text).all(...values) as Array<Record<string, unknown>>).map((row) => toItem(row, keys, dialect));
  }

  async delete(cond: Condition, options: { limit: number }): Promise<number> {
    const { db, keys } = this.#ready('delete');
    const { text, values } = deleteStatement(this.#table, cond, options.limit, keys, dialect);
    return this.#prepare(db, text).run(...values).changes;
  }

  async stats(): Promise<StoreStats> {
    const { db } = this.#ready('stats');
    const rows = db.prepare(`SELECT status, COUNT(*) AS n, SUM(CASE WHEN deadline > ${dialect.now} THEN 1 ELSE 0 END) AS future FROM ${this.#table} GROUP BY status`).all() as Array<{
      status: string;
      n: number | bigint;
      future: number | bigint;
    }>;
    return { byStatus: Object.fromEntries(rows.map((r) => [r.status, { total: Number(r.n), future: Number(r.future) }])) };
  }

  /**
   * Closes the database if this store opened it (a `database` you passed in stays open).
   *
   * @example
   * ```ts
   * await worker.stop();
   * await store.close();
   * ```
   */
  async close(): Promise<void> {
    if (this.#owned) this.#db?.close();
    this.#db = undefined;
    this.#opening = undefined;
    this.#statements.clear();
  }

  /** The compiled statement of `text` on the open connection (kept for the few hundred texts a store sends). */
  #prepare(db: SqliteDatabase, text: string): Statement {
    let statement = this.#statements.get(text);
    if (!statement) {
      statement = db.prepare(text);
      // bounded: statement shapes are few, but `IN (...)` lists vary in length
      if (this.#statements.size < 500) this.#statements.set(text, statement);
    }
    return statement;
  }

  #update(db: SqliteDatabase, keys: KeyColumn[], cond: Condition, change: Change, options: UpdateOptions): StoredItem[] {
    const columns = this.#columns[options.returning ?? 'item'];
    const run = (c: Condition, o: UpdateOptions) => {
      const { text, values } = updateStatement(this.#table, this.#table, c, change, o, keys, dialect, columns);
      return (this.#prepare(db, text).all(...values) as Array<Record<string, unknown>>).map((row) => toItem(row, keys, dialect));
    };
    if (!options.priorDeadline) return run(cond, options);
    // RETURNING sees only the new row: pick the rows (same condition, order and limit) and read
    // their deadlines first, then update exactly those, each by its id, under the write lock.
    // (One UPDATE of the same condition could take a row that fell due between the statements:
    // SQLite reads its clock once per statement.)
    const pick = findStatement(this.#table, cond, claimNextLimit(cond, options), keys, dialect, 'id, deadline');
    const pickAndRun = db.transaction(() =>
      (this.#prepare(db, pick.text).all(...pick.values) as Array<{ id: unknown; deadline: unknown }>).flatMap(({ id, deadline }) =>
        run({ ...cond, ref: id }, { ...options, limit: 1 }).map((item) => Object.assign(item, { priorDeadline: dialect.time(deadline)! })),
      ),
    );
    return pickAndRun.immediate();
  }

  #open(): Promise<SqliteDatabase> {
    if (this.#db) return Promise.resolve(this.#db);
    this.#opening ??= this.#connect().finally(() => (this.#opening = undefined));
    return this.#opening;
  }

  async #connect(): Promise<SqliteDatabase> {
    const Driver = await loadDriver('init');
    const filename = this.#filename!;
    if (filename !== ':memory:' && filename !== '') {
      try {
        mkdirSync(dirname(resolve(filename)), { recursive: true });
      } catch (cause) {
        throw new StoreError({ operation: 'init', store: 'sqlite', cause: new Error(`cannot create the folder of \`${filename}\` (${(cause as Error).message}); check the \`filename\` option`, { cause }) });
      }
    }
    const db = new Driver(filename);
    // only a connection the store opened gets its pragmas; a given one is the caller's
    db.pragma('journal_mode = WAL');
    db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`);
    db.pragma('synchronous = NORMAL');
    this.#db = db;
    return db;
  }

  #ready(operation: string): { db: SqliteDatabase; keys: KeyColumn[] } {
    if (!this.#db || !this.#keys) throw notInitialised('sqlite', operation);
    return { db: this.#db, keys: this.#keys };
  }
}

/** The file of an open better-sqlite3 database (`undefined` for an in-memory one). */
function fileOf(database: SqliteDatabase | undefined): string | undefined {
  const db = database as { name?: unknown; memory?: unknown } | undefined;
  return db && db.memory !== true && typeof db.name === 'string' ? db.name : undefined;
}
