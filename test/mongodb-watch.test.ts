import { MongoClient } from 'mongodb';
import { afterAll, afterEach, describe, expect, inject, it, vi } from 'vitest';
import { ConfigError, type StoreChange } from '../src/index.js';
import { MongoStore, type MongoCollection, type MongoStoreOptions } from '../src/stores/mongodb.js';
import { changePipeline, toChange } from '../src/stores/mongodb/change-events.js';
import { DENIED_RETRY_MS } from '../src/stores/mongo-watcher.js';
import { k, makeTracker, type TestTracker } from '../src/testing/definition.js';
import { CollectionDouble } from './support/mongo-double.js';

/**
 * Cross-process wake-ups of MongoStore through change streams. Most tests run on the in-process
 * Collection double, whose `watch()` models a replica set's change stream (see
 * test/support/mongo-double.ts); two trackers on one collection stand for two processes, since
 * a tracker's own writes wake only its own workers and anything else must come through the
 * stream. Every worker here polls only every 60 s: an item handled before the test's timeout
 * was handled because of a wake-up. No assertion is made on elapsed time.
 */
const POLL = { pollMinMs: 60_000, pollMaxMs: 60_000, reapIntervalMs: false } as const;
const uri = inject('mongoUri');

if (!uri) {
  console.log(
    `\n${'='.repeat(100)}\n[leasehold tests] mongodb-watch: NO REAL MONGODB SERVER. The change-stream tests run on the in-process\n` +
      '  double; "MongoStore change streams on a real replica set" is SKIPPED. Set MONGODB_URI=mongodb://... (a replica set)\n' +
      `  or let mongodb-memory-server download a mongod to run it.\n${'='.repeat(100)}\n`,
  );
}

const workers: Array<{ stop(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.stop()));
});

/** A store on `double` (a collection of its own per store object, as two processes have). */
function store(double: CollectionDouble, options: Omit<MongoStoreOptions, 'collection' | 'db'> = {}) {
  return new MongoStore({ ...options, collection: double as unknown as MongoCollection });
}

/** Waits for `cond`, looking every few ms; the test's timeout is the only limit. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Waits until the double has received no command for 50 turns of the event loop (workers asleep). */
async function quiet(double: CollectionDouble): Promise<void> {
  for (let still = 0, seen = double.log.length; still < 50; still++) {
    await new Promise((resolve) => setImmediate(resolve));
    if (double.log.length !== seen) [still, seen] = [0, double.log.length];
  }
}

/** A worker of `tracker` on `stage` that records the logIds it handles. */
function work(tracker: TestTracker, stage: 'download' | 'process' = 'download') {
  const handled: string[] = [];
  const worker = tracker.work(stage, async (lease) => void handled.push(lease.key.logId), { ...POLL });
  workers.push(worker);
  return { worker, handled };
}

/** Subscribes to a store's `watch` and collects what it reports. */
function listen(s: MongoStore) {
  const changes: StoreChange[] = [];
  const stop = s.watch!((change) => changes.push(change));
  return { changes, stop };
}

