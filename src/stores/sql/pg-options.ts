/**
 * The options of `PostgresStore` and the parts of `pg` it uses. Re-exported by
 * `leasehold/postgres`.
 * @module
 */

/** A result row as `pg` returns it. */
export type PgRow = Record<string, unknown>;

/** The part of a `pg` query result the store reads. */
export interface PgResult {
  /** The returned rows. */
  readonly rows: PgRow[];
  /** Rows changed (DELETE). */
  readonly rowCount?: number | null;
}

/** A parameterised query; `name` makes it a prepared statement, parsed once per connection. */
export interface PgQuery {
  /** The SQL, with `$1`, `$2`, ... placeholders. */
  readonly text: string;
  /** The bound values. */
  readonly values?: unknown[];
  /** The prepared statement's name. */
  readonly name?: string;
}

/**
 * The part of a `pg.Pool` (or `pg.Client`) the store uses: one parameterised query, and
 * `connect()` to lend one connection for `LISTEN`.
 */
export interface PgQueryable {
  /** Runs a query config (`pg` accepts `{ text, values, name }`). */
  query(query: PgQuery): Promise<PgResult>;
  /**
   * Checks a client out of the pool (`pg.Pool#connect`), used for one listening connection per
   * pool while workers run. Without it — or with a lone `pg.Client`, whose `connect` opens the
   * client itself — idle workers of this process only poll (the store still notifies other
   * processes).
   */
  connect?(): Promise<unknown>;
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
  /**
   * Run statements as named prepared statements (parsed and planned once per connection).
   * Turn off behind a pooler that does not keep prepared statements, such as PgBouncer in
   * transaction mode before 1.21.
   * @default true
   */
  readonly preparedStatements?: boolean;
  /**
   * Wake idle workers in every process at once with `LISTEN/NOTIFY`. A statement that makes an
   * item claimable (track, release, a failure that will be retried, an operator retry, a
   * completion into a status another stage claims from) also sends a `NOTIFY` on a channel
   * named after the table, in the same statement; while a worker of this process runs, one
   * connection of the pool listens (give the pool `max` ≥ 2; with `max: 1` or without
   * `pool.connect` this process only polls). `false`: no `NOTIFY`, no `LISTEN`: idle workers
   * poll (`pollMinMs`/`pollMaxMs`). `NOTIFY` does not work through PgBouncer in transaction
   * mode: point the pool at PostgreSQL directly, or turn this off.
   * @default true
   */
  readonly notifications?: boolean;
}
