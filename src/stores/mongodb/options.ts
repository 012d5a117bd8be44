/**
 * The options of `MongoStore` and the parts of the driver's `Collection` and `Db` it uses.
 * Re-exported by `leasehold/mongodb`.
 * @module
 */
import type { Collection, Document, ReadConcernLevel, ReadPreferenceLike, WriteConcernSettings } from 'mongodb';
import { ConfigError } from '../../errors.js';
import { describe } from '../../validate.js';
import type { MongoWatchOptions } from '../mongo-watcher.js';

/**
 * The `Collection` methods MongoStore calls (a real `Collection` from the `mongodb` driver);
 * without `watch`, idle workers poll; `init` reads `listIndexes`, where there is one, to create
 * only the indexes that are missing.
 */
export type MongoCollection = Pick<Collection<Document>, 'createIndex' | 'findOneAndUpdate' | 'find' | 'aggregate' | 'deleteMany' | 'distinct'> &
  Partial<Pick<Collection<Document>, 'watch' | 'namespace' | 'listIndexes'>>;

/** The part of a `Db` the store uses when given a collection name. */
export interface MongoDbLike {
  /** Opens a collection by name (the driver's `db.collection(name)`). */
  collection(name: string): MongoCollection;
}

/**
 * Options of {@link MongoStore}: a `Collection`, or a `Db` and a collection name.
 *
 * @example
 * ```ts
 * new MongoStore({ collection: db.collection('partner_log_trackers') });
 * new MongoStore({ db, collection: 'partner_log_trackers' });
 * ```
 */
export interface MongoStoreOptions extends MongoWatchOptions {
  /** The collection holding the items, or its name (then give `db`). */
  readonly collection: MongoCollection | string;
  /** The database, when `collection` is a name. */
  readonly db?: MongoDbLike;
  /**
   * Write concern of claims and transitions. The default makes a claim durable before a
   * worker starts: a claim rolled back in a primary failover could otherwise let a second
   * worker claim the same item.
   * @default { w: 'majority' }
   */
  readonly writeConcern?: WriteConcernSettings;
  /**
   * Read preference of reporting reads only (`tracker.get`, `find`, `stats`): dashboards may
   * read from secondaries. Every read that decides a transition (claim candidates, the reads
   * after a batch write, reap candidates, a lost lease's state) always goes to the primary.
   * @default 'primary'
   */
  readonly reportingReadPreference?: ReadPreferenceLike;
  /**
   * Read concern of reporting reads only. `majority` shows only hand-offs that no failover can
   * roll back, also when reading from a secondary. Reads that decide a transition use the
   * primary's newest state (`local`): each decision is re-checked by a guarded write, and a
   * majority snapshot, which lags the primary, would only hand them items already taken.
   * @default 'majority'
   */
  readonly reportingReadConcern?: ReadConcernLevel;
}

/**
 * The write concern of the store's writes. The driver takes a write concern given with a command
 * instead of the collection's (it does not merge them), so the collection's `wtimeoutMS` and
 * `journal` (from the connection string, say) are carried over; `w` is `'majority'` unless the
 * store's options say otherwise, and an unacknowledged `w: 0` is refused: a claim the server
 * does not answer hands out no lease, and its item sits held by no one until its lease expires.
 */
export function storeWriteConcern(collection: unknown, given: WriteConcernSettings | undefined): WriteConcernSettings {
  if (given !== undefined && (given === null || typeof given !== 'object' || Array.isArray(given))) {
    throw new ConfigError('writeConcern', `[mongodb] expected write concern settings such as \`{ w: 'majority', wtimeoutMS: 10_000 }\`, got ${describe(given)}.`);
  }
  if (given && (given.w === 0 || (given.w as unknown) === '0')) {
    throw new ConfigError('writeConcern', "[mongodb] `w: 0` (unacknowledged writes) cannot carry a claim: the store must read each write's answer. Use `w: 1` or `'majority'` (the default).");
  }
  const inherited = (collection as { writeConcern?: { wtimeoutMS?: unknown; journal?: unknown } } | null)?.writeConcern;
  return Object.freeze({
    ...(typeof inherited?.wtimeoutMS === 'number' ? { wtimeoutMS: inherited.wtimeoutMS } : {}),
    ...(typeof inherited?.journal === 'boolean' ? { journal: inherited.journal } : {}),
    w: 'majority',
    ...given,
  });
}