describe('MongoStore change streams (on the double)', () => {
  it('wakes an idle worker of another tracker when an item is tracked, released, or failed with no backoff', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    const here = makeTracker(store(double), { backoff: () => 0 });
    const there = makeTracker(store(double), { backoff: () => 0 });
    // two items held elsewhere before the worker starts: its first claims find nothing
    await there.track(k(2));
    await there.track(k(3));
    const held2 = (await there.claim('download', { owner: 'other', key: k(2) }))!;
    const held3 = (await there.claim('download', { owner: 'other', key: k(3) }))!;
    const { handled } = work(here);
    await until(() => double.openStreams === 1);
    await quiet(double);

    await there.track(k(1));
    await until(() => handled.includes('log-1'));
    await quiet(double);

    await there.release(held2);
    await until(() => handled.includes('log-2'));
    await quiet(double);

    await there.fail(held3, new Error('try again'));
    await until(() => handled.includes('log-3'));
    expect(handled).toEqual(['log-1', 'log-2', 'log-3']);
    expect(double.watchCalls).toHaveLength(1);
  });

  it('reports only writes that make an item claimable: claims, renewals and final completions send nothing', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    const s = store(double);
    const tracker = makeTracker(s);
    await tracker.init();
    const { changes } = listen(s);
    await until(() => changes.length === 1);
    expect(changes[0]).toEqual({}); // the stream is up: look once

    const other = makeTracker(store(double));
    await other.track(k(1)); // pending: claimable by `download`
    const lease = (await other.claim('download', { owner: 'w' }))!; // downloading: not claimable
    await other.renew(lease); // deadline of a held item: not claimable
    const done = await other.complete(lease); // downloaded: claimable by `process`
    const processing = (await other.claim('process', { owner: 'w', key: k(1) }))!;
    await other.complete(processing, { to: 'processed' }); // final: no stage claims from it
    await other.track(k(1)); // exists already: a no-op, no event
    await other.reschedule(k(2), { delayMs: 0 }).catch(() => {}); // no such item
    await other.track(k(3), {}, { delayMs: 60_000 }); // scheduled: claimable in a minute
    await other.track(k(4)); // the marker: everything before it has been delivered once it arrives
    await until(() => changes.length === 5);

    expect(done.status).toBe('downloaded');
    expect(changes.slice(1, 3)).toEqual([{ status: 'pending' }, { status: 'downloaded' }]);
    expect(changes[3]!.status).toBe('pending');
    // the delay measured by the server's clock, added to this process's clock
    expect(changes[3]!.at!.getTime()).toBeGreaterThan(Date.now() + 30_000);
    expect(changes[4]).toEqual({ status: 'pending' });
    // filtered by the server: the claim, renewal and final completion never reached the client
    expect(double.delivered).toBe(4);
  });

  it('reports a reschedule (only the deadline of a waiting item moves) but not a renewal (only the deadline of a held item moves)', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    const s = store(double);
    const tracker = makeTracker(s);
    await tracker.track(k(1), {}, { delayMs: 3_600_000 });
    await tracker.track(k(2));
    const lease = (await tracker.claim('download', { owner: 'w', key: k(2) }))!;
    const { changes } = listen(s);
    await until(() => changes.length === 1);
    await tracker.renew(lease);
    await tracker.reschedule(k(1), { delayMs: 0 });
    await until(() => changes.length === 2);
    expect(changes[1]).toEqual({ status: 'pending' });
    await tracker.renew(lease);
    await tracker.track(k(3));
    await until(() => changes.length === 3);
    expect(changes[2]).toEqual({ status: 'pending' });
    expect(double.delivered).toBe(2);
  });

  it('reports a replacement that puts a document into a claimable status', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    const s = store(double);
    const tracker = makeTracker(s);
    await tracker.track(k(1));
    const lease = (await tracker.claim('download', { owner: 'w' }))!;
    const { changes } = listen(s);
    await until(() => changes.length === 1);
    expect(lease.fence).toBe(1);
    const [doc] = double.admin.find({ status: 'downloading' });
    double.admin.replaceOne({ _id: doc!._id }, { ...doc, status: 'downloaded', deadline: doc!.updatedAt });
    await until(() => changes.length === 2);
    expect(changes[1]).toEqual({ status: 'downloaded' });
  });

  it('opens one stream per collection for many trackers and workers, and closes it when the last one stops', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    const trackers = [makeTracker(store(double)), makeTracker(store(double)), makeTracker(store(double))];
    for (const t of trackers) await t.init();
    const started = trackers.flatMap((t) => [work(t, 'download').worker, work(t, 'process').worker, work(t, 'download').worker]);
    workers.length = 0;
    await until(() => double.openStreams === 1);
    await quiet(double);
    expect(double.watchCalls).toHaveLength(1);
    expect(double.watchCalls[0]!.options.fullDocument).toBe('updateLookup');
    for (const w of started.slice(0, -1)) await w.stop();
    expect(double.openStreams).toBe(1);
    await started.at(-1)!.stop();
    expect(double.openStreams).toBe(0);
    expect(double.watchCalls).toHaveLength(1);
  });

  // watchers were keyed by the Collection object, and the driver's `db.collection(name)` makes
  // a new one on every call: two stores given two of them opened two streams
  it('stores given separate Collection objects of one collection (one client, one namespace) share one stream', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    Object.defineProperty(double, 'client', { value: { options: { hosts: ['127.0.0.1:27017'] } } });
    // two objects over the same collection, as two `db.collection('double')` calls give
    const another = () =>
      new Proxy(double, {
        get(target, name) {
          const value: unknown = Reflect.get(target, name, target);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    const [a, b] = [another(), another()].map((c) => makeTracker(store(c)));
    await a!.init();
    await b!.init();
    const [wa, wb] = [work(a!), work(b!)];
    await until(() => double.openStreams === 1);
    await quiet(double);
    expect(double.watchCalls).toHaveLength(1);
    // and a track wakes a worker at once (POLL keeps them from polling it up)
    await a!.track(k(1));
    await until(() => wa!.handled.length + wb!.handled.length === 1);
  });

  it('stores made from a Db and a collection name share one Collection object, hence one stream', () => {
    const db = { collection: vi.fn((_name: string) => new CollectionDouble() as unknown as MongoCollection) };
    new MongoStore({ db, collection: 'shared_name' });
    new MongoStore({ db, collection: 'shared_name' });
    new MongoStore({ db, collection: 'other_name' });
    expect(db.collection.mock.calls.map(([name]) => name)).toEqual(['shared_name', 'other_name']);
  });

  it('widens the filter without a gap when a store with more claimable statuses subscribes', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    const narrow = store(double);
    await narrow.init({ keyFields: [{ name: 'logId', type: 'string' }], claimable: ['pending'] });
    const wide = store(double);
    const a = listen(narrow);
    await until(() => a.changes.length === 1);
    const b = listen(wide);
    await wide.init({ keyFields: [{ name: 'logId', type: 'string' }], claimable: ['pending', 'downloaded'] });
    await until(() => double.watchCalls.length === 2);
    expect(double.watchCalls[1]!.options.resumeAfter).toBeDefined();
    expect(JSON.stringify(double.watchCalls[1]!.pipeline)).toContain('downloaded');
    await narrow.insert({ key: { logId: 'a' }, status: 'downloaded', data: {} });
    await until(() => b.changes.some((c) => c.status === 'downloaded'));
    // each listener hears only the statuses its own tracker claims from
    expect(a.changes.filter((c) => c.status !== undefined)).toEqual([]);
    a.stop();
    b.stop();
    expect(double.openStreams).toBe(0);
  });

  it('on a standalone server logs one line, never opens a stream again, and idle workers still poll', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    double.topology = 'standalone';
    const warn = vi.fn();
    const tracker = makeTracker(store(double, { logger: { warn } }));
    const other = makeTracker(store(double, { logger: { warn } }));
    const handled: string[] = [];
    const polling = { pollMinMs: 10, pollMaxMs: 20, reapIntervalMs: false } as const;
    const first = tracker.work('download', async (lease) => void handled.push(lease.key.logId), polling);
    await until(() => warn.mock.calls.length === 1);
    await other.track(k(1));
    await until(() => handled.includes('log-1'));
    await first.stop();
    expect(double.openStreams).toBe(0);
    // a later worker does not try again
    const second = tracker.work('download', async (lease) => void handled.push(lease.key.logId), polling);
    workers.push(second);
    await other.track(k(2));
    await until(() => handled.includes('log-2'));
    expect(double.watchCalls).toHaveLength(1);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]![1]).toMatch(/\[leasehold\] \[mongodb\] no change stream on `leasehold_test\.double`: .*standalone.*poll/);
  });

  it('without a logger, the one line goes to stderr', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    double.topology = 'standalone';
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const s = store(double);
      await makeTracker(s).init();
      const a = listen(s);
      const b = listen(store(double));
      await until(() => write.mock.calls.some(([line]) => String(line).includes('no change stream')));
      await new Promise((resolve) => setImmediate(resolve));
      a.stop();
      b.stop();
      expect(write.mock.calls.filter(([line]) => String(line).includes('no change stream'))).toHaveLength(1);
    } finally {
      write.mockRestore();
    }
  });

  it('resumes after a transient error from its resume token: no change is lost and no one is told to look', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    const s = store(double);
    const tracker = makeTracker(s);
    await tracker.init();
    const { changes } = listen(s);
    await until(() => changes.length === 1);
    await tracker.track(k(1));
    await until(() => changes.length === 2);
    double.interruptStreams(Object.assign(new Error('connection 3 to 127.0.0.1:27017 closed'), { name: 'MongoNetworkError' }));
    // written while no stream is open: the resumed stream replays it from the token
    await tracker.track(k(2));
    await until(() => changes.length === 3);
    expect(changes).toEqual([{}, { status: 'pending' }, { status: 'pending' }]);
    expect(double.watchCalls).toHaveLength(2);
    expect(double.watchCalls[1]!.options.resumeAfter).toBeDefined();
    expect(double.openStreams).toBe(1);
  });

  it('starts a new stream when the resume token is lost, and tells every listener to look', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    const s = store(double);
    await makeTracker(s).init();
    const { changes } = listen(s);
    await until(() => changes.length === 1);
    double.interruptStreams(new Error('interrupted'));
    // a write, then the oplog rolls past it before the stream can resume
    double.admin.insertMany([{ key: { logId: 'x', partnerCode: 'acme', seq: 9 }, status: 'pending', deadline: new Date(), updatedAt: new Date() }]);
    double.forgetHistory();
    await until(() => changes.length === 2);
    expect(changes).toEqual([{}, {}]);
    expect(double.watchCalls.map((c) => c.options.resumeAfter !== undefined)).toEqual([false, true, false]);
  });

  it('gives up on the token after repeated failed resumes, then starts anew', { timeout: 30_000 }, async () => {
    const double = new CollectionDouble();
    const s = store(double);
    await makeTracker(s).init();
    const { changes } = listen(s);
    await until(() => changes.length === 1);
    double.failNextWatch(Object.assign(new Error('not primary'), { code: 10107 }), 3);
    double.interruptStreams(new Error('interrupted'));
    await until(() => changes.length === 2);
    expect(changes[1]).toEqual({});
    expect(double.watchCalls.map((c) => c.options.resumeAfter !== undefined)).toEqual([false, true, true, true, false]);
  });

  /**
   * Runs `fn` on a fake clock (the watcher's backoff and an outage's length; the double answers on
   * setImmediate), with a store on a fresh double whose warnings `warn` records.
   */
  const onFakeClock = async (fn: (double: CollectionDouble, s: MongoStore, warn: ReturnType<typeof vi.fn>) => Promise<void>) => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    try {
      const double = new CollectionDouble();
      const warn = vi.fn();
      const s = store(double, { logger: { warn } });
      await makeTracker(s).init();
      await fn(double, s, warn);
    } finally {
      vi.useRealTimers();
    }
  };

  it('a user refused the change stream (Unauthorized) is said once, and tried again every ten minutes (a grant being rotated comes back)', { timeout: 30_000 }, async () => {
    await onFakeClock(async (double, s, warn) => {
      const denied = () => Object.assign(new Error('not authorized on leasehold_test to execute command { aggregate: "double" }'), { code: 13, codeName: 'Unauthorized' });
      double.failNextWatch(denied(), 2);
      const first = listen(s);
      await vi.advanceTimersByTimeAsync(10);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]![1]).toMatch(/no change stream on `leasehold_test\.double`: the user may not open one on it .*tried again every 10 minutes/);
      expect(double.watchCalls).toHaveLength(1);
      // workers stopped and started meanwhile (a cron-style job) wait for the ten minutes too
      first.stop();
      const { changes, stop } = listen(s);
      await vi.advanceTimersByTimeAsync(10);
      expect(double.watchCalls).toHaveLength(1);
      // not before ten minutes; then refused again, and not said again
      await vi.advanceTimersByTimeAsync(DENIED_RETRY_MS - 1_000);
      expect(double.watchCalls).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(2_000);
      expect(double.watchCalls).toHaveLength(2);
      expect(warn).toHaveBeenCalledTimes(1);
      // granted again: the next try opens it, and listeners look once
      await vi.advanceTimersByTimeAsync(DENIED_RETRY_MS + 1_000);
      expect(double.watchCalls).toHaveLength(3);
      expect(double.openStreams).toBe(1);
      expect(changes).toEqual([{}]);
      stop();
    });
  });

  it('says once when a stream has kept failing for 30 s (idle workers poll meanwhile), and again only after it worked', { timeout: 30_000 }, async () => {
    await onFakeClock(async (double, s, warn) => {
      const { changes, stop } = listen(s);
      await vi.advanceTimersByTimeAsync(10);
      expect(changes).toEqual([{}]);
      // an error the watcher cannot know to be permanent: it retries, backing off to 5 s
      const refused = () => Object.assign(new Error('user is not allowed to do action [changeStream]'), { code: 8000, codeName: 'AtlasError' });
      double.failNextWatch(refused(), 30);
      double.interruptStreams(new Error('interrupted'));
      await vi.advanceTimersByTimeAsync(25_000);
      expect(warn).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(20_000);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(warn.mock.calls[0]![1]).toMatch(
        /^\[leasehold\] \[mongodb\] the change stream on `leasehold_test\.double` has kept failing for 3\d s \(last: AtlasError: user is not allowed to do action \[changeStream\]\)\. Idle workers poll/,
      );
      // the 30 failures run out: the stream works again, and listeners look once
      await vi.advanceTimersByTimeAsync(200_000);
      expect(warn).toHaveBeenCalledTimes(1);
      expect(changes.at(-1)).toEqual({});
      const opened = double.watchCalls.length;
      expect(opened).toBeGreaterThan(30);
      // a second outage is said again
      double.failNextWatch(refused(), 30);
      double.interruptStreams(new Error('interrupted'));
      await vi.advanceTimersByTimeAsync(45_000);
      expect(warn).toHaveBeenCalledTimes(2);
      stop();
    });
  });

  it('watches only where it can: not without `collection.watch`, not with `changeStreams: false`', () => {
    const double = new CollectionDouble();
    const subset = {
      createIndex: double.createIndex.bind(double),
      findOneAndUpdate: double.findOneAndUpdate.bind(double),
      find: double.find.bind(double),
      aggregate: double.aggregate.bind(double),
      deleteMany: double.deleteMany.bind(double),
      distinct: double.distinct.bind(double),
    } as unknown as MongoCollection;
    expect(new MongoStore({ collection: subset }).watch).toBeUndefined();
    expect(store(double, { changeStreams: false }).watch).toBeUndefined();
    expect(typeof store(double).watch).toBe('function');
    expect(() => store(double, { changeStreams: 'yes' as unknown as boolean })).toThrow(ConfigError);
  });
});

