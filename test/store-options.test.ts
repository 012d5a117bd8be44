// Each store's constructor checks its options as `new Tracker` does: a misspelt one (a typo in
// `replicas` dropped the WAIT that guards claims across a Redis failover) is refused with the
// nearest name, and a value of the wrong type says what it got. The clients are real and never
// connect (no store call is made).
import Database from 'better-sqlite3';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, StoreError } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory.js';
import { MongoStore } from '../src/stores/mongodb.js';
import { PostgresStore } from '../src/stores/postgres.js';
import { RedisStore } from '../src/stores/redis.js';
import { SqliteStore } from '../src/stores/sqlite.js';
import { makeTracker } from '../src/testing/definition.js';

const pool = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none' });
const redis = new Redis({ lazyConnect: true });
const mongo = new MongoClient('mongodb://127.0.0.1:1');
const dir = mkdtempSync(join(tmpdir(), 'leasehold-store-options-'));
afterAll(async () => {
  await pool.end();
  redis.disconnect();
  await mongo.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Options as JavaScript passes them. */
const loose = (options: object) => options as never;

describe('a misspelt store option is refused, naming the store and the option meant', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['MemoryStore', () => new MemoryStore(loose({ clok: () => 0 })), /`clok`: \[memory\] no such option; did you mean `clock`\? \(`new MemoryStore\(\)` takes clock\)/],
    ['SqliteStore', () => new SqliteStore(loose({ filename: join(dir, 'a.db'), table: 't', busyTimeout: 10 })), /`busyTimeout`: \[sqlite\] no such option; did you mean `busyTimeoutMs`\?/],
    ['PostgresStore', () => new PostgresStore(loose({ pool, table: 't', preparedStatement: false })), /`preparedStatement`: \[postgres\] no such option; did you mean `preparedStatements`\?/],
    ['MongoStore', () => new MongoStore(loose({ collection: mongo.db('d').collection('c'), writeconcern: { w: 1 } })), /`writeconcern`: \[mongodb\] no such option; did you mean `writeConcern`\?/],
    ['RedisStore', () => new RedisStore(loose({ client: redis, prefix: 'p', replica: { count: 1 } })), /`replica`: \[redis\] no such option; did you mean `replicas`\?/],
    ['RedisStore replicas', () => new RedisStore(loose({ client: redis, prefix: 'p', replicas: { count: 1, timeout: 50 } })), /`replicas.timeout`: \[redis\] no such option; did you mean `replicas.timeoutMs`\?/],
  ];
  it.each(cases)('%s', (_, make, message) => {
    expect(make).toThrow(ConfigError);
    expect(make).toThrow(message);
  });
});

describe('a store option of the wrong type says what it got', () => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['MemoryStore clock', () => new MemoryStore(loose({ clock: 123 })), /`clock`: \[memory\] expected a function .*got `123` \(number\)/],
    ['SqliteStore filename', () => new SqliteStore(loose({ filename: 123, table: 't' })), /`filename`: \[sqlite\] expected a path .*got `123` \(number\)/],
    ['SqliteStore database null', () => new SqliteStore(loose({ database: null, table: 't' })), /`database`: \[sqlite\] expected an open better-sqlite3 Database .*got `null`/],
    ['SqliteStore database {}', () => new SqliteStore(loose({ database: {}, table: 't' })), /`database`: \[sqlite\] expected an open better-sqlite3 Database/],
    ['PostgresStore preparedStatements', () => new PostgresStore(loose({ pool, table: 't', preparedStatements: 'false' })), /`preparedStatements`: \[postgres\] expected `true` or `false`, got `"false"` \(string\)/],
    ['MongoStore writeConcern w: 0', () => new MongoStore(loose({ collection: mongo.db('d').collection('c'), writeConcern: { w: 0 } })), /`writeConcern`: \[mongodb\] `w: 0` \(unacknowledged writes\) cannot carry a claim.*Use `w: 1` or `'majority'`/],
    ['MongoStore writeConcern a string', () => new MongoStore(loose({ collection: mongo.db('d').collection('c'), writeConcern: 'majority' })), /`writeConcern`: \[mongodb\] expected write concern settings .*got `"majority"` \(string\)/],
    ['RedisStore notifications', () => new RedisStore(loose({ client: redis, prefix: 'p', notifications: 'false' })), /`notifications`: \[redis\] expected `true` or `false`, got `"false"` \(string\)/],
    ['RedisStore node-redis', () => new RedisStore(loose({ client: { evalSha() {} }, prefix: 'p' })), /`client`: \[redis\] expected an `ioredis` client .*no `evalsha` \(this looks like a node-redis client/],
    ['a store without options', () => new SqliteStore(undefined as never), /`options`: \[sqlite\] expected an object of options/],
    ['SqliteStore table given as a URL', () => new SqliteStore(loose({ filename: join(dir, 'u.db'), table: new URL('postgres://u:secret@h/db') })), /got a URL\. Names are validated/],
    ['RedisStore replicas.count', () => new RedisStore(loose({ client: redis, prefix: 'p', replicas: { count: '2' } })), /`replicas.count`: \[redis\] expected a positive integer, got `"2"` \(string\)/],
    ['MongoStore changeStreams', () => new MongoStore(loose({ collection: mongo.db('d').collection('c'), changeStreams: 'no' })), /`changeStreams`: \[mongodb\] expected `true` or `false`, got `"no"` \(string\)/],
  ];
  it.each(cases)('%s', (_, make, message) => {
    expect(make).toThrow(ConfigError);
    expect(make).toThrow(message);
  });

  it('an object in the wrong place is named by its kind, never shown (a pool holds its connection string)', () => {
    let error: Error | undefined;
    try {
      new SqliteStore(loose({ database: pool, table: 't' }));
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).toMatch(/`database`: \[sqlite\] expected an open better-sqlite3 Database \(`new Database\(path\)`\), got a \w*Pool\./);
    expect(error?.message).not.toMatch(/nobody|127\.0\.0\.1/);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(() => new MemoryStore(loose({ clock: circular }))).toThrow(/`clock`: \[memory\] expected a function .*got an object\./);
  });

  it('SqliteStore refuses busyTimeoutMs beside a database it did not open (it would not apply)', () => {
    const database = new Database(':memory:');
    expect(() => new SqliteStore({ database, table: 't', busyTimeoutMs: 100 })).toThrow(/`busyTimeoutMs`: \[sqlite\] applies to a connection the store opens/);
    database.close();
  });

  it('a MemoryStore clock that returns no time fails the call, naming it, instead of storing Invalid Dates', async () => {
    const tracker = makeTracker(new MemoryStore({ clock: () => Number.NaN }));
    await expect(tracker.track({ logId: 'l', partnerCode: 'p', seq: 1 })).rejects.toThrow(/\[memory\] the clock returned `NaN` \(number\); it must return epoch milliseconds or a valid Date/);
    const invalid = makeTracker(new MemoryStore({ clock: () => new Date(Number.NaN) }));
    await expect(invalid.track({ logId: 'l', partnerCode: 'p', seq: 1 })).rejects.toThrow(/the clock returned an Invalid Date;/);
  });
});

