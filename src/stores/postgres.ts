/**
 * `PostgresStore`: items in a PostgreSQL table, through a `pg.Pool` you pass in (`pg` is a peer
 * dependency); `FOR UPDATE SKIP LOCKED` claims and the server's `now()`.
 *
 * @module leasehold/postgres
 */
import { createHash } from 'node:crypto';
import { ConfigError, notInitialised } from '../errors.js';
import { describe, requireKnownOptions } from '../validate.js';
import type {
  Change,
  Condition,
  FindOptions,
  GuardedUpdate,
  InsertResult,
  NewItem,
  Returning,
  Store,
  StoreCapabilities,
  StoreChange,
  StoreSchema,
  StoredItem,
  StoreStats,
  UpdateEachOptions,
  UpdateOptions,
} from '../store.js';
import { deleteStatement, findStatement, insertOrRead, knownColumns, tableColumns, toItem, toOutcome, toSettleOutcome, updateStatement, type KeyColumn } from './sql/compile.js';
import { columnsOf, dialect, holdable, NOTIFY_PAYLOAD, OUTCOME_COLUMNS, PRIOR_DEADLINE, serverOf, SETTLE_COLUMNS, TYPES } from './sql/pg-dialect.js';
import { hash, keyColumns, legacySideName, quoteIdentifier, sideName, type Dialect } from './sql/dialect.js';
import { initFailure, initFrame } from './sql/pg-init.js';
import { insertWithKey, itemsTableStatements, keyFilter, keyTableStatements, renameLegacyIndex, type KeyTable } from './sql/pg-keys.js';
import { channelName, listen, type PgConnectable } from './sql/pg-listener.js';
import type { PgQueryable, PgRow, PostgresStoreOptions } from './sql/pg-options.js';
import { preparedElsewhere, unpreparedNotice } from './sql/pg-pooler.js';
import { settleStatement, statementsOf } from './sql/pg-settle.js';

export type { PgListenClient, PgNotification } from './sql/pg-listener.js';
export type { PgQuery, PgQueryable, PgResult, PgRow, PostgresStoreOptions } from './sql/pg-options.js';

/**
 * A store in one PostgreSQL table through `pg`. Every operation is one statement: claim-next
 * is `UPDATE … WHERE id = ANY(ARRAY(SELECT … FOR UPDATE SKIP LOCKED LIMIT n)) RETURNING *`, every
 * transition an `UPDATE … WHERE <guard> RETURNING *`, and times come from the server's `now()`.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * const store = new PostgresStore({ pool: new pg.Pool({ connectionString }), table: 'partner_log_trackers' });
 * ```
 */
export class PostgresStore implements Store {
  readonly name = 'postgres';
  /**
   * `postgres://<host>:<port>/<database>#<schema>.<table>` (see `Store.location`); absent where
   * the pool's server cannot be told for sure.
   */
  readonly location?: string;
  readonly capabilities: StoreCapabilities = Object.freeze({ batchClaim: true, batchSettle: true, priorDeadline: true });
  readonly #pool: PgQueryable;
  readonly #table: string;
  readonly #tableName: string;
  readonly #schema: string;
  /** The key table beside the items table (see `sql/pg-keys.ts`). */
  readonly #keyTable: KeyTable;
  /** The dialect, with lookups by key through the key table. */
  readonly #dialect: Dialect;
  #keys: KeyColumn[] | undefined;
  #returning: Record<Returning, string> = { item: '', state: '' };
  readonly #names = new Map<string, string>();
  /** Column lists by what they leave out (see `#columnsFor`). */
  readonly #columnLists = new Map<string, string>();
  #prepared: boolean;
  readonly #notifications: boolean;
  /** A lone `pg.Client` (or a client checked out of a pool), not a pool. */
  readonly #lone: boolean;
  readonly #channel: string;
  /** Statuses some stage claims from (of every tracker that initialised this store). */
  readonly #claimable = new Set<string>();

  /**
   * Calls `listener` when any process makes an item claimable in this table (see the
   * `notifications` option), and once after each (re)connection of the listening connection.
   * Absent when this process cannot listen.
   */
  readonly watch?: (listener: (change: StoreChange) => void) => () => void;

