import { EventEmitter } from 'node:events';
import { Aggregator, find } from 'mingo';
import type { Document } from 'mongodb';

/** One command the double received, with what it was sent. */
export interface DoubleCall {
  /** The driver method, or `getMore` / `killCursors` for the cursor commands a read costs. */
  readonly command: string;
  /** The filter it was sent (`{}` where the command has none). */
  readonly filter: Document;
  /** The options it was sent (read preference, read and write concern, sort, limit, ...). */
  readonly options: Document;
}

/** An index as `init()` created it (and the `_id` index every collection has). */
export interface DoubleIndex {
  readonly name: string;
  readonly key: Record<string, 1 | -1>;
  readonly unique: boolean;
}

/** Thrown by the double for a filter no index can serve: on a server, a collection scan. */
export class UnindexedQueryError extends Error {
  override name = 'UnindexedQueryError';
}

/** Change events kept for resuming, as a capped oplog keeps its newest entries. */
const HISTORY = 10_000;

type FindOptions = { sort?: Record<string, 1 | -1>; limit?: number; batchSize?: number; projection?: Document };
type BulkOp = { updateOne: { filter: Document; update: Document[] } } | { replaceOne: { filter: Document; replacement: Document; upsert?: boolean } };

/**
 * An in-process stand-in for the few `Collection` methods MongoStore calls, for machines that
 * cannot run `mongod`. Queries, sorts, pipeline updates (`$$NOW` included) and aggregations are
 * evaluated by mingo, an implementation of the MongoDB query language; each method runs
 * atomically, as a single-document (or per-document) operation does on a server. It lives in
 * test/ only and is never shipped.
 *
 * Where mingo cannot say what a server would do, the double models it:
 * - **Indexes.** It records the indexes `createIndex` makes (and the `_id` index) and refuses,
 *   with {@link UnindexedQueryError}, any filter whose leading predicate no index serves: some
 *   index's first field must appear as an equality, `$in` or range predicate (at the top level,
 *   in any conjunct of an `$and`, or in every branch of an `$or`). `$expr` never counts. The one
 *   exception is a filter with no predicate at all that is sorted on an index's first field and
 *   limited: a bounded walk of that index.
 * - **Interleaving.** Every command yields to the event loop before it runs, so concurrent
 *   callers interleave between commands as they do against a server.
 * - **Cursor batches.** A `find` or `aggregate` answers in batches as a server does (101 documents
 *   first unless `batchSize` says otherwise), and each further batch is a `getMore` (or a
 *   `killCursors` where the driver closes a cursor whose limit was reached) in {@link calls}.
 * - **Uniqueness.** `_id` and every unique index are enforced as a server does (E11000, code 11000),
 *   and `createIndex` refuses an existing name with another key spec (IndexKeySpecsConflict, 86)
 *   and an existing key spec under another name or with other options (IndexOptionsConflict, 85).
 * - **Change streams.** Every write that changes a document is recorded as a change event, as
 *   an oplog entry is (a no-op update records nothing); `watch()` opens a
 *   {@link ChangeStreamDouble} over that history. See there for what it models.
 */
export class CollectionDouble {
  /** `<db>.<collection>`, as the driver's `collection.namespace`. */
  readonly namespace: string;
  /**
   * `standalone`: `watch()` fails as on a standalone `mongod` (code 40573).
   * @default 'replicaSet'
   */
  topology: 'replicaSet' | 'standalone' = 'replicaSet';
  /** Every `watch()` call so far, with the pipeline and options it was sent. */
  readonly watchCalls: Array<{ readonly pipeline: Document[]; readonly options: Document }> = [];
  /** Change events that passed a stream's pipeline and were sent to its client. */
  delivered = 0;
  /** The change history (the oplog of this collection): each event with its sequence number. */
  readonly #history: Array<{ seq: number; event: Document }> = [];
  #seq = 0;
  /** Events before this sequence number are gone (see {@link forgetHistory}). */
  #oldest = 1;
  readonly #streams = new Set<ChangeStreamDouble>();
  readonly #watchFailures: Error[] = [];
  readonly #docs: Document[] = [];
  readonly #indexes: DoubleIndex[] = [{ name: '_id_', key: { _id: 1 }, unique: true }];
  #nextId = 1;
  /** Command names so far, cursor commands included (the double's round trips). */
  readonly calls: string[] = [];
  /** Every command so far with the filter and options it was sent. */
  readonly log: DoubleCall[] = [];
  /** Commands that fail once: see {@link failNext}. */
  readonly #failures = new Map<string, { error: Error; after: number; times: number }>();

