/**
 * `MongoStore`: items in a MongoDB collection you pass in (the `mongodb` driver is a peer
 * dependency); store-clock time through `$$NOW`, majority writes by default.
 *
 * @module leasehold/mongodb
 */
import type { Collection, Document, Filter, WriteConcernSettings } from 'mongodb';
import { ConfigError } from '../errors.js';
import {
  guardCondition,
  type Change,
  type Condition,
  type GuardedUpdate,
  type InsertResult,
  type NewItem,
  type KeyValues,
  type Store,
  type StoreCapabilities,
  type StoreSchema,
  type StoredItem,
  type StoreStats,
  type UpdateOptions,
} from '../store.js';

/** The `Collection` methods MongoStore calls (a real `Collection` from the `mongodb` driver). */
export type MongoCollection = Pick<Collection<Document>, 'createIndex' | 'findOneAndUpdate' | 'updateMany' | 'find' | 'bulkWrite' | 'aggregate'>;

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
export interface MongoStoreOptions {
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
}

/** Fields leasehold owns in each document; key fields may not use these names. */
const SYSTEM_FIELDS = ['_id', 'status', 'data', 'attempts', 'fence', 'owner', 'deadline', 'lastError', 'createdAt', 'updatedAt', 'claimedAt', 'finishedAt', 'leaseholdOp'];
const ELIGIBLE_SORT = { deadline: 1, _id: 1 } as const;
const lit = (value: unknown) => ({ $literal: value });

/**
 * A store in one MongoDB collection through the official driver. Each single-item operation
 * is one `findOneAndUpdate` whose filter carries the guard and whose update is a pipeline
 * using `$$NOW`, so lease and backoff times come from the server's clock.
 *
 * @example
 * ```ts
 * const store = new MongoStore({ collection: client.db('fleet').collection('partner_log_trackers') });
 * ```
 */
export class MongoStore implements Store {
  readonly name = 'mongodb';
  /** Batches take a bounded number of commands (claims: 3, settles: 2), whatever their size. */
  readonly capabilities: StoreCapabilities = Object.freeze({ batchClaim: true, batchSettle: true });
  readonly #collection: MongoCollection;
  readonly #writeConcern: WriteConcernSettings;
  #keys: string[] | undefined;
  #op = 0;

  constructor(options: MongoStoreOptions) {
    const { collection, db } = options ?? {};
    if (typeof collection === 'string') {
      // validated rather than escaped: `$`, empty names and system collections are refused
      if (!/^(?!system\.)[A-Za-z0-9_][A-Za-z0-9_.-]{0,119}$/.test(collection)) {
        throw new ConfigError('collection', `[mongodb] expected a collection name of letters, digits, \`_\`, \`-\` and \`.\` (no \`$\`, not \`system.*\`), got \`${collection}\`.`);
      }
      if (!db || typeof db.collection !== 'function') {
        throw new ConfigError('db', '[mongodb] `collection` is a name, so `db` is required: `new MongoStore({ db, collection: name })`.');
      }
      this.#collection = db.collection(collection);
    } else if (collection && typeof collection.findOneAndUpdate === 'function') {
      this.#collection = collection;
    } else {
      throw new ConfigError('collection', '[mongodb] Missing required option `collection`: pass `db.collection(name)`, or `db` and a collection name.');
    }
    this.#writeConcern = Object.freeze({ w: 'majority', ...options.writeConcern });
  }

  async init(schema: StoreSchema): Promise<void> {
    const keys = schema.keyFields.map(({ name }) => {
      if (SYSTEM_FIELDS.includes(name) || name.includes('$') || name.includes('.')) {
        throw new ConfigError(`key.${name}`, `[mongodb] \`${name}\` cannot be a key field (reserved: ${SYSTEM_FIELDS.join(', ')}; no \`$\` or \`.\`).`);
      }
      return name;
    });
    await this.#collection.createIndex(Object.fromEntries(keys.map((k) => [k, 1])), { name: 'leasehold_key', unique: true });
    // one index serves claim-next (status, deadline order), backoff and reap alike
    await this.#collection.createIndex({ status: 1, deadline: 1, _id: 1 }, { name: 'leasehold_status_deadline' });
    this.#keys = keys;
  }

