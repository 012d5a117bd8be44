import { MongoClient, type Collection, type Document } from 'mongodb';
import { afterAll, inject } from 'vitest';
import { MongoStore, type MongoCollection } from '../src/stores/mongodb.js';
import type { Store } from '../src/index.js';
import { storeContract } from './conformance/suite.js';
import { CollectionDouble } from './support/mongo-double.js';

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
  return via ? via.db('leasehold_test').collection(name) : new CollectionDouble();
}

storeContract({
  name: `MongoStore (${source})`,
  raceRepeats: uri ? 100 : 30,
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
    await (collections.get(store) as Collection<Document>).updateMany({ logId: key.logId }, [{ $set: { data: { $literal: { bytes: 'not a number' } } } }]);
  },
});