  /**
   * Setup and inspection for tests, as an administrator would do it by hand: no index check,
   * not logged, no yield.
   */
  readonly admin = {
    /** Inserts documents as they are (an `_id` is added where missing). */
    insertMany: (docs: Document[]): void => {
      for (const doc of docs) this.#insert(this.#withId(structuredClone(doc)));
    },
    /** Applies a pipeline update to every document matching `filter`. */
    updateMany: (filter: Document, pipeline: Document[]): number => {
      const docs = this.#select(filter);
      for (const doc of docs) this.#replace(doc, this.#apply(doc, pipeline));
      return docs.length;
    },
    /** Replaces the first document matching `filter` with `doc` (keeping its `_id`): a `replace` event. */
    replaceOne: (filter: Document, doc: Document): boolean => {
      const [old] = this.#select(filter, undefined, 1);
      if (!old) return false;
      const next = { ...structuredClone(doc), _id: old._id };
      this.#checkUnique(next, old._id);
      this.#docs[this.#docs.indexOf(old)] = next;
      this.#record('replace', next);
      return true;
    },
    /** Copies of the documents matching `filter`. */
    find: (filter: Document = {}): Document[] => this.#select(filter).map((d) => structuredClone(d)),
  };

  constructor(name = 'double') {
    this.namespace = `leasehold_test.${name}`;
  }

  /** The indexes the collection has now. */
  get indexes(): readonly DoubleIndex[] {
    return this.#indexes;
  }

  /** Change streams open now. */
  get openStreams(): number {
    return this.#streams.size;
  }

  /**
   * Opens a change stream, as `Collection#watch` does: lazily (the server answers on a later
   * turn of the event loop), with the pipeline run on each event after the `updateLookup` and
   * `resumeAfter` / `startAfter` taken from a token of an earlier stream.
   */
  watch(pipeline: Document[] = [], options: Document = {}): ChangeStreamDouble {
    this.watchCalls.push({ pipeline: structuredClone(pipeline), options: { ...options } });
    const stream = new ChangeStreamDouble(this, pipeline, options);
    this.#streams.add(stream);
    return stream;
  }

  /** Makes the next `times` change streams fail when they start, with `error`. */
  failNextWatch(error: Error, times = 1): void {
    for (let i = 0; i < times; i++) this.#watchFailures.push(error);
  }

