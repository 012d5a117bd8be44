/**
 * PostgreSQL's dialect for the SQL compiler, and how `PostgresStore` reads rows back: the
 * columns it returns (each in a type no application-wide `pg` type parser changes), their
 * decoding, the column types it creates, and the notification payload. Internal.
 * @module
 */
import type { KeyFieldType, KeyScalar, KeyValues, Returning } from '../../store.js';
import { MIN_STORE_DATE_MS } from '../../validate.js';
import { STATE_COLUMNS, TIME_COLUMNS, type KeyColumn } from './compile.js';
import type { Dialect } from './dialect.js';

/**
 * A key value as read back: date keys come as epoch milliseconds, as times do (see `columnsOf`); a
 * number or boolean may come as text where the application parses double precision or boolean
 * its own way (`pg.types.setTypeParser`).
 */
function keyValue(type: KeyFieldType, v: unknown): KeyScalar {
  if (type === 'date') return new Date(Number(v));
  if (type === 'number' && typeof v !== 'number') return Number(v);
  if (type === 'boolean' && typeof v !== 'boolean') return v === 't' || v === 'true';
  return v as string | number | boolean;
}

/** What `pg` resolves a pool's or client's options to (environment variables and defaults included). */
interface PgConnectionParameters {
  readonly host?: unknown;
  readonly port?: unknown;
  readonly database?: unknown;
}

/**
 * `host:port/database` of the server a `pg.Pool` or `pg.Client` talks to, resolved as `pg` does
 * (never its user or password), or `undefined` where it cannot be told for sure (an object of
 * another kind, no database named): then the store's items are its own object's.
 */
export function serverOf(pool: unknown): string | undefined {
  const p = pool as { connectionParameters?: PgConnectionParameters; Client?: new (options: unknown) => { connectionParameters?: PgConnectionParameters }; options?: unknown };
  let params = p.connectionParameters;
  if (!params && typeof p.Client === 'function' && p.options !== null && typeof p.options === 'object') {
    try {
      // a client object is made, never connected: its parameters are what a connection would use
      params = new p.Client(p.options).connectionParameters;
    } catch {
      return undefined;
    }
  }
  const { host, port, database } = params ?? {};
  if (typeof host !== 'string' || host === '' || typeof database !== 'string' || database === '') return undefined;
  return `${host}:${String(port)}/${database}`;
}

/**
 * A Date as timestamptz text in UTC (years before 1 as BC, after 9999 with more digits), as `pg`
 * writes Dates only under its process-wide `parseInputDatesAsUTC`. Left to `pg`, a Date goes as
 * local time, and in a time zone whose offset then had seconds (local mean time: Paris before
 * 1911, Monrovia before 1972) the text is off by those seconds: one date key made another item
 * in each process's zone.
 */
export function utcText(date: Date): string {
  const year = date.getUTCFullYear();
  const two = (n: number) => String(n).padStart(2, '0');
  return (
    `${String(year > 0 ? year : 1 - year).padStart(4, '0')}-${two(date.getUTCMonth() + 1)}-${two(date.getUTCDate())}` +
    `T${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}.${String(date.getUTCMilliseconds()).padStart(3, '0')}+00:00${year > 0 ? '' : ' BC'}`
  );
}

/**
 * Whether PostgreSQL can hold `key` at all: no NUL in its text, no date before 4714-11-24 BC. A
 * key it cannot hold names no item (tracking one is refused on every store), so a look-up by it
 * finds nothing, where sending it failed with the server's encoding or range error. Other stores
 * may hold such a key from before it was refused, and find it.
 */
export function holdable(key: KeyValues | undefined): boolean {
  if (key === undefined) return true;
  for (const value of Object.values(key)) {
    if (typeof value === 'string' && value.includes('\0')) return false;
    if (value instanceof Date && value.getTime() < MIN_STORE_DATE_MS) return false;
  }
  return true;
}

