import { describe, expect, it } from 'vitest';
import { StoreError } from '../src/index.js';
import { MongoStore, type MongoCollection } from '../src/stores/mongodb.js';
import { k, makeTracker } from '../src/testing/definition.js';
import { CollectionDouble } from './support/mongo-double.js';

/** A server error as the MongoDB driver raises it (a MongoServerError with a numeric code). */
const mongoServerError = (code: number, message: string) => Object.assign(new Error(message), { name: 'MongoServerError', code });

/** Item 1 tracked on a MongoStore over the double, whose next findOneAndUpdate fails with `error`; the claim's error. */
async function claimFailingWith(error: Error) {
  const double = new CollectionDouble();
  const tracker = makeTracker(new MongoStore({ collection: double as unknown as MongoCollection }));
  await tracker.track(k(1));
  double.failNext('findOneAndUpdate', error);
  return { tracker, error: await tracker.claim('download', { owner: 'w', key: k(1) }).catch((e: unknown) => e) };
}

describe('store errors: a failover is a passing fault, a broken request is not', () => {
  // A primary that steps down (an election, a rolling restart) answers with one of these codes
  // until the driver finds the new primary: a worker must retry, not treat the item as broken.
  it.each([
    [10107, 'NotWritablePrimary', 'not primary'],
    [11602, 'InterruptedDueToReplStateChange', 'operation was interrupted because of a replication state change'],
    [189, 'PrimarySteppedDown', 'primary stepped down while waiting for replication'],
    [91, 'ShutdownInProgress', 'the server is in quiesce mode and will shut down'],
    [13436, 'NotPrimaryOrSecondary', 'node is recovering'],
  ])('MongoDB code %i (%s) during a claim is a transient StoreError', async (code, _name, message) => {
    const { tracker, error } = await claimFailingWith(mongoServerError(code, message));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).transient).toBe(true);
    expect((error as StoreError).message).toContain('claim');
    // the fault passed: the same claim now succeeds
    expect((await tracker.claim('download', { owner: 'w', key: k(1) }))?.fence).toBe(1);
  });

  it('a MongoDB error with any other code (a bad update) is not transient', async () => {
    const { error } = await claimFailingWith(mongoServerError(9, 'FailedToParse: unknown operator'));
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).transient).toBe(false);
  });

  it('an error marked `transient: true` (a store of one\'s own, a driver whose codes leasehold does not know) is transient, named by the tracker operation and key', async () => {
    const throttled = Object.assign(new Error('ThrottlingException: rate of requests exceeds the allowed throughput'), { transient: true });
    const { error } = await claimFailingWith(throttled);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).transient).toBe(true);
    expect((error as StoreError).message).toMatch(/`claim` of item \{"logId":"log-1".*ThrottlingException/);
    // unmarked, the same text is no passing fault
    expect(((await claimFailingWith(new Error('ThrottlingException: rate exceeded'))).error as StoreError).transient).toBe(false);
  });

  it('a numeric code on an error that is not MongoDB’s is not read as a MongoDB code', async () => {
    const { error } = await claimFailingWith(Object.assign(new Error('something else'), { code: 10107 }));
    expect((error as StoreError).transient).toBe(false);
  });
});

describe('store errors: the advice fits what failed', () => {
  const refused = Object.assign(new Error('permission denied for table items'), { code: '42501' });
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  const advice = (operation: string, cause: Error) => new StoreError({ operation, store: 'postgres', cause }).message;

  it('a failed transition says a retry cannot apply it twice', () => {
    expect(advice('complete', refused)).toContain('the transition is guarded by status and fence');
    expect(advice('claim', reset)).toMatch(/safe to retry, as every transition is guarded/);
  });

  it('a failed operator verb says to look before running it again, not that a fence guards it', () => {
    for (const operation of ['retry', 'retryAll', 'cancel', 'reschedule']) {
      for (const cause of [refused, reset]) {
        const message = advice(operation, cause);
        expect(message).toMatch(/[Ll]ook at the item/);
        expect(message).not.toContain('fence');
      }
    }
  });

  it('a failed read says it changed nothing, not that a transition is guarded', () => {
    for (const operation of ['get', 'find', 'stats']) {
      for (const cause of [refused, reset]) {
        const message = advice(operation, cause);
        expect(message).toContain('a read changes nothing');
        expect(message).not.toContain('transition');
      }
    }
    expect(advice('find', reset)).toContain('safe to retry');
  });

  it('a failed init or purge says it is safe to run again', () => {
    for (const cause of [refused, reset]) {
      expect(advice('init', cause)).toMatch(/`init` creates .*only .*missing/);
      expect(advice('purge', cause)).toContain('a purge deletes only finished items, so it is safe to run again');
      expect(advice('init', cause)).not.toContain('transition');
    }
  });

  it('a schema failure gives the schema advice whatever the operation', () => {
    const missing = Object.assign(new Error('relation "items" does not exist'), { code: '42P01' });
    for (const operation of ['init', 'get', 'complete', 'purge']) {
      const error = new StoreError({ operation, store: 'postgres', cause: missing });
      expect(error.failure).toBe('schema');
      expect(error.message).toContain('Point the store at a table of its own');
    }
  });
});

describe('store errors: Redis replies that pass', () => {
  it.each([
    ['BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.'],
    ['LOADING Redis is loading the dataset in memory'],
    ["READONLY You can't write against a read only replica."],
    ['TRYAGAIN Multiple keys request during rehashing of slot'],
    ['CLUSTERDOWN The cluster is down'],
    ["MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."],
  ])('%s is transient', (message) => {
    const error = new StoreError({ operation: 'claim', store: 'redis', cause: Object.assign(new Error(message), { name: 'ReplyError' }) });
    expect(error.transient).toBe(true);
  });

  it("ioredis's MaxRetriesPerRequestError is transient; another ReplyError is not", () => {
    const retries = Object.assign(new Error('Reached the max retries per request limit (which is 20).'), { name: 'MaxRetriesPerRequestError' });
    expect(new StoreError({ operation: 'claim', store: 'redis', cause: retries }).transient).toBe(true);
    const wrong = Object.assign(new Error('WRONGTYPE Operation against a key holding the wrong kind of value'), { name: 'ReplyError' });
    expect(new StoreError({ operation: 'claim', store: 'redis', cause: wrong }).transient).toBe(false);
  });
});