  /**
   * Every open stream fails with `error` and closes, as the driver reports a stream it could not
   * resume by itself (a failover, a network error). Writes go on being recorded meanwhile.
   */
  interruptStreams(error: Error): void {
    for (const stream of [...this.#streams]) stream.fail(error);
  }

  /** The oplog rolls over: resume tokens of everything so far can no longer be resumed from. */
  forgetHistory(): void {
    this.#oldest = this.#seq + 1;
    this.#history.length = 0;
  }

  /** @internal What a starting stream meets: a queued failure, or the newest sequence number. */
  startStream(after: number | undefined): { error: Error } | { seq: number } {
    const failure = this.#watchFailures.shift();
    if (failure) return { error: failure };
    if (this.topology === 'standalone') {
      return { error: serverError(40573, 'Location40573', 'The $changeStream stage is only supported on replica sets') };
    }
    if (after !== undefined && after + 1 < this.#oldest) {
      return { error: serverError(286, 'ChangeStreamHistoryLost', 'Resume of change stream was not possible, as the resume point may no longer be in the oplog.') };
    }
    return { seq: after ?? this.#seq };
  }

  /** @internal Events after `seq`, each with the current document where `lookup` asks for it. */
  eventsAfter(seq: number, lookup: boolean): Array<{ seq: number; event: Document }> {
    return this.#history
      .filter((h) => h.seq > seq)
      .map(({ seq: at, event }) => {
        const copy = structuredClone(event);
        if (lookup && copy.operationType === 'update') {
          const doc = this.#docs.find((d) => sameValue(d._id, event.documentKey._id));
          copy.fullDocument = doc ? structuredClone(doc) : null;
        }
        return { seq: at, event: copy };
      });
  }

  /** @internal The newest sequence number. */
  get lastSeq(): number {
    return this.#seq;
  }

  /** @internal */
  streamClosed(stream: ChangeStreamDouble): void {
    this.#streams.delete(stream);
  }

  #record(operationType: 'insert' | 'update' | 'replace' | 'delete', doc: Document, before?: Document): void {
    const seq = ++this.#seq;
    const [db, ...coll] = this.namespace.split('.');
    const event: Document = {
      _id: token(seq),
      operationType,
      wallTime: new Date(),
      ns: { db, coll: coll.join('.') },
      documentKey: { _id: doc._id },
    };
    if (operationType === 'insert' || operationType === 'replace') event.fullDocument = structuredClone(doc);
    if (operationType === 'update') event.updateDescription = { ...diff(before!, doc), truncatedArrays: [] };
    this.#history.push({ seq, event });
    // a capped oplog: the oldest entries roll off
    if (this.#history.length > HISTORY) this.#oldest = this.#history.splice(0, this.#history.length - HISTORY).at(-1)!.seq + 1;
    for (const stream of this.#streams) stream.pump();
  }

  /**
   * Makes the next `command` fail with `error`, after applying it to `after` documents (a
   * multi-document write interrupted half-way, as a failover can). For `findOneAndUpdate` (one
   * document per call): the next `after` calls succeed, then `times` calls fail.
   */
  failNext(command: 'updateMany' | 'bulkWrite' | 'find' | 'findOneAndUpdate' | 'deleteMany', error: Error, after = 0, times = 1): void {
    this.#failures.set(command, { error, after, times });
  }

  async createIndex(spec: Record<string, 1 | -1>, options: { name?: string; unique?: boolean } = {}): Promise<string> {
    await this.#turn('createIndex', {}, options);
    const name = options.name ?? Object.entries(spec).map(([k, v]) => `${k}_${v}`).join('_');
    const index = { name, key: { ...spec }, unique: options.unique === true };
    // as a server answers: the same index again is a no-op; a name or a key spec already taken by
    // a different index is refused (the key spec in its order and directions)
    const sameKey = (i: DoubleIndex) => JSON.stringify(Object.entries(i.key)) === JSON.stringify(Object.entries(spec));
    const named = this.#indexes.find((i) => i.name === name);
    if (named && !sameKey(named)) {
      throw serverError(86, 'IndexKeySpecsConflict', `An existing index has the same name as the requested index. Requested index: ${JSON.stringify(index)}, existing index: ${JSON.stringify(named)}`);
    }
    if (named && named.unique !== index.unique) throw serverError(85, 'IndexOptionsConflict', `Index with name: ${name} already exists with different options`);
    if (named) return name;
    const keyed = this.#indexes.find((i) => sameKey(i));
    if (keyed) throw serverError(85, 'IndexOptionsConflict', `Index already exists with a different name: ${keyed.name}`);
    // as a server does, a unique index is refused while documents break it
    if (index.unique) {
      for (const doc of this.#docs) this.#checkUnique(doc, doc._id, [index]);
    }
    this.#indexes.push(index);
    return name;
  }

  /** The indexes, as the driver's `listIndexes()` cursor gives them. */
  listIndexes() {
    return {
      toArray: async (): Promise<Document[]> => {
        await this.#turn('listIndexes', {}, {});
        return this.#indexes.map((i) => ({ v: 2, key: { ...i.key }, name: i.name, ...(i.unique && i.name !== '_id_' ? { unique: true } : {}) }));
      },
    };
  }

  async dropIndex(name: string): Promise<void> {
    await this.#turn('dropIndex', {}, { name });
    const at = this.#indexes.findIndex((i) => i.name === name);
    if (at <= 0) throw Object.assign(new Error(`index not found with name [${name}]`), { code: 27, codeName: 'IndexNotFound' });
    this.#indexes.splice(at, 1);
  }

  find(filter: Document, options: FindOptions & Document = {}) {
    return {
      toArray: async () => {
        await this.#turn('find', filter, options);
        this.#require('find', filter, options);
        this.#fail('find', () => {});
        const docs = this.#select(filter, options.sort, options.limit).map((d) => project(structuredClone(d), options.projection));
        await this.#batches(docs.length, options);
        return docs;
      },
    };
  }

  /** Inserts in order, as an ordered `insertMany` does: a duplicate stops it there (E11000), the ones before it stay. */
  async insertMany(docs: Document[], options: Document = {}): Promise<{ insertedCount: number }> {
    await this.#turn('insertMany', {}, options);
    for (const doc of docs) this.#insert(this.#withId(structuredClone(doc)));
    return { insertedCount: docs.length };
  }

  async distinct(field: string, filter: Document = {}, options: Document = {}): Promise<unknown[]> {
    await this.#turn('distinct', filter, { ...options, key: field });
    // with no filter, a server answers from an index that leads with the field (DISTINCT_SCAN)
    if (Object.keys(filter).length > 0) this.#require('distinct', filter, options);
    else if (!this.#indexes.some((i) => Object.keys(i.key)[0] === field)) this.#refuse('distinct', { [field]: '(distinct)' });
    const values = new Map<string, unknown>();
    for (const doc of this.#select(filter)) values.set(JSON.stringify(getPath(doc, field)), getPath(doc, field));
    return [...values.values()];
  }

  async deleteMany(filter: Document, options: Document = {}): Promise<{ deletedCount: number }> {
    await this.#turn('deleteMany', filter, options);
    this.#require('deleteMany', filter);
    this.#fail('deleteMany', () => {});
    const docs = new Set(this.#select(filter));
    const before = this.#docs.length;
    this.#docs.splice(0, this.#docs.length, ...this.#docs.filter((d) => !docs.has(d)));
    for (const doc of docs) this.#record('delete', doc);
    return { deletedCount: before - this.#docs.length };
  }

  async findOneAndUpdate(
    filter: Document,
    pipeline: Document[],
    options: { sort?: Record<string, 1 | -1>; upsert?: boolean; includeResultMetadata?: boolean; projection?: Document } & Document = {},
  ): Promise<Document | null> {
    await this.#turn('findOneAndUpdate', filter, options);
    this.#require('findOneAndUpdate', filter);
    const failure = this.#failures.get('findOneAndUpdate');
    if (failure) {
      if (failure.after > 0) failure.after--;
      else {
        if (--failure.times <= 0) this.#failures.delete('findOneAndUpdate');
        throw failure.error;
      }
    }
    const [doc] = this.#select(filter, options.sort, 1);
    let value: Document | null = null;
    let updatedExisting = false;
    if (doc) {
      value = this.#replace(doc, this.#apply(doc, pipeline));
      updatedExisting = true;
    } else if (options.upsert) {
      // as a server does: the equality fields of the filter (dotted paths as subdocuments) seed the new document
      const seed: Document = this.#withId({});
      for (const [path, v] of Object.entries(filter)) {
        if (path.startsWith('$') || (typeof v === 'object' && v !== null && !(v instanceof Date))) continue;
        const parts = path.split('.');
        let at = seed;
        for (const part of parts.slice(0, -1)) at = (at[part] ??= {}) as Document;
        at[parts.at(-1)!] = v;
      }
      value = this.#insert(this.#apply(seed, pipeline));
    }
    const out = value && project(structuredClone(value), options.projection);
    return options.includeResultMetadata ? { value: out, lastErrorObject: { updatedExisting } } : out;
  }

  async updateMany(filter: Document, pipeline: Document[], options: Document = {}): Promise<{ matchedCount: number; modifiedCount: number }> {
    await this.#turn('updateMany', filter, options);
    this.#require('updateMany', filter);
    const docs = this.#select(filter);
    this.#fail('updateMany', (after) => {
      for (const doc of docs.slice(0, after)) this.#replace(doc, this.#apply(doc, pipeline));
    });
    for (const doc of docs) this.#replace(doc, this.#apply(doc, pipeline));
    return { matchedCount: docs.length, modifiedCount: docs.length };
  }

  /** `updateOne` (pipeline updates) and `replaceOne` (with `upsert`), applied in order. */
  async bulkWrite(ops: BulkOp[], options: Document = {}): Promise<{ matchedCount: number; upsertedCount: number }> {
    const filterOf = (op: BulkOp) => ('updateOne' in op ? op.updateOne.filter : op.replaceOne.filter);
    await this.#turn('bulkWrite', { $bulk: ops.map(filterOf) }, options);
    for (const op of ops) this.#require(`bulkWrite ${'updateOne' in op ? 'updateOne' : 'replaceOne'}`, filterOf(op));
    let matchedCount = 0;
    let upsertedCount = 0;
    const apply = (list: BulkOp[]) => {
      for (const op of list) {
        const [doc] = this.#select(filterOf(op), undefined, 1);
        if ('updateOne' in op) {
          if (!doc) continue;
          this.#replace(doc, this.#apply(doc, op.updateOne.update));
          matchedCount++;
        } else if (doc) {
          const next = { ...structuredClone(op.replaceOne.replacement), _id: doc._id };
          this.#checkUnique(next, doc._id);
          this.#docs[this.#docs.indexOf(doc)] = next;
          this.#record('replace', next);
          matchedCount++;
        } else if (op.replaceOne.upsert) {
          // as a server does: the replacement's own _id, else the filter's equality on _id
          const id = op.replaceOne.filter._id;
          this.#insert(this.#withId({ ...(id !== undefined && typeof id !== 'object' ? { _id: id } : {}), ...structuredClone(op.replaceOne.replacement) }));
          upsertedCount++;
        }
      }
    };
    this.#fail('bulkWrite', (after) => apply(ops.slice(0, after)));
    apply(ops);
    return { matchedCount, upsertedCount };
  }

  aggregate(pipeline: Document[], options: Document = {}) {
    return {
      toArray: async () => {
        const first = pipeline[0] ?? {};
        await this.#turn('aggregate', first.$match ?? {}, { ...options, pipeline });
        // a pipeline that does not open with an indexed $match reads every document
        if (!first.$match) this.#refuse('aggregate', { pipeline });
        this.#require('aggregate $match', first.$match);
        const rows = new Aggregator(pipeline).run(this.#docs.map((d) => structuredClone(d))) as Document[];
        await this.#batches(rows.length, options);
        return rows;
      },
    };
  }

  /** Every command yields once first, so that concurrent callers interleave between commands. */
  async #turn(command: string, filter: Document, options: Document): Promise<void> {
    this.calls.push(command);
    this.log.push({ command, filter, options });
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /**
   * The cursor commands a read of `n` results costs after its first reply, as the driver and a
   * server (5.0+) exchange them: a server fills a batch without peeking past it, so a full batch
   * leaves the cursor open; the driver closes a cursor whose `limit` it has seen reached
   * (`killCursors`), and sends `batchSize + 1` when `batchSize` equals `limit` so that it closes
   * on its own.
   */
  async #batches(n: number, options: FindOptions): Promise<void> {
    const { limit, batchSize } = options;
    const first = batchSize === undefined ? 101 : batchSize === limit ? batchSize + 1 : batchSize;
    let returned = Math.min(n, first);
    let open = returned === first;
    while (open) {
      if (limit !== undefined && returned >= limit) {
        await this.#turn('killCursors', {}, {});
        return;
      }
      const size = Math.min(batchSize ?? Number.POSITIVE_INFINITY, (limit ?? Number.POSITIVE_INFINITY) - returned);
      const got = Math.min(n - returned, size);
      await this.#turn('getMore', {}, { batchSize });
      returned += got;
      open = got === size;
    }
  }

  #require(command: string, filter: Document, options: FindOptions = {}): void {
    const leads = new Set(this.#indexes.map((i) => Object.keys(i.key)[0]!));
    if (served(filter, leads)) return;
    // no predicate at all, sorted on an index and limited: a bounded walk of that index
    const sortLead = Object.keys(options.sort ?? {})[0];
    if (Object.keys(filter).length === 0 && sortLead !== undefined && leads.has(sortLead) && options.limit !== undefined) return;
    this.#refuse(command, filter);
  }

  #refuse(command: string, filter: Document): never {
    const indexes = this.#indexes.map((i) => `${i.name} ${JSON.stringify(i.key)}`).join(', ');
    throw new UnindexedQueryError(
      `[mongo-double] \`${command}\` with filter ${JSON.stringify(filter)} would scan the whole collection: no index serves its leading predicate ` +
        `(an index's first field as an equality, $in or range predicate; $expr does not count). Indexes: ${indexes}.`,
    );
  }

  #fail(command: string, partial: (after: number) => void): void {
    const failure = this.#failures.get(command);
    if (!failure) return;
    this.#failures.delete(command);
    partial(failure.after);
    throw failure.error;
  }

  #select(filter: Document, sort?: Record<string, 1 | -1>, limit?: number): Document[] {
    let cursor = find(this.#docs, filterAtNow(filter, new Date())).sort(sort ?? { _id: 1 });
    if (limit) cursor = cursor.limit(limit);
    // mingo returns the stored objects; map back to them by _id
    return cursor.all().map((d) => this.#docs.find((x) => x._id === (d as Document)._id)!);
  }

  #apply(doc: Document, pipeline: Document[]): Document {
    // a server stores what it was sent, not the sender's objects: mingo may place a pipeline's
    // own values (a Date literal) in the result as they are
    return structuredClone(new Aggregator(atNow(pipeline, new Date())).run([structuredClone(doc)])[0]) as Document;
  }

  /** `doc` with an `_id`: its own, else the next number no document holds. */
  #withId(doc: Document): Document {
    if (doc._id !== undefined) return doc;
    while (this.#docs.some((d) => d._id === this.#nextId)) this.#nextId++;
    return { _id: this.#nextId++, ...doc };
  }

  #insert(doc: Document): Document {
    this.#checkUnique(doc, undefined);
    this.#docs.push(doc);
    this.#record('insert', doc);
    return doc;
  }

  #replace(old: Document, next: Document): Document {
    this.#checkUnique(next, old._id);
    this.#docs[this.#docs.indexOf(old)] = next;
    // as on a server, an update that changes nothing writes no oplog entry
    const change = diff(old, next);
    if (Object.keys(change.updatedFields).length > 0 || change.removedFields.length > 0) this.#record('update', next, old);
    return next;
  }

  #checkUnique(doc: Document, self: unknown, indexes = this.#indexes.filter((i) => i.unique)): void {
    for (const index of indexes) {
      const fields = Object.keys(index.key);
      // a document being replaced is no clash with itself
      const clash = this.#docs.find((d) => (self === undefined || !sameValue(d._id, self)) && fields.every((f) => sameValue(getPath(d, f), getPath(doc, f))));
      if (clash) throw Object.assign(new Error(`E11000 duplicate key error index: ${index.name} (${fields.join(', ')})`), { code: 11000 });
    }
  }
}

const BOUNDING = new Set(['$eq', '$in', '$gt', '$gte', '$lt', '$lte']);

/** Whether some index whose first field is in `leads` gives the filter index bounds. */
function served(filter: Document, leads: ReadonlySet<string>): boolean {
  for (const [field, value] of Object.entries(filter)) {
    if (field === '$and') {
      if ((value as Document[]).some((c) => served(c, leads))) return true;
    } else if (field === '$or') {
      if ((value as Document[]).length > 0 && (value as Document[]).every((b) => served(b, leads))) return true;
    } else if (!field.startsWith('$') && leads.has(field) && bounds(value)) {
      // $expr, $nor, $where and the like give no bounds; they are skipped
      return true;
    }
  }
  return false;
}

/** An equality (a value or a subdocument) or an operator object with `$eq`, `$in` or a range. */
function bounds(value: unknown): boolean {
  const operators = value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype && Object.keys(value).every((k) => k.startsWith('$')) && Object.keys(value).length > 0;
  if (!operators) return true;
  return Object.keys(value as Document).some((op) => BOUNDING.has(op));
}

/**
 * `value` with every `$$NOW` replaced by `now`. A server reads its clock once per command, so
 * every `$$NOW` of one update (createdAt, deadline = now + delay) is the same instant; mingo reads
 * `Date.now()` at each use, which made a 5,000 ms delay come out as 4,999 now and then.
 */
function atNow<T>(value: T, now: Date): T {
  if (value === '$$NOW') return { $literal: now } as T;
  if (Array.isArray(value)) return value.map((v) => atNow(v, now)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, atNow(v, now)])) as T;
  }
  return value;
}

