/**
 * `MongoStore`: items in a MongoDB collection you pass in (the `mongodb` driver is a peer
 * dependency); store-clock time through `$$NOW`, majority writes by default.
 *
 * @module leasehold/mongodb
 */
import type { Document, Filter, ReadConcernLevel, ReadPreferenceLike, WriteConcernSettings } from 'mongodb';
import { ConfigError, notInitialised } from '../errors.js';
import { requireKnownOptions } from '../validate.js';
import {
  guardCondition,
  type Change,
  type Condition,
  type FindOptions,
  type GuardedUpdate,
  type InsertResult,
  type NewItem,
  type Returning,
  type Store,
  type StoreCapabilities,
  type StoreChange,
  type StoreSchema,
  type StoredItem,
  type StoreStats,
  type UpdateOptions,
} from '../store.js';
import { rewatch, sharedCollection, storeWatch } from './mongo-watcher.js';
import { ensureIndexes } from './mongodb/key-index.js';
import { storeWriteConcern, type MongoCollection, type MongoStoreOptions } from './mongodb/options.js';
import { failedUpdateOutcome } from './mongodb/recover.js';
import { insertPipeline, keyFilter, mayMatch, toFilter, toStoredItem, toUpdatedItem, updatePipeline } from './mongodb/translate.js';
export type { MongoWatchOptions } from './mongo-watcher.js';
export type { MongoCollection, MongoDbLike, MongoStoreOptions } from './mongodb/options.js';

const ELIGIBLE_SORT = { deadline: 1, _id: 1 } as const;
/**
 * Reads that decide a transition: the primary's newest state, whatever the client's defaults (a
 * `readConcernLevel=majority` in the connection string would otherwise make them read a majority
 * snapshot, which lags the primary).
 */
const DECIDE = { readPreference: 'primary', readConcern: { level: 'local' } } as const;
/** Times an insert-if-absent is sent again when the item that refused it was deleted before it could be read. */
const INSERT_TRIES = 3;
/** Items per claim window: one find of candidate ids, then one guarded findOneAndUpdate per id. */
const WINDOW = 500;
/**
 * A cursor that returns up to `n` documents in its first reply and closes itself: without a
 * `batchSize` a server answers 101 documents first and the rest costs a `getMore`.
 */
const upTo = (n: number) => ({ limit: n, batchSize: n });
/** Fields a `returning: 'state'` read leaves out. */
const STATE_PROJECTION = { data: 0 } as const;

/**
 * A store in one MongoDB collection through the official driver. Each single-item operation
 * is one `findOneAndUpdate` whose filter carries the guard and whose update is a pipeline
 * using `$$NOW`, so lease and backoff times come from the server's clock. Key fields live in
 * a `key` subdocument, so any key field name works beside leasehold's own fields.
 *
 * @example
 * ```ts
 * const store = new MongoStore({ collection: client.db('fleet').collection('partner_log_trackers') });
 * ```
 */
export class MongoStore implements Store {
  readonly name = 'mongodb';
  /** `mongodb://<hosts>/<db>.<collection>` (see `Store.location`); absent where the collection does not say. */
  readonly location?: string;
  /** Batches take a bounded number of commands per round of claiming or settling. */
  readonly capabilities: StoreCapabilities = Object.freeze({ batchClaim: true, batchSettle: true, priorDeadline: true });
  readonly #collection: MongoCollection;
  readonly #writeConcern: WriteConcernSettings;
  readonly #reporting: { readPreference: ReadPreferenceLike; readConcern: { level: ReadConcernLevel } };
  #keys: string[] | undefined;
  /** Statuses some stage claims from (of every tracker that initialised this store). */
  readonly #claimable = new Set<string>();
  /** Calls `listener` when any process makes an item claimable here (see `changeStreams`); absent without `collection.watch`. */
  readonly watch?: (listener: (change: StoreChange) => void) => () => void;

