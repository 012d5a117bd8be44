import type { Change, Condition, KeyFieldType, NewItem, StoredItem, UpdateOptions } from '../../store.js';
import type { Dialect } from './dialect.js';

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
  readonly name: string;
  readonly type: KeyFieldType;
  /** The quoted column name. */
  readonly sql: string;
}

/** Compiles a condition to a WHERE clause body; every value is a bound parameter. */
export function where(cond: Partial<Condition>, keys: readonly KeyColumn[], d: Dialect, p: Params, alias = ''): string {
  const parts: string[] = [];
  if (cond.key) {
    for (const k of keys) parts.push(`${alias}${k.sql} = ${p.add(d.keyParam(k.type, cond.key[k.name]!))}`);
  }
  if (cond.status && cond.status.length > 0) parts.push(`${alias}status IN (${cond.status.map((s) => p.add(s)).join(', ')})`);
  if (cond.fence !== undefined) parts.push(`${alias}fence = ${p.add(cond.fence)}`);
  if (cond.attempts?.gte !== undefined) parts.push(`${alias}attempts >= ${p.add(cond.attempts.gte)}`);
  if (cond.attempts?.lt !== undefined) parts.push(`${alias}attempts < ${p.add(cond.attempts.lt)}`);
  if (cond.deadline === 'passed') parts.push(`${alias}deadline <= ${d.now}`);
  if (cond.deadline === 'future') parts.push(`${alias}deadline > ${d.now}`);
  return parts.length ? parts.join(' AND ') : 'TRUE';
}

/** Compiles a change to a SET list. Column references read the row before the update. */
export function set(change: Change, d: Dialect, p: Params): string {
  const parts = [`status = ${p.add(change.status)}`, `updated_at = ${d.now}`];
  if (change.owner !== undefined) parts.push(`owner = ${p.add(change.owner)}`);
  if (change.bumpFence) parts.push('fence = fence + 1');
  if (change.attempts === 'increment') parts.push('attempts = attempts + 1', `claimed_at = ${d.now}`);
  if (change.attempts === 'decrement') parts.push(`attempts = ${d.greatest}(attempts - 1, 0)`);
  if (change.attempts === 'reset') parts.push('attempts = 0');
  if (change.deadline) {
    if ('ms' in change.deadline) {
      parts.push(`deadline = ${d.plusMs(p.add(change.deadline.ms))}`);
    } else {
      // reaps keep attempts unchanged, so the old value indexes the table
      const table = change.deadline.msByAttempts;
      const cases = table.map((ms, attempts) => `WHEN ${p.add(attempts)} THEN ${p.add(ms)}`).join(' ');
      parts.push(`deadline = ${d.plusMs(`(CASE attempts ${cases} ELSE ${p.add(table.at(-1) ?? 0)} END)`)}`);
    }
  }
  if (change.data !== undefined) parts.push(`data = ${d.json(p.add(JSON.stringify(change.data)))}`);
  if (change.lastError !== undefined) parts.push(`last_error = ${p.add(change.lastError)}`);
  if (change.finished !== undefined) parts.push(`finished_at = ${change.finished ? d.now : 'NULL'}`);
  return parts.join(', ');
}

/** Maps a returned row to a stored item. */
export function toItem(row: Record<string, unknown>, keys: readonly KeyColumn[], d: Dialect): StoredItem {
  return {
    key: Object.fromEntries(keys.map((k) => [k.name, d.keyValue(k.type, row[k.name])])),
    status: row.status as string,
    data: d.data(row.data),
    attempts: Number(row.attempts),
    fence: Number(row.fence),
    owner: (row.owner as string | null) ?? null,
    deadline: d.time(row.deadline)!,
    lastError: (row.last_error as string | null) ?? null,
    createdAt: d.time(row.created_at)!,
    updatedAt: d.time(row.updated_at)!,
    claimedAt: d.time(row.claimed_at),
    finishedAt: d.time(row.finished_at),
  };
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
  const values = keys.map((k) => p.add(d.keyParam(k.type, item.key[k.name]!)));
  const text =
    `INSERT INTO ${target} (${keys.map((k) => k.sql).join(', ')}, status, data, deadline, created_at, updated_at) ` +
    `VALUES (${values.join(', ')}, ${p.add(item.status)}, ${d.json(p.add(JSON.stringify(item.data)))}, ${d.now}, ${d.now}, ${d.now}) ` +
    `ON CONFLICT DO NOTHING RETURNING ${returning}`;
  return { text, values: p.values };
}

/**
 * `Store.update`: one `UPDATE … WHERE <guard> RETURNING`. With a limit and no key it is
 * claim-next: the dialect picks the oldest eligible ids inside the same statement.
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
): Statement {
  const p = new Params(d);
  const assignments = set(change, d, p);
  const filter =
    cond.key || options.limit === undefined
      ? where(cond, keys, d, p)
      : d.pickIds(table, where(cond, keys, d, p), p.add(options.limit));
  return { text: `UPDATE ${target} SET ${assignments} WHERE ${filter} RETURNING ${returning}`, values: p.values };
}