/** A filter with `$$NOW` fixed inside its `$expr`s only: elsewhere the string is a value like any other. */
function filterAtNow(filter: Document, now: Date): Document {
  return Object.fromEntries(
    Object.entries(filter).map(([k, v]) => [
      k,
      k === '$expr' ? atNow(v, now) : (k === '$and' || k === '$or' || k === '$nor') && Array.isArray(v) ? v.map((f: Document) => filterAtNow(f, now)) : v,
    ]),
  );
}

function getPath(doc: Document, path: string): unknown {
  return path.split('.').reduce<unknown>((at, part) => (at && typeof at === 'object' ? (at as Document)[part] : undefined), doc);
}

/** Applies an inclusion (`{ _id: 1 }`) or exclusion (`{ data: 0 }`) projection. */
function project(doc: Document, projection: Document | undefined): Document {
  if (!projection) return doc;
  const entries = Object.entries(projection);
  if (entries.every(([, v]) => v === 0)) {
    for (const [k] of entries) delete doc[k];
    return doc;
  }
  return Object.fromEntries(Object.entries(doc).filter(([k]) => k === '_id' || projection[k] === 1));
}

function sameValue(a: unknown, b: unknown): boolean {
  return a instanceof Date && b instanceof Date ? a.getTime() === b.getTime() : a === b;
}