describe('the change-stream filter and what it reports', () => {
  it('reads the status, and the delay between two server times', () => {
    const written = new Date('2026-01-01T00:00:00Z');
    const before = Date.now();
    const change = toChange({ operationType: 'update', updateDescription: { updatedFields: { status: 'pending', deadline: new Date(written.getTime() + 5_000), updatedAt: written } } });
    expect(change.status).toBe('pending');
    expect(change.at!.getTime()).toBeGreaterThanOrEqual(before + 5_000);
    expect(toChange({ operationType: 'insert', fullDocument: { status: 'pending', deadline: written, updatedAt: written } })).toEqual({ status: 'pending' });
    expect(toChange({ operationType: 'update', updateDescription: { updatedFields: {} }, fullDocument: null })).toEqual({});
  });

  it('asks for the document only where the update itself does not say (a deadline that moved without a status)', () => {
    const [match] = changePipeline(['pending']);
    expect(match).toEqual({
      $match: {
        $or: [
          { operationType: { $in: ['insert', 'replace'] }, 'fullDocument.status': { $in: ['pending'] } },
          { operationType: 'update', 'updateDescription.updatedFields.status': { $in: ['pending'] } },
          {
            operationType: 'update',
            'updateDescription.updatedFields.status': { $exists: false },
            'updateDescription.updatedFields.deadline': { $exists: true },
            'fullDocument.status': { $in: ['pending'] },
          },
        ],
      },
    });
  });
});

