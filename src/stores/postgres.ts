import { ConfigError } from '../errors.js';
import type {
  Change,
  Condition,
  GuardedUpdate,
  InsertResult,
  NewItem,
  Store,
  StoreCapabilities,
  StoreSchema,
  StoredItem,
  StoreStats,
  UpdateOptions,
} from '../store.js';
import { ELIGIBLE_ORDER, Params, set, toItem, where, type KeyColumn } from './sql/compile.js';
import { keyColumns, quoteIdentifier, type Dialect } from './sql/dialect.js';

/** A result row as `pg` returns it. */
export type PgRow = Record<string, unknown>;
type Row = PgRow;

/** The part of a `pg` query result the store reads. */
export interface PgResult {
  /** The returned rows. */
  readonly rows: PgRow[];
}

/** The part of a `pg.Pool` (or `pg.Client`) the store uses: one parameterised query. */
export interface PgQueryable {
  /** Runs `text` with bound `values` (`$1`, `$2`, ...). */
  query(text: string, values?: unknown[]): Promise<PgResult>;
}

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions {
  /** A `pg.Pool` (recommended) or anything with its `query(text, values)`. */
  readonly pool: PgQueryable;
  /** The table holding the items. Letters, digits and `_`. */
  readonly table: string;
  /**
   * The schema of the table.
   * @default 'public'
   */
  readonly schema?: string;
}

const dialect: Dialect = {
  name: 'postgres',
  placeholder: (n) => `$${n}`,
  now: 'now()',
  plusMs: (ms) => `(now() + (${ms})::float8 * interval '1 millisecond')`,
  greatest: 'GREATEST',
  json: (p) => `${p}::jsonb`,
  keyParam: (_type, v) => v,
  keyValue: (_type, v) => v as string | number | boolean | Date,
  time: (v) => (v === null || v === undefined ? null : (v as Date)),
  data: (v) => v,
};

