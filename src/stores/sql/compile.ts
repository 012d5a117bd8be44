import { StoreError } from '../../errors.js';
import type { Change, Condition, DeadlineBefore, Delay, InsertResult, ItemOutcome, KeyFieldType, KeyValues, NewItem, Returning, SettleOutcome, StoredItem, UpdateOptions } from '../../store.js';
import type { Dialect } from './dialect.js';
import type { KeyScalar } from '../../store-data.js';

/** Collects bound parameters and hands out their placeholders. */
export class Params {
  readonly values: unknown[] = [];
  readonly #dialect: Dialect;

  constructor(dialect: Dialect) {
    this.#dialect = dialect;
  }

  add(value: unknown): string {
    this.values.push(value);
    return this.#dialect.placeholder(this.values.length);
  }
}

/** A key column as compiled into SQL. */
export interface KeyColumn {
  /** The key field name. */
  readonly name: string;
  readonly type: KeyFieldType;
  /** The quoted column name (`"key_<name>"`). */
  readonly sql: string;
  /** The column name as a row names it (`key_<name>`). */
  readonly column: string;
}

/** leasehold's own columns, in the order rows are read. */
export const STATE_COLUMNS = ['id', 'status', 'stage', 'attempts', 'fence', 'owner', 'deadline', 'last_error', 'created_at', 'updated_at', 'claimed_at', 'finished_at'] as const;
/** Every column of leasehold's own in an items table (the key columns come beside them). */
export const OWN_COLUMNS: readonly string[] = [...STATE_COLUMNS, 'data'];

/** The time columns, read back as epoch milliseconds where the dialect prefers. */
export const TIME_COLUMNS = new Set(['deadline', 'created_at', 'updated_at', 'claimed_at', 'finished_at']);

/** Data as JSON text: Dates are tagged `{"$date": iso}` so that they read back as Dates. */
export function encodeData(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, k, v) {
    const raw = this[k];
    return raw instanceof Date ? { $date: raw.toISOString() } : v;
  });
}

const isDateTag = (v: unknown): v is { $date: string } =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && typeof (v as { $date?: unknown }).$date === 'string' && Object.keys(v).length === 1;

/**
 * The inverse of {@link encodeData} on an already parsed JSON value (which it may change in
 * place: it was just parsed and nobody else holds it). Most data holds no dates, and is
 * returned as it is, without a copy.
 */
export function reviveDates(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (isDateTag(value)) return new Date(value.$date);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = reviveDates(value[i]);
    return value;
  }
  const record = value as Record<string, unknown>;
  for (const k in record) {
    const v = record[k];
    if (v === null || typeof v !== 'object') continue;
    const revived = reviveDates(v);
    if (revived !== v) record[k] = revived;
  }
  return record;
}

/** A change's deadline as SQL: an instant, or the store's `now` plus a delay. */
export function deadlineSql(delay: Delay, d: Dialect, p: Params): string {
  return 'at' in delay ? d.at(p.add(d.timeParam(delay.at))) : d.plusMs(p.add(delay.ms));
}

/** A condition's `deadline.before` as a {@link Delay}: an instant, or the store's now plus `ms`. */
const before = ({ before: b }: DeadlineBefore): Delay => (b instanceof Date ? { at: b } : b);

/**
 * One key column equal to `value`. Beside a ref a date is compared as the store reads it back
 * (`dateKeyAsRead`), so that a row stored with finer times than a Date holds can be settled.
 */
function keyEquals(k: KeyColumn, value: KeyScalar, byRef: boolean, d: Dialect, p: Params, alias: string): string {
  if (byRef && k.type === 'date' && d.dateKeyAsRead && value instanceof Date) return `${d.dateKeyAsRead(alias + k.sql)} = ${p.add(value.getTime())}`;
  return `${alias}${k.sql} = ${p.add(d.keyParam(k.type, value))}`;
}