// These need a real replica set; without one the banner above says they are skipped and why.
describe.skipIf(!uri)('MongoStore change streams on a real replica set', () => {
  const clients: MongoClient[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
  });
  const connect = async () => {
    const c = new MongoClient(uri);
    await c.connect();
    clients.push(c);
    return c;
  };

  it('a worker on one client wakes when another client tracks, releases or fails an item, and stop() closes the stream', { timeout: 60_000 }, async () => {
    const name = `watch_${process.pid}_${Date.now() % 1e6}`;
    const [a, b] = [await connect(), await connect()];
    const warn = vi.fn();
    const hereStore = new MongoStore({ collection: a.db('leasehold_test').collection(name), logger: { warn } });
    const here = makeTracker(hereStore, { backoff: () => 0 });
    const there = makeTracker(new MongoStore({ collection: b.db('leasehold_test').collection(name) }), { backoff: () => 0 });
    await there.track(k(2));
    await there.track(k(3));
    const held2 = (await there.claim('download', { owner: 'other', key: k(2) }))!;
    const held3 = (await there.claim('download', { owner: 'other', key: k(3) }))!;
    const { worker, handled } = work(here);
    // the stream (shared with the worker's) is up once it tells its listeners to look
    const probe = listen(hereStore);
    await until(() => probe.changes.length > 0);
    probe.stop();
    await there.track(k(1));
    await until(() => handled.includes('log-1'));
    await there.release(held2);
    await until(() => handled.includes('log-2'));
    await there.fail(held3, new Error('try again'));
    await until(() => handled.includes('log-3'));
    expect(warn).not.toHaveBeenCalled();
    await worker.stop();
  });
});