const COLUMN_TYPE = { string: 'text', number: 'double precision', boolean: 'boolean', date: 'timestamptz' } as const;

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
  readonly capabilities: StoreCapabilities = Object.freeze({ batchClaim: true, batchSettle: true });
  readonly #pool: PgQueryable;
  readonly #table: string;
  readonly #tableName: string;
  readonly #schema: string;
  #keys: KeyColumn[] | undefined;

  constructor(options: PostgresStoreOptions) {
    if (!options?.pool || typeof options.pool.query !== 'function') {
      throw new ConfigError('pool', '[postgres] Missing required option `pool`: pass a `pg.Pool`.');
    }
    this.#pool = options.pool;
    this.#tableName = options.table;
    this.#schema = quoteIdentifier('postgres', 'schema', options.schema ?? 'public');
    this.#table = `${this.#schema}.${quoteIdentifier('postgres', 'table', options.table)}`;
  }

  async init(schema: StoreSchema): Promise<void> {
    const keys = keyColumns('postgres', schema);
    const t = this.#table;
    const index = (suffix: string) => quoteIdentifier('postgres', 'table', `${this.#tableName}_${suffix}`.slice(0, 63));
    // one simple-protocol query: a transaction holding an advisory lock, so many processes
    // may run init at once (concurrent CREATE TABLE IF NOT EXISTS can otherwise collide)
    await this.#pool.query(`
      BEGIN;
      SELECT pg_advisory_xact_lock(hashtext('leasehold:' || '${t.replaceAll('"', '')}'));
      CREATE TABLE IF NOT EXISTS ${t} (
        id bigserial PRIMARY KEY, ${keys.map((k) => `${k.sql} ${COLUMN_TYPE[k.type]} NOT NULL`).join(', ')},
        status text NOT NULL, data jsonb NOT NULL, attempts integer NOT NULL DEFAULT 0, fence bigint NOT NULL DEFAULT 0,
        owner text, deadline timestamptz NOT NULL, last_error text,
        created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, claimed_at timestamptz, finished_at timestamptz
      );
      CREATE UNIQUE INDEX IF NOT EXISTS ${index('key')} ON ${t} (${keys.map((k) => k.sql).join(', ')});
      CREATE INDEX IF NOT EXISTS ${index('status_deadline')} ON ${t} (status, deadline, id);
      COMMIT;
    `);
    this.#keys = keys;
  }

  async insert(item: NewItem): Promise<InsertResult> {
    const keys = this.#ready();
    const p = new Params(dialect);
    const values = keys.map((k) => p.add(item.key[k.name]));
    const { rows } = await this.#pool.query(
      `INSERT INTO ${this.#table} (${keys.map((k) => k.sql).join(', ')}, status, data, deadline, created_at, updated_at) ` +
        `VALUES (${values.join(', ')}, ${p.add(item.status)}, ${p.add(JSON.stringify(item.data))}::jsonb, now(), now(), now()) ` +
        'ON CONFLICT DO NOTHING RETURNING *',
      p.values,
    );
    if (rows[0]) return { item: toItem(rows[0], keys, dialect), created: true };
    // only a duplicate needs a second statement, to report what is stored
    const [existing] = await this.find({ key: item.key }, { limit: 1 });
    return { item: existing!, created: false };
  }

  async update(cond: Condition, change: Change, options: UpdateOptions = {}): Promise<StoredItem[]> {
    const keys = this.#ready();
    const p = new Params(dialect);
    const assignments = set(change, dialect, p);
    let filter: string;
    if (cond.key || options.limit === undefined) {
      filter = where(cond, keys, dialect, p);
    } else {
      // claim-next: lock the oldest eligible rows, skipping rows other claimers hold; the lock
      // re-checks the condition against the newest row version. ARRAY(...) makes the subselect
      // an InitPlan run once, so the update is primary-key lookups whatever the planner thinks
      const inner = where(cond, keys, dialect, p);
      filter = `id = ANY(ARRAY(SELECT id FROM ${this.#table} WHERE ${inner} ORDER BY ${ELIGIBLE_ORDER} LIMIT ${p.add(options.limit)} FOR UPDATE SKIP LOCKED))`;
    }
    const { rows } = await this.#pool.query(`UPDATE ${this.#table} SET ${assignments} WHERE ${filter} RETURNING *`, p.values);
    return rows.map((row) => toItem(row, keys, dialect));
  }

  async updateEach(updates: readonly GuardedUpdate[]): Promise<Array<StoredItem | null>> {
    const keys = this.#ready();
    const results: Array<StoredItem | null> = updates.map(() => null);
    // one statement per shape of change (a completeBatch has one shape): bounded round trips
    const groups = new Map<string, number[]>();
    updates.forEach(({ change, cond }, i) => {
      const shape = JSON.stringify([change.owner !== undefined, change.bumpFence, change.attempts, change.deadline && 'ms' in change.deadline, change.data !== undefined, change.lastError !== undefined, change.finished, cond.status.length]);
      groups.set(shape, [...(groups.get(shape) ?? []), i]);
    });
    for (const indexes of groups.values()) {
      const rows = await this.#settleShape(keys, indexes.map((i) => updates[i]!), indexes);
      for (const row of rows) results[Number(row.leasehold_idx)] = toItem(row, keys, dialect);
    }
    return results;
  }

  async find(cond: Partial<Condition>, options: { limit?: number } = {}): Promise<StoredItem[]> {
    const keys = this.#ready();
    const p = new Params(dialect);
    const limit = options.limit === undefined ? '' : ` LIMIT ${p.add(options.limit)}`;
    const { rows } = await this.#pool.query(`SELECT * FROM ${this.#table} WHERE ${where(cond, keys, dialect, p)} ORDER BY ${ELIGIBLE_ORDER}${limit}`, p.values);
    return rows.map((row) => toItem(row, keys, dialect));
  }

  async stats(active: readonly string[]): Promise<StoreStats> {
    this.#ready();
    const { rows } = await this.#pool.query(
      'SELECT status, count(*)::int AS n, ' +
        'count(*) FILTER (WHERE status = ANY($1::text[]) AND deadline <= now())::int AS expired, ' +
        `count(*) FILTER (WHERE NOT (status = ANY($1::text[])) AND deadline > now())::int AS waiting FROM ${this.#table} GROUP BY status`,
      [active],
    );
    return {
      byStatus: Object.fromEntries(rows.map((r) => [r.status as string, r.n as number])),
      expired: rows.reduce((a, r) => a + (r.expired as number), 0),
      waiting: rows.reduce((a, r) => a + (r.waiting as number), 0),
    };
  }

  /** Settles updates of one shape in one `UPDATE … FROM (VALUES …)`, each row under its own guard. */
  async #settleShape(keys: KeyColumn[], updates: GuardedUpdate[], indexes: number[]): Promise<Row[]> {
    const p = new Params(dialect);
    const first = updates[0]!.change;
    const columns = ['idx', ...keys.map((k) => `k_${k.name}`), 'fence', 'from_status', 'to_status', 'owner', 'delay_ms', 'data', 'last_error'];
    const tuples = updates.map(({ cond, change }, row) => {
      const values = [
        `${p.add(indexes[row])}::int`,
        ...keys.map((k) => `${p.add(cond.key[k.name])}::${COLUMN_TYPE[k.type]}`),
        `${p.add(cond.fence ?? null)}::bigint`,
        `${p.add(cond.status[0])}::text`,
        `${p.add(change.status)}::text`,
        `${p.add(change.owner ?? null)}::text`,
        `${p.add(change.deadline && 'ms' in change.deadline ? change.deadline.ms : null)}::float8`,
        `${p.add(change.data === undefined ? null : JSON.stringify(change.data))}::jsonb`,
        `${p.add(change.lastError ?? null)}::text`,
      ];
      return `(${values.join(', ')})`;
    });
    const assign = ['status = v.to_status', 'updated_at = now()'];
    if (first.owner !== undefined) assign.push('owner = v.owner');
    if (first.bumpFence) assign.push('fence = t.fence + 1');
    if (first.attempts === 'increment') assign.push('attempts = t.attempts + 1', 'claimed_at = now()');
    if (first.attempts === 'decrement') assign.push('attempts = GREATEST(t.attempts - 1, 0)');
    if (first.attempts === 'reset') assign.push('attempts = 0');
    if (first.deadline) {
      if (!('ms' in first.deadline)) throw new ConfigError('deadline', '[postgres] `updateEach` takes fixed delays only.');
      assign.push("deadline = now() + v.delay_ms * interval '1 millisecond'");
    }
    if (first.data !== undefined) assign.push('data = v.data');
    if (first.lastError !== undefined) assign.push('last_error = v.last_error');
    if (first.finished !== undefined) assign.push(`finished_at = ${first.finished ? 'now()' : 'NULL'}`);
    const guard = [...keys.map((k) => `t.${k.sql} = v."k_${k.name}"`), 't.status = v.from_status', '(v.fence IS NULL OR t.fence = v.fence)'];
    const { rows } = await this.#pool.query(
      `UPDATE ${this.#table} AS t SET ${assign.join(', ')} FROM (VALUES ${tuples.join(', ')}) AS v(${columns.map((c) => `"${c}"`).join(', ')}) ` +
        `WHERE ${guard.join(' AND ')} RETURNING v.idx AS leasehold_idx, t.*`,
      p.values,
    );
    return rows;
  }

  #ready(): KeyColumn[] {
    if (!this.#keys) throw new Error('the store is not initialised; call `tracker.init()` first');
    return this.#keys;
  }
}