/** Compiles a condition to a WHERE clause body; every value is a bound parameter. */
export function where(cond: Partial<Condition>, keys: readonly KeyColumn[], d: Dialect, p: Params, alias = ''): string {
  const parts: string[] = [];
  if (cond.ref !== undefined) parts.push(`${alias}id = ${p.add(cond.ref)}`);
  if (cond.key) {
    const key = cond.key;
    // with a ref the row is found already: its own key columns are checked, no lookup by key
    if (d.keyFilter && cond.ref === undefined) parts.push(d.keyFilter(keys.map((k) => [k.sql, p.add(d.keyParam(k.type, key[k.name]!))] as const), alias));
    else for (const k of keys) parts.push(keyEquals(k, key[k.name]!, cond.ref !== undefined, d, p, alias));
  }
  if (cond.status && cond.status.length > 0) parts.push(`${alias}status IN (${cond.status.map((s) => p.add(s)).join(', ')})`);
  if (cond.notStatus && cond.notStatus.length > 0) parts.push(`${alias}status NOT IN (${cond.notStatus.map((s) => p.add(s)).join(', ')})`);
  if (cond.stage !== undefined) parts.push(`${alias}stage = ${p.add(cond.stage)}`);
  if (cond.notStage && cond.notStage.length > 0) parts.push(`(${alias}stage IS NULL OR ${alias}stage NOT IN (${cond.notStage.map((s) => p.add(s)).join(', ')}))`);
  if (cond.fence !== undefined) parts.push(`${alias}fence = ${p.add(cond.fence)}`);
  if (cond.deadline === 'passed') parts.push(`${alias}deadline <= ${d.now}`);
  else if (cond.deadline === 'future') parts.push(`${alias}deadline > ${d.now}`);
  else if (cond.deadline) parts.push(`${alias}deadline < ${deadlineSql(before(cond.deadline), d, p)}`);
  return parts.length ? parts.join(' AND ') : 'TRUE';
}

/** Compiles a change to a SET list. Column references read the row before the update. */
export function set(change: Change, d: Dialect, p: Params): string {
  const parts = [`updated_at = ${d.now}`];
  if (change.status !== undefined) parts.push(`status = ${p.add(change.status)}`);
  if (change.stage !== undefined) parts.push(`stage = ${p.add(change.stage)}`);
  if (change.owner !== undefined) parts.push(`owner = ${p.add(change.owner)}`);
  if (change.bumpFence) parts.push('fence = fence + 1');
  if (change.attempts === 'increment') parts.push('attempts = attempts + 1', `claimed_at = ${d.now}`);
  if (change.attempts === 'decrement') parts.push(`attempts = ${d.greatest}(attempts - 1, 0)`);
  if (change.attempts === 'reset') parts.push('attempts = 0');
  if (change.deadline) parts.push(`deadline = ${deadlineSql(change.deadline, d, p)}`);
  if (change.data !== undefined) parts.push(`data = ${d.json(p.add(encodeData(change.data)))}`);
  if (change.lastError !== undefined) parts.push(`last_error = ${p.add(change.lastError)}`);
  if (change.finished !== undefined) parts.push(`finished_at = ${change.finished ? d.now : 'NULL'}`);
  return parts.join(', ');
}

/**
 * Maps a returned row to a stored item (`data` undefined when the row has none). With `change`,
 * a column the statement did not return because the change set it (see {@link knownColumns})
 * is taken from the change.
 */
export function toItem(row: Record<string, unknown>, keys: readonly KeyColumn[], d: Dialect, change?: Change): StoredItem {
  const updatedAt = d.time(row.updated_at)!;
  const key: Record<string, unknown> = {};
  for (const k of keys) key[k.name] = d.keyValue(k.type, row[k.column]);
  return {
    ref: row.id,
    key: key as KeyValues,
    status: (row.status ?? change?.status) as string,
    stage: ((row.stage === undefined ? change?.stage : row.stage) as string | null | undefined) ?? null,
    data: row.data === undefined ? undefined : reviveDates(d.jsonValue(row.data)),
    attempts: Number(row.attempts),
    fence: Number(row.fence),
    owner: ((row.owner === undefined ? change?.owner : row.owner) as string | null | undefined) ?? null,
    deadline: d.time(row.deadline)!,
    lastError: (row.last_error as string | null) ?? null,
    createdAt: d.time(row.created_at)!,
    updatedAt,
    // set to the statement's `now()`, as updated_at is
    claimedAt: row.claimed_at === undefined && change?.attempts === 'increment' ? new Date(updatedAt) : d.time(row.claimed_at),
    finishedAt: row.finished_at === undefined && change?.finished !== undefined ? (change.finished ? new Date(updatedAt) : null) : d.time(row.finished_at),
  };
}

/**
 * The columns an update need not return because `change` sets them to values known before it
 * runs: status, stage and owner as given, `claimed_at` (a claim sets it to `now()`, as it does
 * `updated_at`) and `finished_at` (`NULL`, or `now()`). {@link toItem} fills them from the change.
 */
export function knownColumns(change: Change): Set<string> {
  const known = new Set<string>();
  if (change.status !== undefined) known.add('status');
  if (change.stage !== undefined) known.add('stage');
  if (change.owner !== undefined) known.add('owner');
  if (change.attempts === 'increment') known.add('claimed_at');
  if (change.finished !== undefined) known.add('finished_at');
  return known;
}

/**
 * Maps a row of an `outcomeOnly` update (`id`, `status`, `fence`, `deadline`, `updated_at`) to a
 * result whose other fields are unspecified (see `UpdateOptions.outcomeOnly`).
 */