export const dialect: Dialect = {
  name: 'postgres',
  placeholder: (n) => `$${n}`,
  now: 'now()',
  plusMs: (ms) => `(now() + (${ms})::float8 * interval '1 millisecond')`,
  at: (p) => `${p}::timestamptz`,
  timeParam: (v) => utcText(v),
  greatest: 'GREATEST',
  json: (p) => `${p}::jsonb`,
  keyParam: (type, v) => (type === 'date' ? utcText(v as Date) : v),
  keyValue,
  // times come back as epoch milliseconds (see RETURNING): cheaper to read than timestamptz text
  time: (v) => (v === null || v === undefined ? null : new Date(Number(v))),
  // data comes back as text (see `columnsOf`), parsed here as pg's own jsonb parser would
  jsonValue: (v) => (typeof v === 'string' ? JSON.parse(v) : v),
  // lock the oldest eligible rows, skipping rows other claimers hold; the lock re-checks the
  // condition against the newest row version. ARRAY(...) makes the subselect an InitPlan run
  // once, so the update is primary-key lookups whatever the planner thinks
  pickIds: (table, where, limit) => `id = ANY(ARRAY(SELECT id FROM ${table} WHERE ${where} ORDER BY deadline, id LIMIT ${limit} FOR UPDATE SKIP LOCKED))`,
  inlineLimit: true,
  // as `asMs` reads it, truncated as a Date made from it is (a hand-made row may hold microseconds)
  dateKeyAsRead: (column) => `trunc(round(date_part('epoch', ${column}) * 1000000) / 1000)`,
};

// the payload of a notification: `<ms until claimable>:<status>`, measured by the server so that
// clock skew between machines does not move the wake-up; identical payloads of one transaction
// are delivered once, so a batch of items due now costs one notification
export const NOTIFY_PAYLOAD = `GREATEST(0, ceil(changed.deadline - (extract(epoch from now()) * 1000)::float8))::bigint || ':' || changed.status`;

const COLUMN_TYPE = { string: 'text', number: 'double precision', boolean: 'boolean', date: 'timestamptz' } as const;
export const TYPES = { id: 'bigserial PRIMARY KEY', text: 'text', json: 'jsonb', int: 'integer', bigint: 'bigint', time: 'timestamptz', key: COLUMN_TYPE } as const;
// times as epoch milliseconds: parsing a float is far cheaper than parsing timestamptz text.
// date_part is float8 arithmetic (extract is numeric, slower); rounding to whole microseconds
// first makes the division exact, so a time on a millisecond never reads back a hair before it
const asMs = (c: string, from = 't') => `round(date_part('epoch', ${from}.${c}) * 1000000) / 1000 AS ${c}`;
/** The deadline before an update asked for `priorDeadline` (see `updateStatement`). */
export const PRIOR_DEADLINE = asMs('prior_deadline', 'prior');
/** The columns of an `outcomeOnly` settle (see {@link ItemOutcome}, and `columnsOf` for `id`). */
export const OUTCOME_COLUMNS = `t.id::text AS id, t.status, t.fence, ${asMs('deadline')}, ${asMs('updated_at')}`;
/**
 * The columns of an `outcomeOnly` batch settle (see `SettleOutcome`): the id alone where every row
 * moves into a status no stage claims from (the usual completion: nobody reads its deadline), else
 * also the status and the deadline (which a notifying statement's payload reads too).
 */
export const SETTLE_COLUMNS = { id: 't.id::text AS id', claimable: `t.id::text AS id, t.status, ${asMs('deadline')}` } as const;

/**
 * The RETURNING / SELECT list for `returning`, without the columns in `omit`. Every column comes
 * back in a type whose parser no application changes: times and date key fields as epoch
 * milliseconds (double precision; a float is also far cheaper to parse than timestamptz text),
 * `id` and `data` as text (parsed by the store: see `dialect.jsonValue`). A type parser the
 * application sets for the whole process (`pg.types.setTypeParser` for timestamptz, jsonb or
 * int8) would otherwise change what every item reads back as, and items would fail their schema.
 * The fence is read with `Number()`, which takes a BigInt too.
 */
export function columnsOf(keys: readonly KeyColumn[], returning: Returning, omit?: ReadonlySet<string>): string {
  const state = STATE_COLUMNS.filter((c) => !omit?.has(c)).map((c) => (TIME_COLUMNS.has(c) ? asMs(c) : c === 'id' ? 't.id::text AS id' : `t.${c}`));
  const key = keys.map((k) => (k.type === 'date' ? asMs(k.sql) : `t.${k.sql}`));
  return [...state, ...key, ...(returning === 'item' ? ['t.data::text AS data'] : [])].join(', ');
}

/**
 * How long init's schema work waits for a lock on a table (to create what is missing) before it
 * gives up. A create that must wait (behind a VACUUM or an open write) would otherwise hold every
 * claim and settle of the running workers queued behind its own lock request.
 */
export const INIT_LOCK_TIMEOUT_MS = 3_000;
/**
 * How long init waits for another process's init (its advisory lock), whatever the role's
 * `lock_timeout`: long enough for a migration of a large table (a key table filled, an index built).
 */
export const INIT_PEER_TIMEOUT_MS = 600_000;
