import { MongoClient, type Collection, type Document } from 'mongodb';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MongoStore, type MongoCollection } from '../src/stores/mongodb.js';
import type { Store } from '../src/index.js';
import { storeContract } from '../src/testing/suite.js';
import { makeTracker } from '../src/testing/definition.js';
import { CollectionDouble } from './support/mongo-double.js';
import { processRaces } from './support/processes.js';
import { expectOneRoundTripEach } from './support/round-trips.js';

const uri = inject('mongoUri');
const source = inject('mongoSource');
const clients: MongoClient[] = [];
const collections = new WeakMap<Store, MongoCollection>();
const names = new WeakMap<Store, string>();
const run = `${process.pid}_${Date.now() % 1e6}`;
let n = 0;

async function client(): Promise<MongoClient> {
  const c = new MongoClient(uri);
  await c.connect();
  clients.push(c);
  return c;
}
const main = uri ? await client() : undefined;

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

function collection(name: string, via = main): MongoCollection {
  // the double implements only what MongoStore calls, so it is cast to the driver's type
  return via ? via.db('leasehold_test').collection(name) : (new CollectionDouble() as unknown as MongoCollection);
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
    await (collections.get(store) as Collection<Document>).updateMany({}, [{ $set: { deadline: { $subtract: ['$deadline', ms] } } }]);
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
    await (collections.get(store) as Collection<Document>).updateMany({ 'key.logId': key.logId }, [{ $set: { data: { $literal: { bytes: 'not a number' } } } }]);
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

describe(`MongoStore round trips (${source})`, () => {
  it('sends exactly one command per track, claim, renew, complete, fail and release', async () => {
    if (!uri) {
      const double = new CollectionDouble();
      await expectOneRoundTripEach(new MongoStore({ collection: double as unknown as MongoCollection }), () => double.calls.length);
      return;
    }
    const monitored = new MongoClient(uri, { monitorCommands: true });
    await monitored.connect();
    clients.push(monitored);
    let commands = 0;
    monitored.on('commandStarted', () => commands++);
    await expectOneRoundTripEach(new MongoStore({ collection: monitored.db('leasehold_test').collection(`round_trips_${run}`) }), () => commands);
  });
});

// These need a real server; without one the setup banner says they are skipped and why.
describe.skipIf(!uri)('MongoStore on a real server', () => {
  it('4 processes, each with its own MongoClient, claiming the same 60 items: one winner per item', async () => {
    await processRaces({
      store: 'mongodb',
      target: uri,
      tag: run,
      make: (table) => new MongoStore({ collection: main!.db('leasehold_test').collection(table) }),
    });
  });

  it('claim-next and reapStale use the status/deadline index (IXSCAN, no COLLSCAN)', async () => {
    const coll = main!.db('leasehold_test').collection(`explain_${run}`);
    const tracker = makeTracker(new MongoStore({ collection: coll }));
    await tracker.init();
    const docs = Array.from({ length: 5_000 }, (_, i) => ({ key: { logId: `l${i}`, partnerCode: 'p', seq: i }, stage: null, status: i % 2 ? 'pending' : 'processed', data: {}, attempts: 0, fence: 0, owner: null, deadline: new Date(Date.now() - i), lastError: null, createdAt: new Date(), updatedAt: new Date(), claimedAt: null, finishedAt: null }));
    await coll.insertMany(docs);
    const claimNext = { status: { $in: ['pending'] }, attempts: { $lt: 3 }, $expr: { $lte: ['$deadline', '$$NOW'] } };
    const reap = { status: { $in: ['downloading'] }, attempts: { $lt: 3 }, $expr: { $lte: ['$deadline', '$$NOW'] } };
    for (const filter of [claimNext, reap]) {
      const plan = JSON.stringify(await coll.find(filter).sort({ deadline: 1, _id: 1 }).limit(1).explain('queryPlanner'));
      expect(plan).toContain('IXSCAN');
      expect(plan).not.toContain('COLLSCAN');
    }
  });
});