  constructor(options: PostgresStoreOptions) {
    requireKnownOptions('', options ?? null, ['pool', 'table', 'schema', 'preparedStatements', 'notifications'], { name: 'postgres', class: 'PostgresStore' });
    if (!options.pool || typeof options.pool.query !== 'function') {
      throw new ConfigError('pool', '[postgres] Missing required option `pool`: pass a `pg.Pool`.');
    }
    this.#pool = options.pool;
    this.#prepared = options.preparedStatements ?? true;
    if (typeof this.#prepared !== 'boolean') {
      throw new ConfigError('preparedStatements', `[postgres] expected \`true\` or \`false\`, got ${describe(options.preparedStatements)}.`);
    }
    this.#tableName = options.table;
    this.#schema = quoteIdentifier('postgres', 'schema', options.schema ?? 'public');
    this.#table = `${this.#schema}.${quoteIdentifier('postgres', 'table', options.table)}`;
    this.#keyTable = {
      items: this.#table,
      keys: `${this.#schema}.${this.#named('keys')}`,
      idIndex: this.#named('keys_id'),
      schema: this.#schema,
      oldKeyIndex: `${this.#schema}.${this.#named('key', true)}`,
    };
    this.#dialect = { ...dialect, keyFilter: keyFilter(this.#keyTable) };
    this.#notifications = options.notifications ?? true;
    if (typeof this.#notifications !== 'boolean') {
      throw new ConfigError('notifications', `[postgres] expected \`true\` or \`false\`, got ${describe(options.notifications)}.`);
    }
    this.#channel = channelName(this.#schema.slice(1, -1), options.table, hash);
    const server = serverOf(options.pool);
    if (server !== undefined) this.location = `postgres://${server}#${options.schema ?? 'public'}.${options.table}`;
    const pool = options.pool;
    // a pool of one connection would lend its only connection to LISTEN and starve the queries;
    // a lone `pg.Client` (or a client checked out of a pool) has a `connect` that opens itself
    const max = (pool as { options?: { max?: unknown } }).options?.max;
    this.#lone = 'connectionParameters' in pool;
    if (this.#notifications && typeof pool.connect === 'function' && max !== 1 && !this.#lone) {
      // one listening connection per pool: the registry is keyed by the pool object itself
      this.watch = (listener) => listen(pool as PgConnectable, this.#channel, listener);
    }
  }

