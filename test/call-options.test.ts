// The options of each call are checked like a Tracker's: a misspelt one (from JavaScript, or
// from a variable TypeScript does not check for extra names) is refused before anything is
// written, instead of being ignored and its default used (a misspelt `finishedBefore` deleted
// every item in the status; a misspelt `key` claimed whichever item was oldest).
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, Tracker } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory.js';

const definition = {
  statuses: ['queued', 'running', 'done', 'skipped', 'failed'],
  initial: 'queued',
  key: z.object({ id: z.string() }),
  data: z.object({ note: z.string().optional() }),
  stages: { run: { from: 'queued', active: 'running', done: ['done', 'skipped'], failed: 'failed' } },
  retry: { maxAttempts: 3 },
} as const;

async function tracked(...ids: string[]) {
  const tracker = new Tracker({ ...definition, store: new MemoryStore() });
  for (const id of ids) await tracker.track({ id });
  return tracker;
}

/** Options as JavaScript (or an untyped variable) passes them. */
const loose = (options: object) => options as never;

describe('a misspelt option of a call is refused, naming it and the option meant, and nothing is written', () => {
  it('purge: `olderThan` does not delete every finished item', async () => {
    const tracker = await tracked('a', 'b');
    for (const id of ['a', 'b']) await tracker.complete((await tracker.claim('run', { owner: 'w', key: { id } }))!);
    await expect(tracker.purge(loose({ status: 'done', olderThan: 60_000 }))).rejects.toThrow(/`purge.olderThan`: no such option; did you mean `purge.olderThanMs`\?/);
    await expect(tracker.purge(loose({ status: 'done', finishedbefore: new Date(0) }))).rejects.toThrow(/did you mean `purge.finishedBefore`/);
    expect((await tracker.stats()).byStatus.done).toBe(2);
  });

  it('claim: a misspelt `key` does not claim another item', async () => {
    const tracker = await tracked('old', 'wanted');
    await expect(tracker.claim('run', loose({ owner: 'w', kye: { id: 'wanted' } }))).rejects.toThrow(/`claim.kye`: no such option; did you mean `claim.key`\?/);
    await expect(tracker.claimBatch('run', loose({ owner: 'w', limit: 2, key: { id: 'wanted' } }))).rejects.toThrow(/`claimBatch.key`: no such option .*owner, limit/);
    expect((await tracker.find({ status: 'running' })).length).toBe(0);
  });

  it('complete, fail, release: the lease stays held and the item unchanged', async () => {
    const tracker = await tracked('a');
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    await expect(tracker.complete(lease, loose({ status: 'skipped' }))).rejects.toThrow(/`complete.status`: no such option/);
    await expect(tracker.completeBatch([lease], loose({ date: {} }))).rejects.toThrow(/`completeBatch.date`: no such option; did you mean `completeBatch.data`\?/);
    await expect(tracker.fail(lease, new Error('x'), loose({ retr: false }))).rejects.toThrow(/`fail.retr`: no such option; did you mean `fail.retry`\?/);
    await expect(tracker.failBatch([loose({ lease, error: new Error('x'), retyr: false })])).rejects.toThrow(/`failBatch.failures\[0\].retyr`: no such option; did you mean `failBatch.failures\[0\].retry`\?/);
    await expect(tracker.release(lease, loose({ delay: 60_000 }))).rejects.toThrow(/`release.delay`: no such option; did you mean `release.delayMs`\?/);
    expect(await tracker.get({ id: 'a' })).toMatchObject({ status: 'running', attempts: 1, fence: lease.fence });
    expect((await tracker.complete(lease, { to: 'skipped' })).status).toBe('skipped');
  });

  it('track and reschedule: a misspelt delay does not make the item claimable at once', async () => {
    const tracker = await tracked('a');
    const due = (await tracker.get({ id: 'a' }))!.notBefore;
    await expect(tracker.track({ id: 'b' }, {}, loose({ delay: 60_000 }))).rejects.toThrow(/`track.delay`: no such option; did you mean `track.delayMs`\?/);
    expect(await tracker.get({ id: 'b' })).toBeNull();
    await expect(tracker.reschedule({ id: 'a' }, loose({ notbefore: new Date(Date.now() + 60_000) }))).rejects.toThrow(/`reschedule.notbefore`: no such option; did you mean `reschedule.notBefore`\?/);
    expect((await tracker.get({ id: 'a' }))!.notBefore).toEqual(due);
  });

  it('the operator verbs, reads and reapStale', async () => {
    const tracker = await tracked('a');
    await expect(tracker.cancel({ id: 'a' }, loose({ reson: 'withdrawn' }))).rejects.toThrow(/`cancel.reson`: no such option; did you mean `cancel.reason`\?/);
    expect((await tracker.get({ id: 'a' }))!.status).toBe('queued');
    await expect(tracker.retry({ id: 'a' }, loose({ stages: 'run' }))).rejects.toThrow(/`retry.stages`: no such option; did you mean `retry.stage`\?/);
    await expect(tracker.retryAll(loose({ limt: 5 }))).rejects.toThrow(/`retryAll.limt`: no such option; did you mean `retryAll.limit`\?/);
    await expect(tracker.find(loose({ statuses: 'queued' }))).rejects.toThrow(/`find.statuses`: no such option; did you mean `find.status`\?/);
    await expect(tracker.reapStale(loose({ batch: 10 }))).rejects.toThrow(/`reapStale.batch`: no such option; did you mean `reapStale.batchSize`\?/);
  });

  it('options that are no object are refused, not read as "no options"', async () => {
    const tracker = await tracked('a');
    await expect(tracker.find(loose(null as never))).rejects.toThrow(/`find`: expected an object of options \(status, undeclared, limit, onInvalid\), got `null`/);
    await expect(tracker.claim('run', loose(null as never))).rejects.toThrow(ConfigError);
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    await expect(tracker.complete(lease, loose('done' as never))).rejects.toThrow(/`complete`: expected an object of options \(to, data\), got `"done"` \(string\)/);
    await expect(tracker.completeBatch(loose(lease as never))).rejects.toThrow(/`completeBatch.leases`: expected an array of leases, got a Lease\.$/);
    await expect(tracker.failBatch([loose(undefined as never)])).rejects.toThrow(/`failBatch.failures\[0\]`: expected `\{ lease, error, retry\? \}`, got `undefined` \(undefined\)/);
    await expect(tracker.failBatch([loose(lease as never)])).rejects.toThrow(/`failBatch.failures\[0\]`: expected `\{ lease, error, retry\? \}`, got a Lease: give each lease with its error/);
    await expect(tracker.failBatch(loose(null as never))).rejects.toThrow(/`failBatch.failures`: expected an array of `\{ lease, error, retry\? \}` entries, got `null`/);
    expect((await tracker.get({ id: 'a' }))!.status).toBe('running');
  });

  it('a worker: a misspelt stop option is refused; a handler returning `{ status }` parks the item with the reason', async () => {
    const tracker = await tracked('a', 'b');
    const worker = tracker.work('run', (lease) => (lease.key.id === 'a' ? loose({ status: 'skipped' }) : { to: 'skipped' as const }));
    await expect(worker.stop(loose({ timeout: 10 }))).rejects.toThrow(/`stop.timeout`: no such option; did you mean `stop.timeoutMs`\?/);
    await worker.drain();
    await worker.stop();
    expect(await tracker.get({ id: 'a' })).toMatchObject({ status: 'failed', lastError: expect.stringMatching(/the handler returned an object with `status`; a handler returns nothing, or `\{ to\?, data\? \}`/) });
    expect((await tracker.get({ id: 'b' }))!.status).toBe('skipped');
  });

  it('a handler that returns nothing, null, `{ data }`, a class instance or another value that is no object literal completes as before', async () => {
    class Broken {
      get data(): unknown {
        throw new Error('getter boom');
      }
    }
    class Outcome {
      constructor(readonly to: string, readonly note: string) {}
      get data() {
        return { note: this.note };
      }
    }
    const tracker = await tracked('none', 'null', 'data', 'boolean', 'array', 'instance', 'driver', 'broken', 'literal', 'method', 'getter', 'proxy');
    const returns: Record<string, unknown> = {
      none: undefined, null: null, data: { data: { note: 'n' } }, boolean: true, array: [1], instance: new Outcome('skipped', 'i'), driver: { acknowledged: true, insertedId: 7 }, broken: new Broken(),
      // a function is no field of a result (the handler types allow it, as they allow a class's methods)
      method: { to: 'skipped', toJSON: () => 'x' },
      proxy: new Proxy(
        {},
        {
          ownKeys() {
            throw new Error('ownKeys boom');
          },
        },
      ),
      // a getter is a field, not a method, and is not called to tell: the item is parked with the reason
      getter: {
        to: 'skipped',
        get note(): unknown {
          throw new Error('getter boom');
        },
      },
      literal: {
        get data(): unknown {
          throw Object.create(null);
        },
      },
    };
    const worker = tracker.work('run', (lease) => returns[lease.key.id] as never);
    await worker.drain();
    await worker.stop();
    const items = Object.fromEntries((await tracker.find()).map((i) => [i.key.id, i]));
    expect(Object.fromEntries(Object.entries(items).map(([id, i]) => [id, i.status]))).toEqual({
      none: 'done', null: 'done', data: 'done', boolean: 'done', array: 'done', instance: 'skipped', driver: 'failed', broken: 'failed', literal: 'failed', method: 'skipped', getter: 'failed', proxy: 'failed',
    });
    expect(items.literal!.lastError).toMatch(/reading `to` or `data` of what the handler returned threw/);
    expect(items.broken!.lastError).toMatch(/reading `to` or `data` of what the handler returned threw \(Error: getter boom\), so the item was not completed/);
    expect(items.data!.data).toEqual({ note: 'n' });
    // a class instance is read for its `to` and `data`, as before
    expect(items.instance!.data).toEqual({ note: 'i' });
    expect(items.driver!.lastError).toMatch(/the handler returned an object with `acknowledged`, `insertedId`;/);
    expect(items.getter!.lastError).toMatch(/the handler returned an object with `note`;/);
    expect(items.proxy!.lastError).toMatch(/reading `to` or `data` of what the handler returned threw \(Error: ownKeys boom\)/);
  });
});