  async insert(item: NewItem): Promise<InsertResult> {
    const filter = this.#keyFilter(item.key);
    // fields are filled only where missing: an existing item is left exactly as it is
    const fill = (field: string, value: unknown) => ({ [field]: { $ifNull: [`$${field}`, value] } });
    const update = [
      {
        $set: {
          ...fill('status', lit(item.status)),
          ...fill('data', lit(item.data)),
          ...fill('attempts', 0),
          ...fill('fence', 0),
          ...fill('owner', null),
          ...fill('deadline', '$$NOW'),
          ...fill('lastError', null),
          ...fill('createdAt', '$$NOW'),
          ...fill('updatedAt', '$$NOW'),
          ...fill('claimedAt', null),
          ...fill('finishedAt', null),
        },
      },
    ];
    try {
      const result = await this.#collection.findOneAndUpdate(filter, update, {
        upsert: true,
        returnDocument: 'after',
        includeResultMetadata: true,
        writeConcern: this.#writeConcern,
      });
      return { item: this.#toItem(result.value!), created: result.lastErrorObject?.updatedExisting === false };
    } catch (error) {
      // two upserts raced on the unique key index: the other one created it
      if ((error as { code?: number }).code !== 11000) throw error;
      const [existing] = await this.find({ key: item.key }, { limit: 1 });
      return { item: existing!, created: false };
    }
  }

  async update(cond: Condition, change: Change, options: UpdateOptions = {}): Promise<StoredItem[]> {
    const filter = this.#filter(cond);
    if (options.limit === 1) {
      const doc = await this.#collection.findOneAndUpdate(filter, this.#pipeline(change), {
        returnDocument: 'after',
        writeConcern: this.#writeConcern,
        ...(options.ordered ? { sort: ELIGIBLE_SORT } : {}),
      });
      return doc ? [this.#toItem(doc)] : [];
    }
    let scoped: Filter<Document> = filter;
    if (options.limit !== undefined) {
      const ids = await this.#collection.find(filter, { sort: ELIGIBLE_SORT, limit: options.limit, projection: { _id: 1 } }).toArray();
      if (ids.length === 0) return [];
      // the guard is repeated: a document changed since the find no longer matches
      scoped = { $and: [{ _id: { $in: ids.map((d) => d._id) } }, filter] };
    }
    const op = this.#nextOp();
    await this.#collection.updateMany(scoped, this.#pipeline(change, op), { writeConcern: this.#writeConcern });
    return (await this.#byOp([op])).map((doc) => this.#toItem(doc));
  }

  async updateEach(updates: readonly GuardedUpdate[]): Promise<Array<StoredItem | null>> {
    if (updates.length === 0) return [];
    const ops = updates.map(() => this.#nextOp());
    await this.#collection.bulkWrite(
      updates.map(({ guard, change }, i) => ({ updateOne: { filter: this.#filter(guardCondition(guard)), update: this.#pipeline(change, ops[i]) } })),
      { ordered: false, writeConcern: this.#writeConcern },
    );
    // each update stamped its own op: the documents that carry it are the ones it changed
    const done = new Map((await this.#byOp(ops)).map((doc) => [doc.leaseholdOp as string, this.#toItem(doc)]));
    return ops.map((op) => done.get(op) ?? null);
  }

  async find(cond: Partial<Condition>, options: { limit?: number } = {}): Promise<StoredItem[]> {
    const docs = await this.#collection.find(this.#filter(cond), { sort: ELIGIBLE_SORT, ...(options.limit ? { limit: options.limit } : {}) }).toArray();
    return docs.map((doc) => this.#toItem(doc));
  }

  async stats(active: readonly string[]): Promise<StoreStats> {
    const isActive = { $in: ['$status', lit(active)] };
    const rows = await this.#collection
      .aggregate([
        {
          $group: {
            _id: '$status',
            n: { $sum: 1 },
            expired: { $sum: { $cond: [{ $and: [isActive, { $lte: ['$deadline', '$$NOW'] }] }, 1, 0] } },
            waiting: { $sum: { $cond: [{ $and: [{ $not: [isActive] }, { $gt: ['$deadline', '$$NOW'] }] }, 1, 0] } },
          },
        },
      ])
      .toArray();
    return {
      byStatus: Object.fromEntries(rows.map((r) => [r._id as string, r.n as number])),
      expired: rows.reduce((a, r) => a + (r.expired as number), 0),
      waiting: rows.reduce((a, r) => a + (r.waiting as number), 0),
    };
  }

  #filter(cond: Partial<Condition>): Filter<Document> {
    const filter: Document = cond.key ? this.#keyFilter(cond.key) : {};
    if (cond.status && cond.status.length > 0) filter.status = { $in: [...cond.status] };
    if (cond.fence !== undefined) filter.fence = cond.fence;
    if (cond.attempts) {
      filter.attempts = {
        ...(cond.attempts.gte !== undefined ? { $gte: cond.attempts.gte } : {}),
        ...(cond.attempts.lt !== undefined ? { $lt: cond.attempts.lt } : {}),
      };
    }
    if (cond.deadline === 'passed') filter.$expr = { $lte: ['$deadline', '$$NOW'] };
    if (cond.deadline === 'future') filter.$expr = { $gt: ['$deadline', '$$NOW'] };
    return filter;
  }

  #keyFilter(key: KeyValues): Document {
    // the Tracker already rejects non-scalars; a store used directly must not pass operators either
    const keys = this.#ready();
    return Object.fromEntries(
      keys.map((k) => {
        const value = key[k];
        const scalar = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || value instanceof Date;
        if (!scalar) throw new ConfigError(`key.${k}`, `[mongodb] key values must be scalars, got \`${typeof value}\`; operator objects are never sent.`);
        return [k, value];
      }),
    );
  }

  #pipeline(change: Change, op?: string): Document[] {
    const $set: Document = { status: lit(change.status), updatedAt: '$$NOW' };
    if (change.owner !== undefined) $set.owner = lit(change.owner);
    if (change.bumpFence) $set.fence = { $add: ['$fence', 1] };
    if (change.attempts === 'increment') Object.assign($set, { attempts: { $add: ['$attempts', 1] }, claimedAt: '$$NOW' });
    if (change.attempts === 'decrement') $set.attempts = { $max: [{ $subtract: ['$attempts', 1] }, 0] };
    if (change.attempts === 'reset') $set.attempts = 0;
    if (change.deadline) {
      const ms = 'ms' in change.deadline
        ? change.deadline.ms
        : { $ifNull: [{ $arrayElemAt: [lit(change.deadline.msByAttempts), '$attempts'] }, change.deadline.msByAttempts.at(-1) ?? 0] };
      $set.deadline = { $add: ['$$NOW', ms] };
    }
    if (change.data !== undefined) $set.data = lit(change.data);
    if (change.lastError !== undefined) $set.lastError = lit(change.lastError);
    if (change.finished !== undefined) $set.finishedAt = change.finished ? '$$NOW' : null;
    if (op) $set.leaseholdOp = op;
    return [{ $set }];
  }

  /** The documents the given ops changed (each update stamps `leaseholdOp`). */
  #byOp(ops: string[]): Promise<Document[]> {
    return this.#collection.find({ leaseholdOp: { $in: ops } }, { sort: ELIGIBLE_SORT }).toArray();
  }

  #nextOp(): string {
    return `${process.pid}:${Date.now().toString(36)}:${(this.#op++).toString(36)}:${Math.random().toString(36).slice(2, 8)}`;
  }

  #toItem(doc: Document): StoredItem {
    const keys = this.#ready();
    return {
      key: Object.fromEntries(keys.map((k) => [k, doc[k]])),
      status: doc.status,
      data: doc.data,
      attempts: doc.attempts,
      fence: doc.fence,
      owner: doc.owner ?? null,
      deadline: doc.deadline,
      lastError: doc.lastError ?? null,
      createdAt: doc.createdAt,
      updatedAt: doc.updatedAt,
      claimedAt: doc.claimedAt ?? null,
      finishedAt: doc.finishedAt ?? null,
    };
  }

  #ready(): string[] {
    if (!this.#keys) throw new Error('the store is not initialised; call `tracker.init()` first');
    return this.#keys;
  }
}