  constructor(options: MongoStoreOptions) {
    requireKnownOptions('', options ?? null, ['collection', 'db', 'writeConcern', 'reportingReadPreference', 'reportingReadConcern', 'changeStreams', 'logger'], { name: 'mongodb', class: 'MongoStore' });
    const { collection, db } = options;
    if (typeof collection === 'string') {
      // validated rather than escaped: `$`, empty names and system collections are refused
      if (!/^(?!system\.)[A-Za-z0-9_][A-Za-z0-9_.-]{0,119}$/.test(collection)) {
        throw new ConfigError('collection', `[mongodb] expected a collection name of letters, digits, \`_\`, \`-\` and \`.\` (no \`$\`, not \`system.*\`), got \`${collection}\`.`);
      }
      if (!db || typeof db.collection !== 'function') {
        throw new ConfigError('db', '[mongodb] `collection` is a name, so `db` is required: `new MongoStore({ db, collection: name })`.');
      }
      this.#collection = sharedCollection(db, collection);
    } else if (collection && typeof collection.findOneAndUpdate === 'function') {
      this.#collection = collection;
    } else {
      throw new ConfigError('collection', '[mongodb] Missing required option `collection`: pass `db.collection(name)`, or `db` and a collection name.');
    }
    // the namespace on the client's SRV name or hosts (never its credentials); absent where
    // neither is known. An SRV client's hosts are resolved at connect: its SRV name is stable
    const { namespace, client } = this.#collection as { namespace?: unknown; client?: { options?: { hosts?: unknown; srvHost?: unknown } } };
    const { hosts, srvHost } = client?.options ?? {};
    if (typeof namespace === 'string') {
      if (typeof srvHost === 'string' && srvHost) this.location = `mongodb+srv://${srvHost}/${namespace}`;
      else if (Array.isArray(hosts) && hosts.length > 0) this.location = `mongodb://${hosts.map(String).sort().join(',')}/${namespace}`;
    }
    this.#writeConcern = storeWriteConcern(this.#collection, options.writeConcern);
    this.#reporting = Object.freeze({ readPreference: options.reportingReadPreference ?? 'primary', readConcern: { level: options.reportingReadConcern ?? 'majority' } });
    const watch = storeWatch(this.#collection, this.#claimable, options);
    if (watch) this.watch = watch;
  }

  async init(schema: StoreSchema): Promise<void> {
    const keys = schema.keyFields.map(({ name }) => name);
    await ensureIndexes(this.#collection, keys);
    this.#keys = keys;
    for (const status of schema.claimable ?? []) this.#claimable.add(status);
    rewatch(this.#collection);
  }

  async insert(item: NewItem): Promise<InsertResult> {
    const filter = keyFilter(item.key, this.#ready('insert'));
    const update = insertPipeline(item);
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.#collection.findOneAndUpdate(filter, update, {
          upsert: true,
          returnDocument: 'after',
          includeResultMetadata: true,
          writeConcern: this.#writeConcern,
        });
        if (!result.value) throw new Error('the server answered the upsert without the item (an unacknowledged write?)');
        return { item: toStoredItem(this.#ready('read'), result.value), created: result.lastErrorObject?.updatedExisting === false };
      } catch (error) {
        // two upserts raced on the unique key index: the other one created the item. Sent again,
        // the upsert matches it and changes nothing, and its write concern waits for that item's
        // write too (a read would report an item a failover could still roll back); an item
        // purged meanwhile is created. A clash that outlasts the retries is on another unique
        // index, and the server's error names it
        if ((error as { code?: number }).code !== 11000 || attempt === INSERT_TRIES) throw error;
      }
    }
  }

  async update(cond: Condition, change: Change, options: UpdateOptions = {}): Promise<StoredItem[]> {
    this.#ready('update');
    const filter = this.#filter(cond);
    const projection = options.returning === 'state' ? STATE_PROJECTION : undefined;
    const prior = options.priorDeadline === true;
    const pipeline = updatePipeline(change, prior);
    if (options.limit === 1 || cond.key || cond.ref !== undefined) {
      const doc = await this.#collection.findOneAndUpdate(filter, pipeline, {
        returnDocument: 'after',
        writeConcern: this.#writeConcern,
        ...(options.ordered ? { sort: ELIGIBLE_SORT } : {}),
        ...(projection ? { projection } : {}),
      });
      return doc ? [toUpdatedItem(this.#ready('read'), doc, prior)] : [];
    }
    const limit = options.limit ?? Number.POSITIVE_INFINITY;
    const taken: StoredItem[] = [];
    // a window of candidate ids, then one guarded findOneAndUpdate per id, sent at once: each
    // answer is exactly what its own update did (a later write by another client can never be
    // mistaken for the batch's), an id another claimer took meanwhile no longer matches, and the
    // next window skips past it, so concurrent batch claimers each get their share.
    // Windows only move forward: the next one starts after the last candidate in eligible order,
    // and leaves out by _id what this call took that may still match and moved past that point,
    // so a change that leaves items matching (a bumped fence) never takes one twice
    let after: Document | undefined;
    const skip: unknown[] = [];
    for (let rounds = 0; taken.length < limit && rounds < 64; rounds++) {
      const want = Math.min(limit - taken.length, WINDOW);
      const parts = [filter, ...(after ? [after] : []), ...(skip.length > 0 ? [{ _id: { $nin: skip } }] : [])];
      const window = parts.length === 1 ? filter : { $and: parts };
      const candidates = await this.#collection.find(window, { sort: ELIGIBLE_SORT, ...upTo(want), projection: { _id: 1, deadline: 1 }, ...DECIDE }).toArray();
      if (candidates.length === 0) break;
      const last = candidates.at(-1)!;
      const at = last.deadline instanceof Date ? last.deadline : undefined;
      if (at) after = { $or: [{ deadline: { $gt: at } }, { deadline: at, _id: { $gt: last._id } }] };
      const ids = candidates.map((d) => d._id);
      const results = await Promise.allSettled(
        ids.map((_id) =>
          this.#collection.findOneAndUpdate({ $and: [{ _id }, filter] }, pipeline, {
            returnDocument: 'after',
            writeConcern: this.#writeConcern,
            ...(projection ? { projection } : {}),
          }),
        ),
      );
      let interrupted: unknown;
      for (const r of results) {
        if (r.status === 'rejected') interrupted ??= r.reason;
        else if (r.value) {
          taken.push(toUpdatedItem(this.#ready('read'), r.value, prior));
          const moved = !(at && r.value.deadline instanceof Date && r.value.deadline < at);
          if (moved && mayMatch(cond, r.value)) skip.push(r.value._id);
        }
      }
      if (interrupted !== undefined) {
        // a failover can stop some of them: what was claimed is returned rather than held by
        // nobody until the leases expire. Any other update (an operator's `retryAll`) says it
        // failed: a short answer would read as "no more items", and the rest would stay behind
        if (taken.length === 0 || change.owner === undefined) throw interrupted;
        break;
      }
      if (ids.length < want) break;
    }
    return taken;
  }

  async updateEach(updates: readonly GuardedUpdate[], options: { returning?: Returning } = {}): Promise<Array<StoredItem | null>> {
    this.#ready('updateEach');
    const projection = options.returning === 'state' ? STATE_PROJECTION : undefined;
    const send = async ({ guard, change }: GuardedUpdate) =>
      this.#collection.findOneAndUpdate(this.#filter(guardCondition(guard)), updatePipeline(change), {
        returnDocument: 'after',
        writeConcern: this.#writeConcern,
        ...(projection ? { projection } : {}),
      });
    // one guarded findOneAndUpdate per lease (by _id, the narrowest index), sent at once: each
    // answer is exactly what that update did. One that fails does not fail the others, which
    // were applied and must be reported so: see #afterFailure
    const results = await Promise.allSettled(updates.map(send));
    const docs = await Promise.all(
      results.map((r, i) => (r.status === 'fulfilled' ? r.value : this.#afterFailure(updates[i]!, r.reason, send, projection))),
    );
    return docs.map((doc) => (doc ? toStoredItem(this.#ready('read'), doc) : null));
  }

  /**
   * What a batch's guarded update whose command failed did, from its document read back by _id
   * (see {@link failedUpdateOutcome}): applied, it is returned; still in the guard's state, it is
   * sent once more (it cannot apply twice); out of it, `null` (the guard no longer holds, as a
   * retry would report). Where it cannot be told — the read fails too, the second try fails, or
   * the change leaves the guard's state as it was — the whole call throws the command's own
   * error (for a dropped connection or a failover, a transient StoreError to the caller: every
   * transition is guarded, so retrying the batch is safe). Kept this simple on purpose: one
   * read and at most one more try per failed update, only on the failure path.
   */
  async #afterFailure(update: GuardedUpdate, error: unknown, send: (u: GuardedUpdate) => Promise<Document | null>, projection: Document | undefined): Promise<Document | null> {
    let doc: Document | null;
    try {
      const byId: Document = { _id: update.guard.ref };
      [doc = null] = await this.#collection.find(byId, { ...upTo(1), ...(projection ? { projection } : {}), ...DECIDE }).toArray();
    } catch {
      throw error;
    }
    const outcome = failedUpdateOutcome(doc, update.guard, update.change);
    if (outcome === 'applied') return doc;
    if (outcome === 'lost') return null;
    if (outcome === 'unknown') throw error;
    try {
      return await send(update);
    } catch {
      throw error;
    }
  }

  /**
   * Reporting reads (`tracker.get`, `find`) go where `reportingReadPreference` says. The reads a
   * transition makes ask for states only (`returning: 'state'`: reap candidates, a lost lease's
   * holder), and those go to the primary.
   */
  async find(cond: Partial<Condition>, options: FindOptions = {}): Promise<StoredItem[]> {
    this.#ready('find');
    const read = options.returning === 'state' ? DECIDE : this.#reporting;
    if (cond.key === undefined && cond.ref === undefined && !(cond.status && cond.status.length > 0)) {
      // "any status" becomes the statuses present (a DISTINCT_SCAN of the status index): then
      // the status/deadline index serves the read in eligible order, merging one range per
      // status, instead of a sort of the whole collection
      const present = (await this.#collection.distinct('status', {}, read)) as string[];
      const statuses = present.filter((s) => !cond.notStatus?.includes(s));
      if (statuses.length === 0) return [];
      return this.#find({ ...cond, status: statuses, notStatus: [] }, options, read);
    }
    return this.#find(cond, options, read);
  }

  async delete(cond: Condition, options: { limit: number }): Promise<number> {
    this.#ready('delete');
    const filter = this.#filter(cond);
    const ids = (await this.#collection.find(filter, { sort: ELIGIBLE_SORT, ...upTo(options.limit), projection: { _id: 1 }, ...DECIDE }).toArray()).map((d) => d._id);
    if (ids.length === 0) return 0;
    const result = await this.#collection.deleteMany({ $and: [{ _id: { $in: ids } }, filter] }, { writeConcern: this.#writeConcern });
    return result.deletedCount;
  }

  /**
   * One aggregation over the status/deadline index. Every status is a string, so the range
   * `status >= ''` takes every item, and the pipeline needs only `status` and `deadline`: the
   * server counts from the index alone without fetching a document. It still reads one index
   * entry per item: a reporting read, sent where `reportingReadPreference` says.
   */
  async stats(): Promise<StoreStats> {
    this.#ready('stats');
    const rows = await this.#collection
      .aggregate(
        [
          { $match: { status: { $gte: '' } } },
          { $group: { _id: '$status', n: { $sum: 1 }, future: { $sum: { $cond: [{ $gt: ['$deadline', '$$NOW'] }, 1, 0] } } } },
        ],
        this.#reporting,
      )
      .toArray();
    return { byStatus: Object.fromEntries(rows.map((r) => [r._id as string, { total: r.n as number, future: r.future as number }])) };
  }

  async #find(cond: Partial<Condition>, options: FindOptions, read: Document): Promise<StoredItem[]> {
    const docs = await this.#collection
      .find(this.#filter(cond), {
        sort: ELIGIBLE_SORT,
        ...(options.limit ? upTo(options.limit) : {}),
        ...(options.returning === 'state' ? { projection: STATE_PROJECTION } : {}),
        ...read,
      })
      .toArray();
    return docs.map((doc) => toStoredItem(this.#ready('read'), doc));
  }

  #filter(cond: Partial<Condition>): Filter<Document> {
    return toFilter(cond, cond.key ? this.#ready('key') : []);
  }

  #ready(operation: string): string[] {
    if (!this.#keys) throw notInitialised('mongodb', operation);
    return this.#keys;
  }
}