export function toOutcome(row: Record<string, unknown>, d: Dialect): StoredItem {
  const outcome: ItemOutcome = { ref: row.id, status: row.status as string, fence: Number(row.fence), deadline: d.time(row.deadline)!, updatedAt: d.time(row.updated_at)! };
  return outcome as StoredItem;
}

/**
 * Maps a row of an `outcomeOnly` batch settle to a result whose other fields are unspecified (see
 * `UpdateEachOptions.outcomeOnly`): `id`, and `status` and `deadline` where the statement returned
 * them; else the status is the one `change` set.
 */
export function toSettleOutcome(row: Record<string, unknown>, change: Change, d: Dialect): StoredItem {
  const outcome: SettleOutcome = { ref: row.id, status: (row.status ?? change.status) as string, ...(row.deadline === undefined ? {} : { deadline: d.time(row.deadline)! }) };
  return outcome as StoredItem;
}

/**
 * The RETURNING / SELECT list for `returning`, every column as stored (SQLite; PostgreSQL reads
 * times and some types otherwise: see `columnsOf` in `pg-dialect.ts`).
 */
export function columnList(keys: readonly KeyColumn[], returning: Returning): string {
  return [...STATE_COLUMNS, ...keys.map((k) => k.sql), ...(returning === 'item' ? ['data'] : [])].join(', ');
}

/** The eligible order: earliest deadline first, then insertion order. */
export const ELIGIBLE_ORDER = 'deadline, id';

/** A statement and its bound values. */
export interface Statement {
  readonly text: string;
  readonly values: unknown[];
}

/** `Store.insert`: insert-if-absent on the unique key, returning the row only when it was created. */
export function insertStatement(target: string, item: NewItem, keys: readonly KeyColumn[], d: Dialect, returning: string): Statement {
  const p = new Params(d);
  const row = newRow(item, keys, d, p);
  const text = `INSERT INTO ${target} (${row.columns}) VALUES (${row.values}) ON CONFLICT DO NOTHING RETURNING ${returning}`;
  return { text, values: p.values };
}

/**
 * A new item's row: its column list (key columns, then status, data, deadline and the two
 * times), the SQL of each value in that order (bound parameters, and the store's `now`), and the
 * placeholders of its key values alone. Placeholders are handed out in text order: SQLite's `?`
 * are positional.
 */
export function newRow(item: NewItem, keys: readonly KeyColumn[], d: Dialect, p: Params): { columns: string; values: string; key: string[] } {
  const key = keys.map((k) => p.add(d.keyParam(k.type, item.key[k.name]!)));
  const status = p.add(item.status);
  const data = d.json(p.add(encodeData(item.data)));
  const deadline = item.deadline ? deadlineSql(item.deadline, d, p) : d.now;
  return {
    columns: `${keys.map((k) => k.sql).join(', ')}, status, data, deadline, created_at, updated_at`,
    values: `${key.join(', ')}, ${status}, ${data}, ${deadline}, ${d.now}, ${d.now}`,
    key,
  };
}

/**
 * `Store.update`: one `UPDATE … WHERE <guard> RETURNING`. With a limit and no key it is
 * claim-next: the dialect picks the oldest eligible ids inside the same statement.
 *
 * With `prior` (PostgreSQL, for `priorDeadline`), the returned expression of each row's deadline
 * before the update, written against `prior.prior_deadline`: `RETURNING` sees only the new row,
 * so a subquery picks and locks the rows as claim-next does and reads their deadline, and the
 * update joins it. A keyed update waits for a row another transaction holds, as the plain
 * `UPDATE` does; claim-next skips it.
 */
export function updateStatement(
  table: string,
  target: string,
  cond: Condition,
  change: Change,
  options: UpdateOptions,
  keys: readonly KeyColumn[],
  d: Dialect,
  returning: string,
  prior?: string,
): Statement {
  const p = new Params(d);
  const assignments = set(change, d, p);
  const limit = claimNextLimit(cond, options);
  if (prior !== undefined) {
    const matching = `SELECT id AS prior_id, deadline AS prior_deadline FROM ${table} WHERE ${where(cond, keys, d, p)}`;
    const picked = limit === undefined ? `${matching} FOR NO KEY UPDATE` : `${matching} ORDER BY ${ELIGIBLE_ORDER} LIMIT ${limitSql(limit, d, p)} FOR NO KEY UPDATE SKIP LOCKED`;
    return { text: `UPDATE ${target} SET ${assignments} FROM (${picked}) AS prior WHERE t.id = prior.prior_id RETURNING ${returning}, ${prior}`, values: p.values };
  }
  const filter = limit === undefined ? where(cond, keys, d, p) : d.pickIds(table, where(cond, keys, d, p), limitSql(limit, d, p));
  return { text: `UPDATE ${target} SET ${assignments} WHERE ${filter} RETURNING ${returning}`, values: p.values };
}

