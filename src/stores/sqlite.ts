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
import { describe, MAX_TIMER_MS, requireKnownOptions } from '../validate.js';
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
import { keyColumns, legacySideName, quoteIdentifier, sideName } from './sql/dialect.js';
import { checkIndexOwners, checkKeyColumns, dialect, loadDriver, openWatchConnection, TYPES } from './sql/sqlite-dialect.js';
import type { SqliteDatabase, SqliteStoreOptions } from './sql/sqlite-options.js';
import { watchFile } from './sql/sqlite-watcher.js';

export type { SqliteDatabase, SqliteStoreOptions } from './sql/sqlite-options.js';

type Statement = Database.Statement<unknown[], unknown>;

/** Updates of a batch settle per transaction: the writer lock is held for milliseconds, not seconds. */
const SETTLE_CHUNK = 1_000;

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
  /** The connection the caller gave (`database`), kept for an `init` after `close()`. */
  readonly #given: SqliteDatabase | undefined;
  /** Whether `close()` ran and no `init` since (a Tracker runs `init` once, so its calls say so). */
  #closed = false;
  /** How many times `close()` ran: a connection that opened across a `close()` is closed, not kept. */
  #closes = 0;

  /**
   * Calls `listener` (with `{}`: something changed) when another connection commits to the
   * file, checked every `watchIntervalMs` while anyone listens. Absent for in-memory databases
   * and with `watchIntervalMs: false`.
   */
  readonly watch?: (listener: (change: StoreChange) => void) => () => void;

  constructor(options: SqliteStoreOptions) {
    requireKnownOptions('', options ?? null, ['filename', 'database', 'table', 'busyTimeoutMs', 'watchIntervalMs'], { name: 'sqlite', class: 'SqliteStore' });
    if ((options.filename === undefined) === (options.database === undefined)) {
      throw new ConfigError('filename', '[sqlite] give exactly one of `filename` (a path) or `database` (an open better-sqlite3 Database).');
    }
    if (options.filename !== undefined && typeof options.filename !== 'string') {
      throw new ConfigError('filename', `[sqlite] expected a path (a string; \`:memory:\` for a database in memory), got ${describe(options.filename)}.`);
    }
    if (options.database !== undefined && typeof (options.database as { prepare?: unknown } | null)?.prepare !== 'function') {
      throw new ConfigError('database', `[sqlite] expected an open better-sqlite3 Database (\`new Database(path)\`), got ${describe(options.database)}.`);
    }
    // the store sets it on a connection it opens; a given one keeps the caller's settings
    if (options.database !== undefined && options.busyTimeoutMs !== undefined) {
      throw new ConfigError('busyTimeoutMs', '[sqlite] applies to a connection the store opens (`filename`); on a `database` you opened, set it yourself: `database.pragma(\'busy_timeout = 1000\')`.');
    }
    this.#table = quoteIdentifier('sqlite', 'table', options.table);
    this.#filename = options.filename;
    this.#db = options.database;
    this.#given = options.database;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
    // SQLite reads a busy timeout past 2^31 - 1 as 0 (no waiting), and Node runs a longer interval at once
    if (!Number.isInteger(this.#busyTimeoutMs) || this.#busyTimeoutMs < 0 || this.#busyTimeoutMs > MAX_TIMER_MS) {
      throw new ConfigError('busyTimeoutMs', `[sqlite] expected an integer from 0 to ${MAX_TIMER_MS} (milliseconds), got ${describe(options.busyTimeoutMs)}.`);
    }
    const everyMs = options.watchIntervalMs ?? 15;
    if (everyMs !== false && (!Number.isInteger(everyMs) || everyMs < 1 || everyMs > MAX_TIMER_MS)) {
      throw new ConfigError('watchIntervalMs', `[sqlite] expected an integer from 1 to ${MAX_TIMER_MS} (milliseconds) or \`false\`, got ${describe(options.watchIntervalMs)}.`);
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
    // SQLite names tables regardless of letter case: `Jobs` would silently be `jobs`, mixing two
    // trackers' items in one table
    const clash = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE AND name <> ?`).get(table, table) as { name: string } | undefined;
    if (clash) {
      throw new ConfigError(
        'table',
        `[sqlite] \`${table}\` names the table \`${clash.name}\` this file already holds (SQLite ignores letter case in table names), so two trackers would share its items; pick a name that differs in more than case.`,
      );
    }
    checkIndexOwners(db, table, ['key', 'status_deadline'].map((suffix) => sideName(table, suffix)));
    db.exec(schemaStatements(this.#table, index, keys, TYPES));
    checkKeyColumns(db, this.#table, keys, index('key'));
    this.#keys = keys;
    this.#columns = { item: columnList(keys, 'item'), state: columnList(keys, 'state') };
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
    this.#closed = true;
    this.#closes++;
    // a `database` the caller gave stays open
    if (!this.#given) this.#db?.close();
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
    // init after close() (a new Tracker on this store) opens the file again, or takes back the
    // connection the caller gave (which close() left open)
    this.#closed = false;
    this.#db ??= this.#given;
    if (this.#db) return Promise.resolve(this.#db);
    if (!this.#opening) {
      const opening = this.#connect(this.#closes).finally(() => {
        if (this.#opening === opening) this.#opening = undefined;
      });
      this.#opening = opening;
    }
    return this.#opening;
  }

  async #connect(closes: number): Promise<SqliteDatabase> {
    const Driver = await loadDriver('init');
    const filename = this.#filename!;
    if (filename !== ':memory:' && filename !== '') {
      try {
        mkdirSync(dirname(resolve(filename)), { recursive: true });
      } catch (cause) {
        throw new StoreError({ operation: 'init', store: 'sqlite', cause: new Error(`cannot create the folder of \`${filename}\` (${(cause as Error).message}); check the \`filename\` option`, { cause }) });
      }
    }
    let db: SqliteDatabase | undefined;
    try {
      db = new Driver(filename);
      // only a connection the store opened gets its pragmas; a given one is the caller's
      db.pragma('journal_mode = WAL');
      db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`);
      db.pragma('synchronous = NORMAL');
    } catch (cause) {
      // closed, or every init() the Tracker tries again would leave a file descriptor open
      db?.close();
      const code = (cause as { code?: unknown })?.code;
      const error = new Error(`cannot open \`${filename}\` as a SQLite database in WAL mode (${(cause as Error)?.message ?? String(cause)}); check the \`filename\` option: a SQLite file (or a new one) in a folder this process may write`, { cause });
      throw Object.assign(error, code === undefined ? {} : { code });
    }
    // close() ran while the file was opening (even if another init began since): this connection
    // is closed, not kept
    if (this.#closes !== closes) {
      db.close();
      throw closed('init');
    }
    this.#db = db;
    return db;
  }

  #ready(operation: string): { db: SqliteDatabase; keys: KeyColumn[] } {
    if (this.#closed) throw closed(operation);
    if (!this.#db || !this.#keys) throw notInitialised('sqlite', operation);
    return { db: this.#db, keys: this.#keys };
  }
}

function closed(operation: string): StoreError {
  return new StoreError({ operation, store: 'sqlite', cause: new Error('this store was closed (`close()`), and a Tracker runs `init` once: make a new Tracker on the store (its `init` opens the file again)'), failure: 'other' });
}

/** The file of an open better-sqlite3 database (`undefined` for an in-memory one). */
function fileOf(database: SqliteDatabase | undefined): string | undefined {
  const db = database as { name?: unknown; memory?: unknown } | undefined;
  return db && db.memory !== true && typeof db.name === 'string' ? db.name : undefined;
}
