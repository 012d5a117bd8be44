import { ConfigError } from '../../errors.js';
import type { KeyFieldType, KeyScalar, StoreSchema } from '../../store.js';

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
  /** Converts stored JSON back. */
  data(value: unknown): unknown;
  /**
   * The ids of the first `limit` rows of `table` matching `where`, in eligible order, as a
   * filter on `id` that runs inside the update (claim-next).
   */
  pickIds(table: string, where: string, limit: string): string;
}

/** Columns leasehold owns; key fields may not use these names. */
export const SYSTEM_COLUMNS = [
  'id',
  'status',
  'data',
  'attempts',
  'fence',
  'owner',
  'deadline',
  'last_error',
  'created_at',
  'updated_at',
  'claimed_at',
  'finished_at',
] as const;

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Validates a table, schema or column name once; returns it double-quoted. */
export function quoteIdentifier(store: string, option: string, name: unknown): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name)) {
    throw new ConfigError(
      option,
      `[${store}] expected letters, digits and \`_\` (starting with a letter or \`_\`, at most 63 characters), got \`${String(name)}\`. Names are validated rather than escaped so that no user string reaches SQL.`,
    );
  }
  return `"${name}"`;
}

/** The key columns of a schema, validated against the system column names. */
export function keyColumns(store: string, schema: StoreSchema): Array<{ name: string; type: KeyFieldType; sql: string }> {
  return schema.keyFields.map(({ name, type }) => {
    if ((SYSTEM_COLUMNS as readonly string[]).includes(name.toLowerCase())) {
      throw new ConfigError(`key.${name}`, `[${store}] \`${name}\` is a column leasehold uses itself (${SYSTEM_COLUMNS.join(', ')}); rename the key field.`);
    }
    return { name, type, sql: quoteIdentifier(store, `key.${name}`, name) };
  });
}