describe('SqliteStore opening and closing', () => {
  it('a file that is no database fails init, naming the file, and leaves no connection open however often it is tried', async () => {
    const file = join(dir, 'not-a-database.db');
    writeFileSync(file, 'plain text, not SQLite '.repeat(100));
    const tracker = makeTracker(new SqliteStore({ filename: file, table: 'items' }));
    const before = readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 20; i++) {
      await expect(tracker.init()).rejects.toThrow(/cannot open `.*not-a-database\.db` as a SQLite database in WAL mode \(file is not a database\); check the `filename` option/);
    }
    expect(readdirSync('/proc/self/fd').length - before).toBeLessThan(3);
  });

  it('a closed store says it was closed, not that it needs init; a new Tracker on it opens the file again', async () => {
    const store = new SqliteStore({ filename: join(dir, 'closed.db'), table: 'items' });
    const tracker = makeTracker(store);
    const key = { logId: 'l', partnerCode: 'p', seq: 1 };
    await tracker.track(key);
    await store.close();
    const error = await tracker.get(key).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as Error).message).toMatch(/this store was closed \(`close\(\)`\), and a Tracker runs `init` once: make a new Tracker on the store \(its `init` opens the file again\)/);
    expect((await makeTracker(store).get(key))?.status).toBe('pending');
    await store.close();
  });

  it('a closed store on a database the caller opened takes it back for a new Tracker (close() left it open)', async () => {
    const database = new Database(join(dir, 'given.db'));
    const store = new SqliteStore({ database, table: 'items' });
    const key = { logId: 'l', partnerCode: 'p', seq: 1 };
    await makeTracker(store).track(key);
    await store.close();
    expect(database.open).toBe(true);
    expect((await makeTracker(store).get(key))?.status).toBe('pending');
    database.close();
  });

  it('close() while init opens the file closes that connection, also when another init begins meanwhile', async () => {
    const store = new SqliteStore({ filename: join(dir, 'racing.db'), table: 'items' });
    const open = () => readdirSync('/proc/self/fd').length;
    const before = open();
    // each round on its own: a leak in one round must not be hidden by the next round's close()
    for (let i = 0; i < 5; i++) {
      const opening = makeTracker(store).init();
      await store.close();
      await expect(opening).rejects.toThrow(/this store was closed/);
      expect(open() - before, `round ${i}`).toBeLessThan(3);
    }
    // a close() between two inits: the first connection is closed, the second kept
    const first = makeTracker(store).init();
    await store.close();
    const second = makeTracker(store);
    await second.init();
    await expect(first).rejects.toThrow(/this store was closed/);
    expect(await second.get({ logId: 'l', partnerCode: 'p', seq: 1 })).toBeNull();
    await store.close();
    expect(open() - before).toBeLessThan(3);
  });
});
