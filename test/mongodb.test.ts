import { MongoClient, type Collection, type CommandStartedEvent, type Document } from 'mongodb';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MongoStore, type MongoCollection, type MongoStoreOptions } from '../src/stores/mongodb.js';
import { LeaseLostError, StoreError, type Store } from '../src/index.js';
import { storeContract } from '../src/testing/suite.js';
import { k, makeTracker, TTL } from '../src/testing/definition.js';
import { CollectionDouble, UnindexedQueryError, type DoubleCall } from './support/mongo-double.js';
import { PROCESS_RACES_TIMEOUT, processRaces } from './support/processes.js';
import { expectOneRoundTripEach } from './support/round-trips.js';

const uri = inject('mongoUri');
const source = inject('mongoSource');
const clients: MongoClient[] = [];
const collections = new WeakMap<Store, MongoCollection>();
const names = new WeakMap<Store, string>();
const run = `${process.pid}_${Date.now() % 1e6}`;
let n = 0;

async function client(options: ConstructorParameters<typeof MongoClient>[1] = {}): Promise<MongoClient> {
  const c = new MongoClient(uri, options);
  await c.connect();
  clients.push(c);
  return c;
}
const main = uri ? await client() : undefined;

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

/** A hand edit by the test (not the store): on the double, past its index check. */
async function adminUpdate(coll: MongoCollection, filter: Document, pipeline: Document[]): Promise<void> {
  if (coll instanceof CollectionDouble) coll.admin.updateMany(filter, pipeline);
  else await (coll as Collection<Document>).updateMany(filter, pipeline);
}

/** Makes `ms` of store time pass for every item (moves deadlines earlier). */
const backdate = (coll: MongoCollection, ms: number) => adminUpdate(coll, {}, [{ $set: { deadline: { $subtract: ['$deadline', ms] } } }]);

function collection(name: string, via = main): MongoCollection {
  // the double implements only what MongoStore calls, so it is cast to the driver's type
  return via ? via.db('leasehold_test').collection(name) : (new CollectionDouble() as unknown as MongoCollection);
}

/** A store on a fresh double, and the double to inspect. */
function onDouble(options: Omit<MongoStoreOptions, 'collection' | 'db'> = {}) {
  const double = new CollectionDouble();
  return { double, store: new MongoStore({ ...options, collection: double as unknown as MongoCollection }) };
}

storeContract({
  name: `MongoStore (${source})`,
  raceRepeats: 100,
  async create() {
    const name = `contract_${run}_${++n}`;
    const coll = collection(name);
    const store = new MongoStore({ collection: coll });
    collections.set(store, coll);
    names.set(store, name);
    return store;
  },
  async elapse(store, ms) {
    await backdate(collections.get(store)!, ms);
  },
  ...(uri
    ? {
        async peer(store: Store) {
          // a client of its own: separate connections race for real
          const other = new MongoStore({ collection: collection(names.get(store)!, await client()) });
          return other;
        },
      }
    : {}),
  async corrupt(store, key) {
    await adminUpdate(collections.get(store)!, { 'key.logId': key.logId }, [{ $set: { data: { $literal: { bytes: 'not a number' } } } }]);
  },
});

describe('MongoStore constructor shapes', () => {
  it('takes a Db and a collection name, as well as a Collection', async () => {
    const opened: string[] = [];
    const db = { collection: (name: string) => (opened.push(name), new CollectionDouble() as unknown as MongoCollection) };
    const tracker = makeTracker(new MongoStore({ db, collection: 'partner_log_trackers' }));
    await tracker.track({ logId: 'a', partnerCode: 'p', seq: 1 });
    expect(opened).toEqual(['partner_log_trackers']);
    expect((await tracker.stats()).total).toBe(1);
  });
});

describe('MongoStore: the deadline from before an update (priorDeadline)', () => {
  it('a batch claim over more than one window returns each item\'s old deadline; reads never show the stored copy', async () => {
    const { double, store } = onDouble();
    await makeTracker(store).init();
    const base = Date.now() - 3_600_000;
    const due = (seq: number) => base + seq * 1_000;
    // a window is 500 ids: 503 items take two, each per-id update answering for itself
    const count = 503;
    for (let seq = 0; seq < count; seq++) await store.insert({ key: k(seq), status: 'pending', data: { note: `n${seq}` }, deadline: { at: new Date(due(seq)) } });
    double.log.length = 0;
    const claim = { status: 'downloading', owner: 'w', bumpFence: true, attempts: 'increment', deadline: { ms: TTL } } as const;
    const claimed = await store.update({ status: ['pending'], deadline: 'passed' }, claim, { limit: count, ordered: true, priorDeadline: true, returning: 'state' });
    expect(double.log.filter((c) => c.command === 'find')).toHaveLength(2);
    expect(claimed.map((item) => item.key.seq)).toEqual(Array.from({ length: count }, (_, seq) => seq));
    for (const item of claimed) {
      expect(item.priorDeadline?.getTime()).toBe(due(item.key.seq as number));
      expect(item.deadline.getTime()).toBe(item.claimedAt!.getTime() + TTL);
    }
    // by key, with data: the copy is the deadline of the lease it replaces
    const [one] = await store.update({ key: k(7), status: ['downloading'] }, { status: 'downloaded', deadline: { ms: 0 } }, { priorDeadline: true });
    expect(one).toMatchObject({ status: 'downloaded', data: { note: 'n7' }, priorDeadline: claimed[7]!.deadline });
    // the copy stays in the document, but only the update that asked returns it
    const [plain] = await store.update({ key: k(7), status: ['downloaded'] }, {}, {});
    expect(plain).not.toHaveProperty('priorDeadline');
    for (const item of [...(await store.find({ key: k(7) })), ...(await store.find({ status: ['downloading'] }, { limit: 3 }))]) expect(item).not.toHaveProperty('priorDeadline');
  });
});

