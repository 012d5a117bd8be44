import { ConfigError } from '../../errors.js';
import type { KeyFieldType, KeyScalar, StoreSchema } from '../../store.js';
import { describe } from '../../validate.js';

/** The few things PostgreSQL and SQLite spell differently. */
export interface Dialect {
  /** Store name for messages. */
  readonly name: 'postgres' | 'sqlite';
  /** The placeholder of the n-th (1-based) parameter. */
  placeholder(n: number): string;
  /** The store's current time, in the deadline column's type. */
  readonly now: string;
  /** `now` plus a number of milliseconds given as a SQL expression. */
  plusMs(msExpr: string): string;
  /** An instant given as a bound parameter, in the deadline column's type. */
  at(placeholder: string): string;
  /** Converts an instant to a bound parameter. */
  timeParam(value: Date): unknown;
  /** Larger of two values. */
  readonly greatest: 'GREATEST' | 'MAX';
  /** A placeholder that carries a JSON document. */
  json(placeholder: string): string;
  /** Converts a key value to a bound parameter. */
  keyParam(type: KeyFieldType, value: KeyScalar): unknown;
  /** Converts a stored key value back. */
  keyValue(type: KeyFieldType, value: unknown): KeyScalar;
  /** Converts a stored time back (null stays null). */
  time(value: unknown): Date | null;
  /** Converts the stored data column back to its JSON value (dates still tagged). */
  jsonValue(value: unknown): unknown;
  /**
   * The ids of the first `limit` rows of `table` matching `where`, in eligible order, as a
   * filter on `id` that runs inside the update (claim-next).
   */
  pickIds(table: string, where: string, limit: string): string;
  /**
   * Write the limit of claim-next and `find` into the statement instead of binding it. PostgreSQL
   * plans a prepared statement once (a generic plan) only when that plan looks no costlier than
   * planning for each call's values; with `LIMIT $n` it never does (it assumes a large limit), so
   * every claim was planned again. A literal limit makes one plan per limit, reused.
   * @default false
   */
  readonly inlineLimit?: boolean;
  /**
   * The condition "this item has this key" where keys live apart from the items (PostgreSQL's key
   * table), given each key column with the placeholder of its value; `alias` prefixes the items
   * table's columns. Without it, the items table's key columns are compared.
   */
  readonly keyFilter?: (matches: ReadonlyArray<readonly [column: string, value: string]>, alias: string) => string;
  /**
   * A date key column as the store reads it back, in epoch milliseconds, where the column holds
   * finer times than a `Date` (PostgreSQL's microseconds): a lease's row, found by its id, is
   * then checked against the key the claim read, not against one a `Date` cannot hold.
   */
  readonly dateKeyAsRead?: (column: string) => string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Validates a table, schema or column name once; returns it double-quoted. */
export function quoteIdentifier(store: string, option: string, name: unknown): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) {
    throw new ConfigError(
      option,
      `[${store}] expected letters, digits and \`_\` (starting with a letter or \`_\`, at most 63 characters), got ${typeof name === 'string' ? `\`${name}\`` : describe(name)}. Names are validated rather than escaped so that no user string reaches SQL.`,
    );
  }
  return `"${name}"`;
}

/** A short, stable hash of a text (FNV-1a), for names cut to fit. */
export function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
}

/**
 * The name of something beside a table (an index, the key table): `<table>_<suffix>`. Past 63
 * characters the table's part is cut and a hash of the whole table name goes before the suffix,
 * so that long table names that share a beginning keep names of their own (and a 63-character
 * table name is never its own index's name).
 */
export function sideName(table: string, suffix: string): string {
  const full = `${table}_${suffix}`;
  if (full.length <= 63) return full;
  const h = hash(table);
  return `${table.slice(0, 61 - h.length - suffix.length)}_${h}_${suffix}`;
}

/**
 * The name earlier versions gave it: `<table>_<suffix>` cut at 63 characters, which two long
 * table names could share (and which for a table name of 63 characters is the table's own). Init
 * renames or replaces an index of that name on its own table.
 */
export function legacySideName(table: string, suffix: string): string {
  return `${table}_${suffix}`.slice(0, 63);
}

/** The column prefix of key fields: leasehold's own columns never start with it. */
export const KEY_PREFIX = 'key_';

/**
 * The key columns of a schema. Each key field lives in a column of its own named
 * `key_<field>`, so that any field name (`id`, `status`, `data`, ...) works beside leasehold's
 * columns.
 */
export function keyColumns(store: string, schema: StoreSchema): Array<{ name: string; type: KeyFieldType; sql: string; column: string }> {
  return schema.keyFields.map(({ name, type }) => ({ name, type, sql: quoteIdentifier(store, `key.${name}`, `${KEY_PREFIX}${name}`), column: `${KEY_PREFIX}${name}` }));
}