/** Stages a change stream pipeline may have after `$changeStream` (as a server allows). */
const STREAM_STAGES = new Set(['$match', '$project', '$addFields', '$set', '$unset', '$replaceRoot', '$replaceWith', '$redact']);

/**
 * A change stream of a {@link CollectionDouble}, shaped as the driver's `ChangeStream` in
 * emitter mode: `change`, `error`, `close` and `resumeTokenChanged` events, `resumeToken`, and
 * `close()`. It models what a server does:
 * - events in write order, `insert` / `replace` with `fullDocument`, `update` with
 *   `updateDescription.updatedFields` (top-level fields whose value changed) and, with
 *   `fullDocument: 'updateLookup'`, the document as it is when the event is delivered (`null`
 *   when deleted meanwhile); `delete` with `documentKey` only;
 * - the pipeline (only the stages a server allows) runs on each event with mingo; an event
 *   whose `_id` (the resume token) the pipeline changed fails the stream, as on a server;
 * - a resume token after each event and, as a `postBatchResumeToken`, after events the
 *   pipeline dropped, so that a stream resumed from it does not replay them;
 * - `resumeAfter` / `startAfter` replay what was recorded after the token, or fail with
 *   `ChangeStreamHistoryLost` (286) after {@link CollectionDouble.forgetHistory};
 * - failures: a standalone server (40573), queued start failures, and interruptions, each as
 *   a `close` event followed by `error`, in the order the driver emits them (its cursor cleans
 *   up, which closes the stream, before it rethrows the server's error).
 */