describe('the double refuses what a server would answer with a collection scan', () => {
  it('a filter on an unindexed field, an $expr-only filter and an empty filter are refused, naming the filter and the indexes', async () => {
    const { double, store } = onDouble();
    await makeTracker(store).init();
    for (const filter of [{ leaseholdOp: 'x' }, { $expr: { $lte: ['$deadline', '$$NOW'] } }, {}, { status: { $nin: ['pending'] } }, { $or: [{ status: 'pending' }, { owner: 'w' }] }]) {
      const error = await double.find(filter).toArray().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnindexedQueryError);
      expect(String(error)).toContain(JSON.stringify(filter));
      expect(String(error)).toContain('leasehold_status_deadline {"status":1,"deadline":1,"_id":1}');
    }
    await expect(double.updateMany({ owner: 'w' }, [])).rejects.toThrow(UnindexedQueryError);
    await expect(double.aggregate([{ $group: { _id: '$status' } }]).toArray()).rejects.toThrow(UnindexedQueryError);
    // the same predicates behind an indexed one are served
    for (const filter of [{ _id: { $in: [1] }, leaseholdOp: 'x' }, { $and: [{ status: { $in: ['pending'] } }, { owner: 'w' }] }, { $or: [{ status: 'pending' }, { _id: 1 }] }, { status: { $gte: '' } }]) {
      await expect(double.find(filter).toArray()).resolves.toEqual([]);
    }
  });

  it('claim-next on a collection whose status/deadline index is missing fails loudly', async () => {
    const { double, store } = onDouble();
    const tracker = makeTracker(store);
    await tracker.track(k(1));
    await double.dropIndex('leasehold_status_deadline');
    const error = await tracker.claim('download', { owner: 'w' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).cause).toBeInstanceOf(UnindexedQueryError);
    // by key, the unique key index still serves it
    expect(await tracker.claim('download', { owner: 'w', key: k(1) })).not.toBeNull();
  });

  it('every kind of command the store sends was checked: a whole workload passes through the index check', async () => {
    const { double, store } = onDouble();
    const tracker = makeTracker(store);
    for (let i = 0; i < 6; i++) await tracker.track(k(i));
    const leases = await tracker.claimBatch('download', { owner: 'w', limit: 4 });
    await tracker.completeBatch(leases.slice(0, 2));
    await tracker.failBatch(leases.slice(2).map((lease) => ({ lease, error: new Error('x'), retry: false })));
    await tracker.claim('download', { owner: 'w' });
    await backdate(double as unknown as MongoCollection, TTL + 1);
    await tracker.reapStale();
    await tracker.find();
    await tracker.find({ undeclared: true });
    await tracker.stats();
    await tracker.purge({ status: 'failed' });
    await tracker.retryAll();
    const kinds = new Set(double.log.map((c) => c.command));
    for (const kind of ['findOneAndUpdate', 'find', 'deleteMany', 'aggregate', 'distinct']) expect(kinds).toContain(kind);
  });

  it('interleaves concurrent callers between commands, as a server does (a read-then-write by two callers: both reads first)', async () => {
    const { double, store } = onDouble();
    await makeTracker(store).init();
    const readThenWrite = async () => {
      await double.find({ status: 'pending' }).toArray();
      await double.updateMany({ status: 'pending' }, [{ $set: { owner: 'w' } }]);
    };
    double.log.length = 0;
    await Promise.all([readThenWrite(), readThenWrite()]);
    expect(double.log.map((c) => c.command)).toEqual(['find', 'find', 'updateMany', 'updateMany']);
  });
});

