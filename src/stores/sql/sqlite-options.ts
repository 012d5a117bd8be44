/**
 * The options of `SqliteStore` and the part of better-sqlite3 it uses. Re-exported by
 * `leasehold/sqlite`.
 * @module
 */
import type Database from 'better-sqlite3';

/** The part of a better-sqlite3 `Database` the store uses. */
export type SqliteDatabase = Pick<Database.Database, 'prepare' | 'pragma' | 'exec' | 'transaction' | 'close'>;

/** Options of {@link SqliteStore}: give `filename` or an open `database`. */
export interface SqliteStoreOptions {
  /** Path of the database file; the file and its folder are created if missing. */
  readonly filename?: string;
  /**
   * An open better-sqlite3 database, instead of `filename`. Its pragmas are left as you set
   * them: for several processes on one file use `journal_mode = WAL`, and keep a `busy_timeout`
   * (better-sqlite3 sets 5000 ms on a new connection).
   */
  readonly database?: SqliteDatabase;
  /** The table holding the items. Letters, digits and `_`. */
  readonly table: string;
  /**
   * How long a writer waits for another process's write lock before failing (when the store
   * opens the file itself).
   * @default 5000
   */
  readonly busyTimeoutMs?: number;
  /**
   * While a worker of this process is idle, check this often whether another connection
   * committed to the file (`PRAGMA data_version`, a read of shared memory on a connection of
   * its own, one per file per process), and if so wake the worker to claim. Other processes'
   * work is then picked up within about this long instead of the next poll. `false`: idle
   * workers only poll (`pollMinMs`/`pollMaxMs`).
   * @default 15
   */
  readonly watchIntervalMs?: number | false;
}