export class ChangeStreamDouble extends EventEmitter {
  readonly #collection: CollectionDouble;
  readonly #pipeline: Document[];
  readonly #lookup: boolean;
  /** Sequence number of the last event examined; undefined until the server answered. */
  #position: number | undefined;
  #token: Document | null = null;
  #closed = false;
  #pumping = false;

  constructor(collection: CollectionDouble, pipeline: Document[], options: Document) {
    super();
    this.#collection = collection;
    this.#pipeline = pipeline;
    this.#lookup = options.fullDocument === 'updateLookup';
    const bad = pipeline.flatMap((stage) => Object.keys(stage)).find((name) => !STREAM_STAGES.has(name));
    const resume = (options.resumeAfter ?? options.startAfter) as Document | undefined;
    setImmediate(() => {
      if (this.#closed) return;
      if (bad) return this.fail(serverError(40602, 'Location40602', `${bad} is not permitted in a $changeStream pipeline`));
      const start = collection.startStream(resume ? seqOf(resume) : undefined);
      if ('error' in start) return this.fail(start.error);
      this.#position = start.seq;
      this.#setToken(token(start.seq));
      this.pump();
    });
  }

  /** The token to resume after the last event seen (`null` before the server answered). */
  get resumeToken(): Document | null {
    return this.#token;
  }

  /** Whether the stream was closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the stream (idempotent), emitting `close` once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#collection.streamClosed(this);
    this.emit('close');
  }

  /** @internal Fails the stream as the driver does: `close`, then `error`. */
  fail(error: Error): void {
    if (this.#closed) return;
    void this.close();
    this.emit('error', error);
  }

  /** @internal Delivers recorded events on a later turn (a server answers a getMore). */
  pump(): void {
    if (this.#pumping || this.#position === undefined || this.#closed) return;
    this.#pumping = true;
    setImmediate(() => {
      this.#pumping = false;
      if (this.#closed || this.#position === undefined) return;
      for (const { seq, event } of this.#collection.eventsAfter(this.#position, this.#lookup)) {
        if (this.#closed) return;
        this.#position = seq;
        const [out] = new Aggregator(this.#pipeline).run([event]) as Document[];
        if (!out) continue;
        if (JSON.stringify(out._id) !== JSON.stringify(event._id)) {
          return this.fail(serverError(280, 'ChangeStreamFatalError', "Encountered an event whose _id field, which contains the resume token, was modified by the pipeline."));
        }
        this.#token = event._id as Document;
        this.#collection.delivered++;
        this.emit('change', out);
      }
      // the postBatchResumeToken: past events the pipeline dropped too
      if (!this.#closed) this.#setToken(token(this.#collection.lastSeq));
    });
  }

  #setToken(next: Document): void {
    if (this.#token && this.#token._data === next._data) return;
    this.#token = next;
    this.emit('resumeTokenChanged', next);
  }
}

function token(seq: number): Document {
  return { _data: seq.toString(16).padStart(16, '0') };
}

function seqOf(resume: Document): number {
  const seq = Number.parseInt(String(resume._data), 16);
  if (!Number.isInteger(seq)) throw serverError(260, 'InvalidResumeToken', `invalid resume token ${JSON.stringify(resume)}`);
  return seq;
}

function serverError(code: number, codeName: string, message: string): Error {
  return Object.assign(new Error(message), { name: 'MongoServerError', code, codeName });
}

/** Top-level fields set or changed, and removed, from `before` to `after`. */
function diff(before: Document, after: Document): { updatedFields: Document; removedFields: string[] } {
  const updatedFields: Document = {};
  for (const [k, v] of Object.entries(after)) {
    if (!(k in before) || !deepEqual(before[k], v)) updatedFields[k] = structuredClone(v);
  }
  return { updatedFields, removedFields: Object.keys(before).filter((k) => !(k in after)) };
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return Object.is(a, b);
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => deepEqual((a as Document)[k], (b as Document)[k]));
}