describe('other calls a first week meets', () => {
  it('on() refuses an event a Tracker does not have, and a listener that is no function', async () => {
    const tracker = await tracked('a');
    expect(() => tracker.on(loose('complete' as never), () => {})).toThrow(/`on.event`: `complete` is not an event of a Tracker \(claimed, renewed, completed, failed, released, reaped, leaseLost, error\)/);
    expect(() => tracker.on('completed', loose('nope' as never))).toThrow(/`on.listener`: expected a function, called with each `completed` event's payload/);
    const seen: string[] = [];
    tracker.on('completed', (e) => seen.push(e.status));
    await tracker.complete((await tracker.claim('run', { owner: 'w' }))!);
    expect(seen).toEqual(['done']);
  });


  it('errors about a lease name its item; a key refused for NaN shows NaN', async () => {
    const tracker = await tracked('a');
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    await expect(tracker.complete(lease, loose({ to: 'nope' }))).rejects.toThrow(/`complete.to`: `nope` is not a done status of stage `run` \(done, skipped\); nothing was written to item \{"id":"a"\}/);
    const other = new Tracker({ ...definition, store: new MemoryStore() });
    await expect(other.complete(lease)).rejects.toThrow(/`complete.lease`: the lease of item \{"id":"a"\} was claimed through a tracker on another store/);
    const numbered = new Tracker({ ...definition, key: z.object({ n: z.number() }), store: new MemoryStore() });
    await expect(numbered.track({ n: Number.NaN })).rejects.toThrow(/of item \{"n":"NaN"\}/);
    const dated = new Tracker({ ...definition, key: z.object({ at: z.date() }), store: new MemoryStore() });
    await expect(dated.track({ at: new Date(-210_866_803_200_001) })).rejects.toThrow(/at: key dates before 4714-11-24 BC cannot be stored \(PostgreSQL's timestamptz starts there\)\)\. .*nothing was written/);
    expect((await dated.track({ at: new Date(-210_866_803_200_000) })).created).toBe(true);
  });

  it('work() on a tracker whose lease is too short to renew names the lease, not an option never set', () => {
    const tracker = new Tracker({ ...definition, store: new MemoryStore(), lease: { ttlMs: 1 } });
    expect(() => tracker.work('run', () => {})).toThrow(/`lease.ttlMs`: a lease of 1 ms is too short for a worker to renew/);
    expect(() => tracker.work('run', () => {}, { heartbeatMs: 5 })).toThrow(/`work.heartbeatMs`: must be shorter than the lease ttl \(1 ms\), got 5/);
  });

  it('a logger hears releases at debug, and nothing from the operator verbs (the CLI\'s --json owns stdout)', async () => {
    const lines: string[] = [];
    const logger = { debug: (_: object, m: string) => lines.push(`debug ${m}`), info: (_: object, m: string) => lines.push(`info ${m}`) };
    const tracker = new Tracker({ ...definition, store: new MemoryStore(), logger });
    for (const id of ['a', 'b']) await tracker.track({ id });
    await tracker.release((await tracker.claim('run', { owner: 'w', key: { id: 'a' } }))!, { delayMs: 5 });
    await tracker.cancel({ id: 'a' }, { reason: 'withdrawn' });
    await tracker.retry({ id: 'a' });
    await tracker.reschedule({ id: 'b' }, { delayMs: 60_000 });
    await tracker.cancel({ id: 'b' });
    await tracker.retryAll();
    expect(lines.filter((l) => !l.includes(' claimed'))).toEqual(['debug [leasehold] run: released into `queued`, claimable in 5 ms']);
  });

  it('a lost lease names the holder as holding the item only while it does', async () => {
    const tracker = await tracked('a');
    const first = (await tracker.claim('run', { owner: 'w1' }))!;
    await tracker.cancel({ id: 'a' }, { reason: 'operator' });
    await expect(tracker.complete(first)).rejects.toThrow(/is no longer held \(the store holds status `failed` with fence 2, last held by `w1`\)/);
    await tracker.retry({ id: 'a' });
    const second = (await tracker.claim('run', { owner: 'w2' }))!;
    await expect(tracker.renew(first)).rejects.toThrow(/the store holds status `running` with fence 3, held by `w2`\)/);
    await tracker.complete(second);
  });

  it('find with an empty status list finds nothing (it is no "any status")', async () => {
    const tracker = await tracked('a', 'b');
    expect(await tracker.find({ status: [] })).toEqual([]);
    expect(await tracker.find({ status: [], undeclared: true })).toEqual([]);
    expect((await tracker.find({})).length).toBe(2);
  });

  it('settling the `null` a claim returns says so, not that the stage is unknown', async () => {
    const tracker = await tracked();
    const lease = await tracker.claim('run', { owner: 'w' });
    expect(lease).toBeNull();
    const nothing = /`complete.lease`: expected a Lease returned by `claim`, `claimBatch` or a worker, got `null` \(`claim` returns `null` when nothing is claimable: check for it before settling\); nothing was written/;
    await expect(tracker.complete(lease as never)).rejects.toThrow(nothing);
    await expect(tracker.fail(lease as never, new Error('x'))).rejects.toThrow(/`fail.lease`: expected a Lease .*got `null`/);
    await expect(tracker.release(lease as never)).rejects.toThrow(/`release.lease`: .*got `null`/);
    await expect(tracker.renew(lease as never)).rejects.toThrow(/`renew.lease`: .*got `null`/);
    await expect(tracker.completeBatch([lease as never])).rejects.toThrow(/`completeBatch.lease`: .*got `null`/);
    await expect(tracker.complete({ stage: 'run' } as never)).rejects.toThrow(/`complete.lease`: expected a Lease .*got another object/);
    await expect(tracker.claim(loose({ stage: 'run' } as never), { owner: 'w' })).rejects.toThrow(/`claim.stage`: an object is not a stage of this tracker \(run\)/);
  });
});
