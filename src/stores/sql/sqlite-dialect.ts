/**
 * SQLite's side of the SQL compiler: the dialect, the column types, loading the driver, and the
 * check that an existing table fits the key.
 * @module
 */
import type Database from 'better-sqlite3';
import { StoreError } from '../../errors.js';
import { OWN_COLUMNS, type KeyColumn } from './compile.js';
import { KEY_PREFIX, type Dialect } from './dialect.js';
import type { SqliteDatabase } from './sqlite-options.js';
import type { WatchConnection } from './sqlite-watcher.js';

/** Loads better-sqlite3 (an optional peer dependency) when first needed. */
export async function loadDriver(operation: string): Promise<typeof Database> {
  try {
    return (await import('better-sqlite3')).default;
  } catch (cause) {
    throw new StoreError({ operation, store: 'sqlite', cause: new Error('cannot load `better-sqlite3`; install it: npm i better-sqlite3 (12 on Node 20, 13 on Node 22 and later)', { cause }) });
  }
}

/** A connection of the watcher's own, reading `data_version` on an existing file. */
export async function openWatchConnection(filename: string): Promise<WatchConnection> {
  const Driver = await loadDriver('watch');
  const db = new Driver(filename, { fileMustExist: true });
  try {
    const version = db.prepare('PRAGMA data_version').pluck();
    return { dataVersion: () => Number(version.get()), close: () => db.close() };
  } catch (error) {
    // opened but unreadable (not a database): its file descriptor is not left behind each retry
    db.close();
    throw error;
  }
}

const NOW = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

export const dialect: Dialect = {
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

export const TYPES = {
  id: 'INTEGER PRIMARY KEY AUTOINCREMENT',
  text: 'TEXT',
  json: 'TEXT',
  int: 'INTEGER',
  bigint: 'INTEGER',
  time: 'INTEGER',
  key: { string: 'TEXT', number: 'REAL', boolean: 'INTEGER', date: 'INTEGER' },
} as const;

/**
 * An existing table made for another key (a key field added, removed or its type changed by a
 * redeploy) is refused here: SQLite would store a number in a TEXT column as text, and every
 * read would then fail its schema; a removed field's NOT NULL column would fail every track,
 * and a unique index on other columns would neither keep the new keys unique nor serve them.
 */
export function checkKeyColumns(db: SqliteDatabase, table: string, keys: readonly KeyColumn[], keyIndex: string): void {
  const refuse = (problem: string, why = 'it was made for another key. Use a new table, or migrate this one (docs/stores/sqlite.md)') =>
    new StoreError({ operation: 'init', store: 'sqlite', failure: 'schema', cause: new Error(`the table ${table} ${problem}: ${why}`) });
  // SQLite's column names are not case sensitive
  const columns = db.prepare(`PRAGMA table_info(${table})`).all() as Array<{ name: string; type: string; notnull: number | bigint }>;
  const found = new Map(columns.map((c) => [c.name.toLowerCase(), c.type.toUpperCase()]));
  // a table of 0.1 has no `stage`: said now, not at every claim
  const missing = OWN_COLUMNS.filter((c) => !found.has(c));
  if (missing.length > 0) {
    throw refuse(
      `has no column(s) ${missing.join(', ')} that leasehold keeps`,
      'it was made by an older version (a table of 0.1 has no stage column) or by hand. Upgrade it as docs/stores/sqlite.md shows ("Upgrading from 0.1"), or use a new table',
    );
  }
  const declared = new Set(keys.map((k) => k.column.toLowerCase()));
  for (const key of keys) {
    const want = TYPES.key[key.type];
    const have = found.get(key.column.toLowerCase());
    if (have === want) continue;
    throw refuse(`${have === undefined ? `has no column \`${key.column}\`` : `has column \`${key.column}\` of type ${have}, not ${want}`} as key field \`${key.name}\` (${key.type}) needs`);
  }
  // a NOT NULL key column no field declares: a key field removed (a nullable one may be the user's own)
  const leftover = columns.find((c) => Number(c.notnull) === 1 && c.name.toLowerCase().startsWith(KEY_PREFIX) && !declared.has(c.name.toLowerCase()));
  if (leftover) throw refuse(`has the NOT NULL column \`${leftover.name}\`, which no key field declares (a key field removed), so every track would fail`);
  const unique = (db.prepare(`PRAGMA index_list(${table})`).all() as Array<{ name: string; unique: number | bigint; partial: number | bigint }>).find(
    (i) => i.name.toLowerCase() === keyIndex.slice(1, -1).toLowerCase(),
  );
  // Number(): a database opened with `defaultSafeIntegers(true)` gives integers as bigint
  if (Number(unique?.unique) !== 1 || Number(unique?.partial) !== 0) {
    const has = !unique ? `no unique key index ${keyIndex}` : Number(unique.unique) !== 1 ? `its key index ${keyIndex} not UNIQUE` : `its unique key index ${keyIndex} partial (WHERE …)`;
    throw refuse(`has ${has}, so one key could be tracked twice`, `make the index again as \`CREATE UNIQUE INDEX ${keyIndex} ON ${table} (key columns)\`, after removing items that share a key (docs/stores/sqlite.md)`);
  }
  const indexed = (db.prepare(`PRAGMA index_info(${keyIndex})`).all() as Array<{ name: string }>).map((c) => c.name.toLowerCase());
  if (indexed.length !== declared.size || !indexed.every((c) => declared.has(c))) {
    throw refuse(`has its unique key index ${keyIndex} on (${indexed.join(', ')}), not on the declared key fields (${[...declared].join(', ')})`);
  }
}

/**
 * Refuses, before anything is created, an index name leasehold gives `table`'s key or status index
 * that another table's index already has: SQLite keeps an index's name when its table is renamed
 * (`ALTER TABLE jobs RENAME TO jobs_old` leaves `jobs_key` on `jobs_old`), and `CREATE INDEX IF
 * NOT EXISTS` would then make a new `jobs` with no unique key, where one key can be tracked twice.
 * `names` are unquoted.
 */
export function checkIndexOwners(db: SqliteDatabase, table: string, names: readonly string[]): void {
  const exists = db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`).get(table) !== undefined;
  for (const name of names) {
    // triggers have names of their own: an index may share one's
    const owner = db.prepare(`SELECT type, tbl_name FROM sqlite_master WHERE name = ? COLLATE NOCASE AND type IN ('index', 'table', 'view')`).get(name) as { type: string; tbl_name: string } | undefined;
    if (!owner || (owner.type === 'index' && owner.tbl_name.toLowerCase() === table.toLowerCase())) continue;
    const taken =
      owner.type === 'index'
        ? `an index of the table \`${owner.tbl_name}\` (a renamed table keeps its indexes' names), so \`${table}\` ${exists ? 'has' : 'would get'} no unique key and one key could be tracked twice${exists ? ' (remove items that share a key before you make it: docs/stores/sqlite.md, "Renaming a table")' : ''}`
        : `a ${owner.type} of that name`;
    throw new StoreError({
      operation: 'init',
      store: 'sqlite',
      failure: 'schema',
      cause: new Error(
        `the name \`${name}\`, which leasehold gives an index of the table \`${table}\`, is taken by ${taken}. ` +
          `Drop or rename what holds the name (SQLite renames an index only by dropping it and creating it again under another name), or use another table name; then init again.`,
      ),
    });
  }
}