  async init(schema: StoreSchema): Promise<void> {
    const keys = keyColumns('postgres', schema);
    const t = this.#table;
    const statusIndex = this.#named('status_deadline');
    const inTransaction = this.#lone && (this.#pool as { getTransactionStatus?: () => string | null }).getTransactionStatus?.() === 'T';
    const { open, close, undo } = initFrame(t, inTransaction);
    try {
      await this.#pool.query({
        text: `${open}
        ${renameLegacyIndex(this.#table, this.#schema, this.#named('status_deadline', true), statusIndex)}
        ${itemsTableStatements(t, tableColumns(keys, TYPES), statusIndex, this.#schema)}
        ${keyTableStatements(this.#keyTable, keys, keys.map((k) => TYPES.key[k.type]))}
        ${close}`,
      });
    } catch (error) {
      // a lone pg.Client stays in the failed transaction until told: without this, every later
      // statement on it is refused (a pool drops a client whose query failed by itself)
      if (this.#lone) await this.#pool.query({ text: undo }).catch(() => undefined);
      throw initFailure(t, error);
    }
    this.#keys = keys;
    this.#columnLists.clear();
    this.#returning = { item: columnsOf(keys, 'item'), state: columnsOf(keys, 'state') };
    for (const status of schema.claimable ?? []) this.#claimable.add(status);
  }

  async insert(item: NewItem): Promise<InsertResult> {
    const keys = this.#ready('insert');
    const { ctes, text, values } = insertWithKey(this.#keyTable, item, keys, this.#dialect, this.#returning.item);
    const statement = this.#claimable.has(item.status) ? this.#notifying(text, values, ctes) : `WITH ${ctes} ${text}`;
    // only a duplicate needs a second statement, to report what is stored
    return insertOrRead(
      'postgres',
      item.key,
      async () => {
        const [row] = await this.#run(statement, values);
        return row && toItem(row, keys, this.#dialect);
      },
      async () => (await this.find({ key: item.key }, { limit: 1 }))[0],
    );
  }

  async update(cond: Condition, change: Change, options: UpdateOptions = {}): Promise<StoredItem[]> {
    const keys = this.#ready('update');
    if (!holdable(cond.key)) return [];
    const tells = this.#tells(cond, change);
    // a settle reads only the outcome: a third of the columns to send, describe and decode
    const outcome = options.outcomeOnly === true;
    const columns = outcome ? OUTCOME_COLUMNS : this.#columnsFor(options.returning ?? 'item', change, tells);
    const prior = options.priorDeadline === true;
    const { text, values } = updateStatement(this.#table, `${this.#table} AS t`, cond, change, options, keys, this.#dialect, columns, prior ? PRIOR_DEADLINE : undefined);
    const rows = await this.#run(tells ? this.#notifying(text, values) : text, values);
    const items = rows.map((row) => (outcome ? toOutcome(row, dialect) : toItem(row, keys, dialect, change)));
    // Object.assign on the fresh item: `{ ...item, x }` takes V8 (Node 20) microseconds per object
    return prior ? items.map((item, i) => Object.assign(item, { priorDeadline: dialect.time(rows[i]!.prior_deadline)! })) : items;
  }

  async updateEach(updates: readonly GuardedUpdate[], options: UpdateEachOptions = {}): Promise<Array<StoredItem | null>> {
    const keys = this.#ready('updateEach');
    const results: Array<StoredItem | null> = updates.map(() => null);
    // a batch settle reads only where each item is now (see `SETTLE_COLUMNS`)
    const outcome = options.outcomeOnly === true;
    for (const indexes of statementsOf(updates)) {
      const batch = indexes.map((i) => updates[i]!);
      // a statement that makes items claimable notifies, and its results need their deadlines
      const tells = batch.some((u) => u.change.status !== undefined && this.#claimable.has(u.change.status));
      const known = !tells && batch.every((u) => u.change.status !== undefined);
      const columns = outcome ? SETTLE_COLUMNS[known ? 'id' : 'claimable'] : this.#returning[options.returning ?? 'item'];
      const { text, values } = settleStatement(this.#table, batch, columns);
      const rows = await this.#run(tells ? this.#notifying(text, values) : text, values);
      // each row answers the update of its id (a statement names a row once)
      const at = new Map<string, number>();
      for (const i of indexes) at.set(String(updates[i]!.guard.ref), i);
      for (const row of rows) {
        const i = at.get(String(row.id))!;
        results[i] = outcome ? toSettleOutcome(row, updates[i]!.change, dialect) : toItem(row, keys, dialect);
      }
    }
    return results;
  }

  async find(cond: Partial<Condition>, options: FindOptions = {}): Promise<StoredItem[]> {
    const keys = this.#ready('find');
    if (!holdable(cond.key)) return [];
    const { text, values } = findStatement(this.#table, cond, options.limit, keys, this.#dialect, this.#returning[options.returning ?? 'item']);
    return (await this.#run(text, values)).map((row) => toItem(row, keys, dialect));
  }

  async delete(cond: Condition, options: { limit: number }): Promise<number> {
    const keys = this.#ready('delete');
    if (!holdable(cond.key)) return 0;
    const { text, values } = deleteStatement(this.#table, cond, options.limit, keys, this.#dialect);
    return (await this.#send(text, values)).rowCount ?? 0;
  }

  async stats(): Promise<StoreStats> {
    this.#ready('stats');
    const rows = await this.#run(`SELECT status, count(*)::int AS n, count(*) FILTER (WHERE deadline > now())::int AS future FROM ${this.#table} GROUP BY status`, []);
    return { byStatus: Object.fromEntries(rows.map((r) => [r.status as string, { total: Number(r.n), future: Number(r.future) }])) };
  }

  /**
   * What an update returns: every column but those its change sets to known values (see
   * `knownColumns`; a claim's rows are a third narrower to send and decode). A notifying statement
   * keeps `status`, which its notification reads.
   */
  #columnsFor(returning: Returning, change: Change, tells: boolean): string {
    const known = knownColumns(change);
    if (tells) known.delete('status');
    const id = `${returning}:${[...known].join(',')}`;
    let columns = this.#columnLists.get(id);
    if (columns === undefined) {
      columns = columnsOf(this.#keys!, returning, known);
      this.#columnLists.set(id, columns);
    }
    return columns;
  }

  /**
   * Whether an update makes items claimable: it moves them into a status some stage claims
   * from, or moves the deadline of items waiting in one (a reschedule).
   */
  #tells(cond: Condition, change: Change): boolean {
    if (change.status !== undefined) return this.#claimable.has(change.status);
    return change.deadline !== undefined && cond.status.length > 0 && cond.status.every((s) => this.#claimable.has(s));
  }

  /**
   * Wraps a data-modifying statement so that it also sends the notification, in the same
   * statement (one round trip): `WITH changed AS (…) SELECT changed.*, pg_notify(…) FROM changed`;
   * `ctes`, the statement's own common table expressions, go first.
   * PostgreSQL delivers it when the statement commits, once per distinct payload.
   */
  #notifying(text: string, values: unknown[], ctes?: string): string {
    if (!this.#notifications) return ctes ? `WITH ${ctes} ${text}` : text;
    values.push([...this.#claimable]);
    return (
      `WITH ${ctes ? `${ctes}, ` : ''}changed AS (${text}) SELECT changed.*, CASE WHEN changed.status = ANY($${values.length}::text[]) ` +
      `THEN pg_notify('${this.#channel}', ${NOTIFY_PAYLOAD}) END AS leasehold_notify FROM changed`
    );
  }

  /** A name beside the table's (see `sideName`), quoted; `legacy`: as earlier versions cut it. */
  #named(suffix: string, legacy = false): string {
    return quoteIdentifier('postgres', 'table', (legacy ? legacySideName : sideName)(this.#tableName, suffix));
  }

  /** Runs a statement as a named prepared statement: parsed and planned once per connection. */
  async #run(text: string, values: unknown[]): Promise<PgRow[]> {
    return (await this.#send(text, values)).rows;
  }

  async #send(text: string, values: unknown[]): Promise<{ rows: PgRow[]; rowCount?: number | null }> {
    const name = this.#prepared ? this.#nameOf(text) : undefined;
    if (!name) return this.#pool.query({ text, values });
    try {
      return await this.#pool.query({ name, text, values });
    } catch (error) {
      if (!preparedElsewhere(error)) throw error;
      // refused at Parse or Bind, so nothing ran: send it again unnamed, and every statement after
      this.#unprepare(error);
      return this.#pool.query({ text, values });
    }
  }

  /** Named statements cannot work here (see {@link preparedElsewhere}): say so once, and send unnamed ones from now on. */
  #unprepare(error: unknown): void {
    if (!this.#prepared) return;
    this.#prepared = false;
    process.stderr.write(unpreparedNotice(this.#table, error));
  }

  /**
   * The prepared statement name of `text`, if it gets one: a hash of the whole text (128 bits), so
   * that every store on a pool, in any process, names a statement the same way and two different
   * statements never share a name (`pg` refuses a name it prepared for another text on that
   * connection). Hashed once per text.
   */
  #nameOf(text: string): string | undefined {
    let name = this.#names.get(text);
    // bounded: statement shapes are few, but `IN (...)` lists vary in length; past the bound
    // a statement simply runs unnamed
    if (!name && this.#names.size < 500) {
      name = `leasehold_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
      this.#names.set(text, name);
    }
    return name;
  }

  #ready(operation: string): KeyColumn[] {
    if (!this.#keys) throw notInitialised('postgres', operation);
    return this.#keys;
  }
}