describe('MongoStore init with a role that may only read', () => {
  // the double behind a user whose role lists indexes but may not create them (MongoDB's `read`)
  const readOnly = (double: CollectionDouble) =>
    new Proxy(double, {
      get(target, name) {
        if (name === 'createIndex') {
          return async () => {
            throw Object.assign(new Error('not authorized on fleet to execute command { createIndexes: "double" }'), { code: 13, codeName: 'Unauthorized' });
          };
        }
        const value: unknown = Reflect.get(target, name, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as unknown as MongoCollection;

  it('opens a set-up collection without creating indexes, and reads it', async () => {
    const { double, store } = onDouble();
    const writer = makeTracker(store);
    await writer.track(k(1));
    const reader = makeTracker(new MongoStore({ collection: readOnly(double) }));
    await reader.init();
    expect((await reader.stats()).byStatus.pending).toBe(1);
    expect((await reader.get(k(1)))?.status).toBe('pending');
  });

  it('leaves an index with options it does not give (hidden, TTL, partial) to createIndex, so the server refuses it as before', async () => {
    const { double, store } = onDouble();
    await makeTracker(store).init();
    const created: string[] = [];
    // as listIndexes shows an index hidden before a drop, and a key index someone gave a TTL
    const options: Record<string, Record<string, unknown>> = { leasehold_status_deadline: { hidden: true }, leasehold_key: { expireAfterSeconds: 60 } };
    const seen = new Proxy(double, {
      get(target, name) {
        if (name === 'listIndexes') {
          return () => ({ toArray: async () => (await target.listIndexes().toArray()).map((i) => ({ ...i, ...options[i.name as string] })) });
        }
        if (name === 'createIndex') return async (spec: Record<string, 1 | -1>, o: { name: string }) => (created.push(o.name), target.createIndex(spec, o));
        const value: unknown = Reflect.get(target, name, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as unknown as MongoCollection;
    await makeTracker(new MongoStore({ collection: seen })).init();
    expect(created.sort()).toEqual(['leasehold_key', 'leasehold_status_deadline']);
    // plain ones are not created again
    created.length = 0;
    delete options.leasehold_status_deadline;
    delete options.leasehold_key;
    await makeTracker(new MongoStore({ collection: seen })).init();
    expect(created).toEqual([]);
  });

  // a partial or otherwise restricted unique index on the key fields was taken as keeping keys
  // unique (a key could then be tracked twice), and a non-unique one was said to be on other fields
  it('init refuses a leasehold_key on the key fields that is not unique, or has other options, naming what to change', async () => {
    const { double } = onDouble();
    await double.createIndex({ 'key.logId': 1, 'key.partnerCode': 1, 'key.seq': 1 }, { name: 'leasehold_key' });
    const error = await makeTracker(new MongoStore({ collection: double as unknown as MongoCollection })).init().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).failure).toBe('schema');
    expect(String(error)).toMatch(/the index `leasehold_key` exists on the key fields, but it is not unique: leasehold needs it unique with no other option.*dropIndex\('leasehold_key'\)/);
    // unique among some items only, as a server may answer it (IndexKeySpecsConflict)
    const other = onDouble().double;
    await makeTracker(new MongoStore({ collection: other as unknown as MongoCollection })).init();
    const partial = new Proxy(other, {
      get(target, name) {
        if (name === 'listIndexes') {
          return () => ({ toArray: async () => (await target.listIndexes().toArray()).map((i) => (i.name === 'leasehold_key' ? { ...i, partialFilterExpression: { status: 'pending' } } : i)) });
        }
        if (name === 'createIndex') {
          return async (spec: Record<string, 1 | -1>, o: { name: string }) => {
            if (o.name === 'leasehold_key') throw Object.assign(new Error('An existing index has the same name as the requested index'), { code: 86, codeName: 'IndexKeySpecsConflict' });
            return target.createIndex(spec, o);
          };
        }
        const value: unknown = Reflect.get(target, name, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as unknown as MongoCollection;
    const refused = await makeTracker(new MongoStore({ collection: partial })).init().catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StoreError);
    expect(String(refused)).toMatch(/exists on the key fields, but it has `partialFilterExpression`: leasehold needs it unique with no other option/);
    // the key fields indexed under another name: the server's error, naming that index (no advice
    // about a `leasehold_key` that does not exist)
    const named = onDouble().double;
    await named.createIndex({ 'key.logId': 1, 'key.partnerCode': 1, 'key.seq': 1 }, { name: 'my_key', unique: true });
    const byName = await makeTracker(new MongoStore({ collection: named as unknown as MongoCollection })).init().catch((e: unknown) => e);
    expect(String(byName)).toContain('Index already exists with a different name: my_key');
    expect(String(byName)).not.toContain('leasehold_key_next');
  });

  // every query and index inherits a collection's default collation: with a case-insensitive one,
  // `track({ logId: 'abc' })` found the item of 'ABC', and a claim by key took it
  it('init refuses a collection with a default collation, naming it', async () => {
    const double = new CollectionDouble();
    const collated = new Proxy(double, {
      get(target, name) {
        // as listIndexes shows the indexes of a collection created with a collation
        if (name === 'listIndexes') return () => ({ toArray: async () => (await target.listIndexes().toArray()).map((i) => ({ ...i, collation: { locale: 'en', caseLevel: false, strength: 2, version: '57.1' } })) });
        const value: unknown = Reflect.get(target, name, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as unknown as MongoCollection;
    const error = await makeTracker(new MongoStore({ collection: collated })).init().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).failure).toBe('schema');
    expect(String(error)).toMatch(/has a default collation \(\{ locale: "en", caseLevel: false, strength: 2 \}\), which its indexes and queries inherit.*Use a collection without a default collation/);
    // the simple collation is no collation
    await makeTracker(new MongoStore({ collection: double as unknown as MongoCollection })).init();
  });

  it('an item whose deadline a hand edit removed still reads (notBefore null), and others with it', async () => {
    const { double, store } = onDouble();
    const tracker = makeTracker(store);
    await tracker.track(k(1));
    await tracker.track(k(2));
    await double.admin.updateMany({ 'key.logId': k(1).logId }, [{ $unset: 'deadline' }]);
    expect((await tracker.get(k(1)))?.notBefore).toBeNull();
    expect((await tracker.find({ status: 'pending' })).map((i) => i.key)).toHaveLength(2);
  });

  it('still creates what is missing (and so fails for that role on a collection not set up)', async () => {
    const double = new CollectionDouble();
    const error = await makeTracker(new MongoStore({ collection: readOnly(double) }))
      .init()
      .catch((e: unknown) => e);
    expect(String((error as Error).cause ?? error)).toMatch(/not authorized/);
    // a status index on other fields is no reason to skip creating the right one
    const { double: other, store } = onDouble();
    await other.createIndex({ status: 1, deadline: 1 }, { name: 'leasehold_status_deadline' });
    await expect(makeTracker(store).init()).rejects.toThrow(/An existing index has the same name as the requested index/);
  });
});

describe('MongoStore reads: decisions on the primary, reports where configured', () => {
  it('every read behind a transition goes to the primary with read concern local; get, find and stats follow reportingReadPreference with majority read concern; writes use majority', async () => {
    const { double, store } = onDouble({ reportingReadPreference: 'secondaryPreferred' });
    const tracker = makeTracker(store);
    const during = async (fn: () => Promise<unknown>): Promise<DoubleCall[]> => {
      const from = double.log.length;
      await fn();
      return double.log.slice(from);
    };
    const reads = (calls: DoubleCall[]) => calls.filter((c) => ['find', 'aggregate', 'distinct'].includes(c.command));
    const decisions: DoubleCall[] = [];
    const reports: DoubleCall[] = [];
    for (let i = 0; i < 6; i++) await tracker.track(k(i));
    let leases = [] as Awaited<ReturnType<typeof tracker.claimBatch<'download'>>>;
    decisions.push(...(await during(async () => void (leases = await tracker.claimBatch('download', { owner: 'w', limit: 4 })))));
    const stale = leases[3]!;
    await tracker.release(stale);
    decisions.push(...(await during(() => tracker.completeBatch(leases.slice(0, 2)))));
    decisions.push(...(await during(() => tracker.failBatch([{ lease: leases[2]!, error: 'x' }]))));
    // a lost lease reads who holds the item now
    decisions.push(...(await during(() => expect(tracker.complete(stale)).rejects.toThrow(LeaseLostError))));
    await tracker.claim('download', { owner: 'w' });
    await backdate(double as unknown as MongoCollection, TTL + 1);
    decisions.push(...(await during(() => tracker.reapStale())));
    decisions.push(...(await during(() => tracker.purge({ status: 'failed' }))));
    reports.push(...(await during(() => tracker.get(k(1)))));
    reports.push(...(await during(() => tracker.find())));
    reports.push(...(await during(() => tracker.find({ status: 'pending' }))));
    reports.push(...(await during(() => tracker.stats())));

    expect(reads(decisions).length).toBeGreaterThanOrEqual(5);
    for (const call of reads(decisions)) {
      // the newest state on the primary, pinned: a client's readConcernLevel=majority would
      // otherwise make it read a majority snapshot, which lags the primary
      expect(call.options, `${call.command} ${JSON.stringify(call.filter)}`).toMatchObject({ readPreference: 'primary', readConcern: { level: 'local' } });
    }
    expect(new Set(reads(reports).map((c) => c.command))).toEqual(new Set(['find', 'distinct', 'aggregate']));
    for (const call of reads(reports)) {
      expect(call.options, `${call.command} ${JSON.stringify(call.filter)}`).toMatchObject({ readPreference: 'secondaryPreferred', readConcern: { level: 'majority' } });
    }
    const writes = double.log.filter((c) => ['findOneAndUpdate', 'deleteMany'].includes(c.command));
    for (const call of writes) expect(call.options.writeConcern, call.command).toEqual({ w: 'majority' });
  });

  // the driver takes a command's write concern instead of the collection's: the store's
  // `{ w: 'majority' }` dropped a `wtimeoutMS` from the connection string, and a majority write
  // that could not be acknowledged (a PSA set with its secondary down) waited for ever
  it('writes keep the collection\'s wtimeoutMS and journal, with w majority unless the store says otherwise', async () => {
    for (const [given, expected] of [
      [undefined, { w: 'majority', wtimeoutMS: 5_000, journal: true }],
      [{ w: 1 }, { w: 1, wtimeoutMS: 5_000, journal: true }],
      [{ wtimeoutMS: 100 }, { w: 'majority', wtimeoutMS: 100, journal: true }],
    ] as const) {
      const double = new CollectionDouble();
      // as a driver Collection shows the connection string's `w=1&wtimeoutMS=5000&journal=true`
      Object.defineProperty(double, 'writeConcern', { value: { w: 1, wtimeout: 5_000, wtimeoutMS: 5_000, j: true, journal: true } });
      const tracker = makeTracker(new MongoStore({ collection: double as unknown as MongoCollection, ...(given ? { writeConcern: given } : {}) }));
      await tracker.track(k(1));
      await tracker.complete((await tracker.claim('download', { owner: 'w' }))!);
      const writes = double.log.filter((c) => c.command === 'findOneAndUpdate');
      expect(writes.length).toBe(3);
      for (const call of writes) expect(call.options.writeConcern).toEqual(expected);
    }
  });

  it('reporting reads default to the primary', async () => {
    const { double, store } = onDouble();
    const tracker = makeTracker(store);
    await tracker.track(k(1));
    const from = double.log.length;
    await tracker.get(k(1));
    await tracker.stats();
    for (const call of double.log.slice(from)) expect(call.options).toMatchObject({ readPreference: 'primary', readConcern: { level: 'majority' } });
  });
});

describe('MongoStore when a batch claim is interrupted (a failover mid-batch)', () => {
  const networkError = () => Object.assign(new Error('connection 3 to 10.0.0.1:27017 closed'), { name: 'MongoNetworkError' });

  it('returns the items it did claim, so none is left held by nobody; with none claimed the error is a transient StoreError', async () => {
    const { double, store } = onDouble();
    const tracker = makeTracker(store);
    for (let i = 0; i < 6; i++) await tracker.track(k(i));
    double.failNext('findOneAndUpdate', networkError(), 2, 4);
    const leases = await tracker.claimBatch('download', { owner: 'w', limit: 6 });
    expect(leases.map((l) => l.key.seq)).toEqual([0, 1]);
    expect((await tracker.stats()).byStatus).toMatchObject({ downloading: 2, pending: 4 });
    double.failNext('findOneAndUpdate', networkError(), 0, 4);
    const error = await tracker.claimBatch('download', { owner: 'w', limit: 6 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).transient).toBe(true);
    expect((await tracker.claimBatch('download', { owner: 'w', limit: 6 })).map((l) => l.key.seq)).toEqual([2, 3, 4, 5]);
  });

  // a short answer read as "no more items": retryAll returned a count with items left behind
  it('an operator retryAll cut short by the failover says so (a transient StoreError), instead of a short count', async () => {
    const { double, store } = onDouble();
    const tracker = makeTracker(store, { maxAttempts: 1 });
    for (let i = 0; i < 6; i++) await tracker.track(k(i));
    const leases = await tracker.claimBatch('download', { owner: 'w', limit: 6 });
    await tracker.failBatch(leases.map((lease) => ({ lease, error: new Error('x'), retry: false })));
    double.failNext('findOneAndUpdate', networkError(), 2, 1);
    const error = await tracker.retryAll().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).transient).toBe(true);
    // run again, as the error says: the rest goes back
    expect(await tracker.retryAll()).toBe(1);
    expect((await tracker.stats()).byStatus).toMatchObject({ pending: 6, failed: 0 });
  });
});

describe('MongoStore regressions', () => {
  const networkError = () => Object.assign(new Error('connection 3 to 10.0.0.1:27017 closed'), { name: 'MongoNetworkError' });
  /** A pending item as a hand (or an old version) wrote it; `over` replaces fields. */
  const stored = (over: Document) => {
    const now = new Date();
    return { stage: null, status: 'pending', data: {}, attempts: 0, fence: 0, owner: null, deadline: new Date(now.getTime() - 1_000), lastError: null, createdAt: now, updatedAt: now, claimedAt: null, finishedAt: null, ...over };
  };
  /** Replaces the double's findOneAndUpdate for the test: `fn` gets the real one and the call's number. */
  const interceptUpdates = (double: CollectionDouble, fn: (real: CollectionDouble['findOneAndUpdate'], n: number, ...args: Parameters<CollectionDouble['findOneAndUpdate']>) => ReturnType<CollectionDouble['findOneAndUpdate']>) => {
    const real = double.findOneAndUpdate.bind(double);
    let n = 0;
    Object.assign(double, { findOneAndUpdate: (...args: Parameters<CollectionDouble['findOneAndUpdate']>) => fn(real, n++, ...args) });
  };

  it('track of an existing item whose stored data is null keeps it null (no field of an existing item is filled in)', async () => {
    const { store } = onDouble();
    await store.init({ keyFields: [{ name: 'id', type: 'string' }] });
    await store.insert({ key: { id: 'a' }, status: 'pending', data: { path: '/first' } });
    await store.update({ key: { id: 'a' }, status: ['pending'] }, { status: 'done', data: null, owner: null, lastError: null }, { limit: 1 });
    const again = await store.insert({ key: { id: 'a' }, status: 'pending', data: { path: '/second' } });
    expect(again.created).toBe(false);
    expect(again.item).toMatchObject({ status: 'done', data: null });
    expect((await store.find({ key: { id: 'a' }, status: [] }))[0]).toMatchObject({ status: 'done', data: null });
    // a new item still gets every field
    const fresh = await store.insert({ key: { id: 'b' }, status: 'pending', data: null });
    expect(fresh).toMatchObject({ created: true, item: { status: 'pending', data: null, attempts: 0, fence: 0, owner: null, stage: null } });
  });

  it('a stored item whose key lacks a field does not stop reapStale or a batch claim for the others', async () => {
    const { double, store } = onDouble();
    const tracker = makeTracker(store, { backoff: () => 0 });
    await tracker.init();
    const past = new Date(Date.now() - 60_000);
    const held = { status: 'downloading', stage: 'download', attempts: 1, fence: 1, owner: 'dead', deadline: past, claimedAt: past };
    double.admin.insertMany([stored({ ...held, key: { logId: 'bad', partnerCode: 'acme' } }), stored({ ...held, key: k(1) })]);
    expect(await tracker.reapStale()).toEqual({ retried: 2, failed: 0 });
    expect(await tracker.get(k(1))).toMatchObject({ status: 'pending', fence: 2 });
    // claimed together: the bad one is parked (its key does not fit the schema), the good one handed out
    tracker.on('error', () => {});
    const leases = await tracker.claimBatch('download', { owner: 'w', limit: 5 });
    expect(leases.map((l) => l.key)).toEqual([k(1)]);
    expect(double.admin.find({ 'key.logId': 'bad' })[0]).toMatchObject({ status: 'failed', lastError: expect.stringContaining('invalid stored item') });
  });

  it('update() over more than one window with a change that leaves items matching takes each item once', async () => {
    for (const [options, change] of [
      [{ limit: 600, ordered: true, returning: 'state' }, { lastError: 'x', bumpFence: true }],
      [{}, { bumpFence: true, deadline: { ms: 0 } }],
    ] as const) {
      const { double, store } = onDouble();
      await store.init({ keyFields: [{ name: 'n', type: 'number' }] });
      const base = Date.now() - 60_000;
      // more than one window (500), with deadlines shared across the window's edge
      double.admin.insertMany(Array.from({ length: 550 }, (_, n) => stored({ key: { n }, deadline: new Date(base + (n % 300) * 10) })));
      const rows = await store.update({ status: ['pending'], deadline: 'passed' }, change, options);
      expect(rows).toHaveLength(550);
      expect(new Set(rows.map((r) => r.ref)).size).toBe(550);
      expect(double.admin.find({}).map((d) => d.fence)).toEqual(Array.from({ length: 550 }, () => 1));
    }
  });

  it('completeBatch: one update that fails does not fail the others; its item read back tells what it did', async () => {
    const setup = async () => {
      const { double, store } = onDouble();
      const tracker = makeTracker(store);
      for (let i = 0; i < 3; i++) await tracker.track(k(i));
      const leases = await tracker.claimBatch('download', { owner: 'w', limit: 3 });
      return { double, tracker, leases };
    };
    // not applied (the command failed before the server ran it): sent once more
    {
      const { double, tracker, leases } = await setup();
      double.failNext('findOneAndUpdate', networkError(), 2, 1);
      const from = double.log.length;
      expect((await tracker.completeBatch(leases)).map((r) => r.ok)).toEqual([true, true, true]);
      expect((await tracker.stats()).byStatus).toMatchObject({ downloaded: 3, downloading: 0 });
      const readBack = double.log.slice(from).find((c) => c.command === 'find')!;
      expect(readBack.options).toMatchObject({ readPreference: 'primary', readConcern: { level: 'local' } });
    }
    // applied, the answer lost: reported as applied, not sent again
    {
      const { double, tracker, leases } = await setup();
      interceptUpdates(double, async (real, n, ...args) => {
        const doc = await real(...args);
        if (n === 1) throw networkError();
        return doc;
      });
      const from = double.log.length;
      expect((await tracker.completeBatch(leases)).map((r) => r.ok)).toEqual([true, true, true]);
      expect(double.log.slice(from).filter((c) => c.command === 'findOneAndUpdate')).toHaveLength(3);
    }
    // not applied, and the guard no longer holds (cancelled meanwhile): a lost lease
    {
      const { double, tracker, leases } = await setup();
      interceptUpdates(double, async (real, n, ...args) => {
        if (n !== 0) return real(...args);
        await tracker.cancel(k(0), { reason: 'operator' });
        throw networkError();
      });
      const results = await tracker.completeBatch(leases);
      expect(results.map((r) => r.ok)).toEqual([false, true, true]);
      expect(results[0]).toMatchObject({ ok: false, error: { name: 'LeaseLostError' } });
    }
    // cannot be told (the read fails too): the batch throws a transient StoreError; the others were applied
    {
      const { double, tracker, leases } = await setup();
      double.failNext('findOneAndUpdate', networkError(), 2, 1);
      double.failNext('find', networkError());
      const error = await tracker.completeBatch(leases).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(StoreError);
      expect((error as StoreError).transient).toBe(true);
      expect((await tracker.stats()).byStatus).toMatchObject({ downloaded: 2, downloading: 1 });
    }
  });

  // the item that won was read with read concern local, so the loser could answer `created:
  // false` for an item a failover might still roll back
  it('track sends its upsert again when another upsert of the key won (E11000), and answers created: false from the write, not a read', async () => {
    const { double, store } = onDouble();
    const tracker = makeTracker(store);
    await tracker.init();
    interceptUpdates(double, async (real, n, ...args) => {
      if (n !== 0) return real(...args);
      // the other process's upsert of the key lands first
      await real(...args);
      throw Object.assign(new Error('E11000 duplicate key error collection: leasehold_test.double index: leasehold_key'), { name: 'MongoServerError', code: 11000 });
    });
    const from = double.log.length;
    expect(await tracker.track(k(1), { path: '/a' })).toMatchObject({ created: false, item: { key: k(1), status: 'pending' } });
    expect(double.log.slice(from).map((c) => c.command)).toEqual(['findOneAndUpdate', 'findOneAndUpdate']);
    expect(double.admin.find({})).toHaveLength(1);
  });

  it('track retries when the item that refused its upsert (E11000) was deleted before it could be read; a clash on another unique index is thrown', async () => {
    const { double, store } = onDouble();
    const tracker = makeTracker(store);
    await tracker.init();
    // the race: another upsert of the key won, then a purge deleted it before this one read it
    interceptUpdates(double, async (real, n, ...args) => {
      if (n === 0) throw Object.assign(new Error('E11000 duplicate key error collection: leasehold_test.double index: leasehold_key'), { name: 'MongoServerError', code: 11000 });
      return real(...args);
    });
    const result = await tracker.track(k(1), { path: '/a' });
    expect(result).toMatchObject({ created: true, item: { key: k(1), status: 'pending', data: { path: '/a' } } });
    // a clash that outlasts the retries is not on the key: the server's error, naming its index
    await double.createIndex({ 'data.path': 1 }, { name: 'one_item_per_path', unique: true });
    const error = await tracker.track(k(2), { path: '/a' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(String(error)).toContain('one_item_per_path');
  });

  it('init keeps a leasehold_key on the same fields in another order, and names the safe steps when the fields changed', async () => {
    const { double, store } = onDouble();
    await store.init({ keyFields: [{ name: 'seq', type: 'number' }, { name: 'logId', type: 'string' }, { name: 'partnerCode', type: 'string' }] });
    // the double refuses a name taken by another key spec, as a server does
    const refused = await double.createIndex({ 'key.logId': 1 }, { name: 'leasehold_key', unique: true }).catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 86, codeName: 'IndexKeySpecsConflict' });
    // the Tracker declares the same fields in another order: same uniqueness, nothing to change
    const tracker = makeTracker(new MongoStore({ collection: double as unknown as MongoCollection }));
    await tracker.init();
    await tracker.track(k(1));
    expect(await tracker.track(k(1))).toMatchObject({ created: false });
    // a field added: init fails, saying what to do
    const wider = new MongoStore({ collection: double as unknown as MongoCollection });
    const schema = { keyFields: [...['logId', 'partnerCode', 'seq'].map((name) => ({ name, type: 'string' as const })), { name: 'region', type: 'string' as const }] };
    const error = await wider.init(schema).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).failure).toBe('schema');
    expect((error as StoreError).operation).toBe('init');
    expect(String(error)).toContain('it has (seq, logId, partnerCode), the Tracker declares (logId, partnerCode, seq, region)');
    // the steps it names work, with a unique index on the key at every point
    await double.createIndex({ 'key.logId': 1, 'key.partnerCode': 1, 'key.seq': 1, 'key.region': -1 }, { name: 'leasehold_key_next', unique: true });
    expect(String(error)).toContain(`db.getCollection("double").createIndex({ "key.logId": 1, "key.partnerCode": 1, "key.seq": 1, "key.region": -1 }, { name: 'leasehold_key_next', unique: true })`);
    await double.dropIndex('leasehold_key');
    await wider.init(schema);
    await double.dropIndex('leasehold_key_next');
    expect(double.indexes.find((i) => i.name === 'leasehold_key')?.key).toEqual({ 'key.logId': 1, 'key.partnerCode': 1, 'key.seq': 1, 'key.region': 1 });
  });
});

/**
 * Commands per batch path for `n` items: claimBatch, completeBatch, failBatch and a reap of one
 * stage. `commands` counts what reached the server (or the double), cursor commands included.
 */
async function batchCosts(store: Store, coll: MongoCollection, commands: () => number, n: number): Promise<Record<string, number>> {
  const tracker = makeTracker(store);
  await tracker.init();
  for (let i = 0; i < n; i++) await tracker.track(k(i));
  const cost = async (fn: () => Promise<unknown>) => {
    const before = commands();
    await fn();
    return commands() - before;
  };
  const costs: Record<string, number> = {};
  let leases = [] as Awaited<ReturnType<typeof tracker.claimBatch<'download' | 'process'>>>;
  costs.claimBatch = await cost(async () => void (leases = await tracker.claimBatch('download', { owner: 'w', limit: n })));
  expect(leases).toHaveLength(n);
  costs.completeBatch = await cost(async () => expect((await tracker.completeBatch(leases)).every((r) => r.ok)).toBe(true));
  leases = await tracker.claimBatch('process', { owner: 'w', limit: n });
  costs.failBatch = await cost(async () => expect((await tracker.failBatch(leases.map((lease) => ({ lease, error: 'x' })))).every((r) => r.ok)).toBe(true));
  await backdate(coll, 60_000);
  expect(await tracker.claimBatch('process', { owner: 'w', limit: n })).toHaveLength(n);
  await backdate(coll, TTL + 1);
  // the download stage has nothing expired (one read); the process stage is one batch
  costs.reapStale = await cost(async () => expect(await tracker.reapStale()).toEqual({ retried: n, failed: 0 }));
  return costs;
}

/**
 * claimBatch: one find of candidates, then one guarded findOneAndUpdate per item; settles: one
 * findOneAndUpdate per lease; a reap: one find per stage, one findOneAndUpdate per expired item.
 * The per-item commands of a batch are sent at once (one wave of round trips), and each answer
 * is exactly what its own update did.
 */
const batchCostsFor = (n: number) => ({ claimBatch: 1 + n, completeBatch: n, failBatch: n, reapStale: 2 + n });

describe(`MongoStore round trips (${source})`, () => {
  it('sends exactly one command per track, claim, renew, complete, fail and release', async () => {
    if (!uri) {
      const { double, store } = onDouble();
      await expectOneRoundTripEach(store, () => double.calls.length);
      return;
    }
    const monitored = await client({ monitorCommands: true });
    let commands = 0;
    monitored.on('commandStarted', () => commands++);
    await expectOneRoundTripEach(new MongoStore({ collection: monitored.db('leasehold_test').collection(`round_trips_${run}`) }), () => commands);
  });

  for (const items of [3, 300]) {
    it(`batch paths for ${items} items: one read, then one findOneAndUpdate per item, sent at once; no getMore`, async () => {
      if (!uri) {
        const { double, store } = onDouble();
        expect(await batchCosts(store, double as unknown as MongoCollection, () => double.calls.length, items)).toEqual(batchCostsFor(items));
        return;
      }
      const monitored = await client({ monitorCommands: true });
      const seen: string[] = [];
      monitored.on('commandStarted', (e: CommandStartedEvent) => seen.push(e.commandName));
      const name = `batch_round_trips_${items}_${run}`;
      const costs = await batchCosts(new MongoStore({ collection: monitored.db('leasehold_test').collection(name) }), collection(name), () => seen.length, items);
      expect(costs, seen.join(' ')).toEqual(batchCostsFor(items));
      expect(seen).not.toContain('getMore');
    });
  }
});

/** Every IXSCAN stage of an explain output, wherever the server nests it. */
function ixscans(node: unknown, out: Document[] = []): Document[] {
  if (Array.isArray(node)) for (const child of node) ixscans(child, out);
  else if (node && typeof node === 'object') {
    if ((node as Document).stage === 'IXSCAN') out.push(node as Document);
    for (const child of Object.values(node)) ixscans(child, out);
  }
  return out;
}

/** The command as the store sent it, ready to explain: session and routing fields removed. */
function explainable(command: Document): Document {
  return Object.fromEntries(Object.entries(command).filter(([key]) => !key.startsWith('$') && !['lsid', 'txnNumber', 'writeConcern', 'readConcern'].includes(key)));
}

// These need a real server; without one the setup banner says they are skipped and why.
describe.skipIf(!uri)('MongoStore on a real server', () => {
  it('4 processes, each with its own MongoClient, claiming the same 60 items: one winner per item', async () => {
    await processRaces({
      store: 'mongodb',
      target: uri,
      tag: run,
      make: (table) => new MongoStore({ collection: main!.db('leasehold_test').collection(table) }),
    });
  }, PROCESS_RACES_TIMEOUT);

  it('claim-next, the reap read and stats, as the store sent them, use the status/deadline index with tight bounds (explain)', async () => {
    const monitored = await client({ monitorCommands: true });
    const sent: CommandStartedEvent[] = [];
    monitored.on('commandStarted', (e: CommandStartedEvent) => sent.push(e));
    const name = `explain_${run}`;
    const tracker = makeTracker(new MongoStore({ collection: monitored.db('leasehold_test').collection(name) }));
    await tracker.init();
    const now = Date.now();
    const doc = (i: number, status: string, deadline: number) => ({
      key: { logId: `l${i}`, partnerCode: 'p', seq: i },
      stage: status === 'pending' ? null : 'download',
      status,
      data: {},
      attempts: status === 'downloading' ? 1 : 0,
      fence: status === 'downloading' ? 1 : 0,
      owner: null,
      deadline: new Date(deadline),
      lastError: null,
      createdAt: new Date(now),
      updatedAt: new Date(now),
      claimedAt: null,
      finishedAt: null,
    });
    const docs = Array.from({ length: 6_000 }, (_, i) => {
      if (i % 3 === 0) return doc(i, 'pending', now + 3_600_000 - i); // waiting on backoff
      if (i % 3 === 1) return doc(i, 'processed', now - i);
      return doc(i, 'downloading', i % 2 ? now - 60_000 - i : now + 3_600_000 + i); // expired or live
    });
    docs.push(doc(6_001, 'pending', now - 1_000));
    await main!.db('leasehold_test').collection(name).insertMany(docs);
    const take = (commandName: string, from: number) => sent.slice(from).find((e) => e.commandName === commandName)!.command;

    let from = sent.length;
    expect(await tracker.claim('download', { owner: 'w' })).not.toBeNull();
    const claimNext = take('findAndModify', from);
    from = sent.length;
    await tracker.reapStale();
    const reapRead = take('find', from);
    from = sent.length;
    await tracker.stats();
    const stats = take('aggregate', from);
    const db = monitored.db('leasehold_test');
    for (const [what, command, status] of [['claim-next', claimNext, 'pending'], ['reap read', reapRead, 'downloading']] as const) {
      const plan = await db.command({ explain: explainable(command), verbosity: 'queryPlanner' });
      const text = JSON.stringify(plan);
      expect(text, what).not.toContain('COLLSCAN');
      const [scan] = ixscans(plan.queryPlanner);
      expect(scan?.indexName, `${what}: ${text}`).toBe('leasehold_status_deadline');
      // one point per status, and a deadline range that ends at the server's now ($$NOW folded), not at MaxKey
      expect(scan!.indexBounds.status, what).toEqual([`["${status}", "${status}"]`]);
      expect((scan!.indexBounds.deadline as string[]).join(' '), `${what}: ${JSON.stringify(scan!.indexBounds)}`).not.toContain('MaxKey');
    }
    const statsPlan = JSON.stringify(await db.command({ explain: explainable(stats), verbosity: 'queryPlanner' }));
    expect(statsPlan).not.toContain('COLLSCAN');
    expect(statsPlan).toContain('leasehold_status_deadline');
  });
});

describe('MongoStore: location', () => {
  it('is the namespace on the client\'s hosts (no credentials); none without a client to tell them', async () => {
    const one = new MongoClient('mongodb://user:secret@h1:27017,h2:27018/?replicaSet=rs');
    const two = new MongoClient('mongodb://h3:27017/');
    // its hosts are resolved at connect, and were empty before
    const srv = new MongoClient('mongodb+srv://user:secret@cluster0.example.net/?retryWrites=true');
    try {
      const at = (client: MongoClient) => new MongoStore({ collection: client.db('app').collection('jobs') as unknown as MongoCollection, changeStreams: false }).location;
      expect(at(one)).toBe('mongodb://h1:27017,h2:27018/app.jobs');
      expect(at(two)).not.toBe(at(one));
      expect(at(one)).not.toContain('secret');
      expect(new MongoStore({ collection: new CollectionDouble() as unknown as MongoCollection }).location).toBeUndefined();
      expect(at(srv)).toBe('mongodb+srv://cluster0.example.net/app.jobs');
    } finally {
      await Promise.all([one.close(), two.close(), srv.close()]);
    }
  });
});