/**
 * The limit of an update that is claim-next (a limit and neither key nor ref: the oldest
 * eligible rows are picked), else `undefined` (the condition names the rows).
 */
export function claimNextLimit(cond: Condition, options: UpdateOptions): number | undefined {
  return cond.key || cond.ref !== undefined ? undefined : options.limit;
}

/** A limit as SQL: written into the statement where the dialect asks (see `Dialect.inlineLimit`). */
function limitSql(limit: number, d: Dialect, p: Params): string {
  // an integer, checked here because it is written into the SQL text
  return d.inlineLimit && Number.isSafeInteger(limit) && limit >= 0 ? String(limit) : p.add(limit);
}

/**
 * `Store.delete`: at most `limit` matching rows, oldest deadline first. The condition stands in
 * the outer WHERE too: a row that a concurrent write (a retry) moves out of it while the delete
 * waits for its lock is checked again there and kept; PostgreSQL re-checks only the outer WHERE
 * of a row it waited for, not the subquery that picked it.
 */
export function deleteStatement(table: string, cond: Condition, limit: number, keys: readonly KeyColumn[], d: Dialect): Statement {
  const p = new Params(d);
  const text = `DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${where(cond, keys, d, p)} ORDER BY ${ELIGIBLE_ORDER} LIMIT ${p.add(limit)}) AND ${where(cond, keys, d, p)}`;
  return { text, values: p.values };
}

/** `Store.find`. */
export function findStatement(table: string, cond: Partial<Condition>, limit: number | undefined, keys: readonly KeyColumn[], d: Dialect, columns: string): Statement {
  const p = new Params(d);
  const text = `SELECT ${columns} FROM ${table} AS t WHERE ${where(cond, keys, d, p)} ORDER BY ${ELIGIBLE_ORDER}${limit === undefined ? '' : ` LIMIT ${limitSql(limit, d, p)}`}`;
  return { text, values: p.values };
}

/** The column types of a dialect; `key` maps key field types to column types. */
export interface ColumnTypes {
  readonly id: string;
  readonly text: string;
  readonly json: string;
  readonly int: string;
  readonly bigint: string;
  readonly time: string;
  readonly key: Readonly<Record<KeyFieldType, string>>;
}

/** The column definitions of the items table (what goes between `CREATE TABLE t (` and `)`). */
export function tableColumns(keys: readonly KeyColumn[], t: ColumnTypes): string {
  return `
      id ${t.id}, ${keys.map((k) => `${k.sql} ${t.key[k.type]} NOT NULL`).join(', ')},
      status ${t.text} NOT NULL, stage ${t.text}, data ${t.json} NOT NULL, attempts ${t.int} NOT NULL DEFAULT 0, fence ${t.bigint} NOT NULL DEFAULT 0,
      owner ${t.text}, deadline ${t.time} NOT NULL, last_error ${t.text},
      created_at ${t.time} NOT NULL, updated_at ${t.time} NOT NULL, claimed_at ${t.time}, finished_at ${t.time}
    `;
}

/** The table and its indexes, each created if missing (SQLite). */
export function schemaStatements(table: string, index: (suffix: string) => string, keys: readonly KeyColumn[], types: ColumnTypes): string {
  return `
    CREATE TABLE IF NOT EXISTS ${table} (${tableColumns(keys, types)});
    CREATE UNIQUE INDEX IF NOT EXISTS ${index('key')} ON ${table} (${keys.map((k) => k.sql).join(', ')});
    CREATE INDEX IF NOT EXISTS ${index('status_deadline')} ON ${table} (status, deadline, id);`;
}

/**
 * `Store.insert` of the SQL stores: insert-if-absent, and on a conflict read what holds the key;
 * again where that item was deleted before the read (a purge in another process racing this
 * track), three times at most.
 */
export async function insertOrRead(store: string, key: KeyValues, insert: () => Promise<StoredItem | undefined>, read: () => Promise<StoredItem | undefined>): Promise<InsertResult> {
  for (let attempt = 1; ; attempt++) {
    const created = await insert();
    if (created) return { item: created, created: true };
    const existing = await read();
    if (existing) return { item: existing, created: false };
    if (attempt === 3) {
      throw new StoreError({
        operation: 'track',
        store,
        key,
        failure: 'transient',
        cause: new Error('the key was held by an item that was deleted again before it could be read, three times in a row (a purge or delete racing this track); nothing was created'),
      });
    }
  }
}
