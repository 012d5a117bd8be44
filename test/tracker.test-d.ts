import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { Tracker, type Item, type ItemOf, type KeyOf, type Lease, type LeaseOf, type TrackerOperations } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory.js';

const logs = new Tracker({
  store: new MemoryStore(),
  statuses: ['pending', 'downloading', 'downloaded', 'processing', 'processed', 'skipped', 'failed'],
  initial: 'pending',
  key: z.object({ logId: z.string(), partnerCode: z.string() }),
  data: z.object({ localFilePath: z.string().optional(), bytes: z.number().optional() }),
  stages: {
    download: { from: 'pending', active: 'downloading', done: 'downloaded', failed: 'failed' },
    process: { from: 'downloaded', active: 'processing', done: ['processed', 'skipped'], failed: 'failed' },
  },
});

type Status = 'pending' | 'downloading' | 'downloaded' | 'processing' | 'processed' | 'skipped' | 'failed';
const key = { logId: 'l1', partnerCode: 'acme' };

describe('types carry the state machine', () => {
  it('infers statuses, key and data', async () => {
    const { item } = await logs.track(key, { bytes: 3 });
    expectTypeOf(item.status).toEqualTypeOf<Status>();
    expectTypeOf(item.key).toEqualTypeOf<{ logId: string; partnerCode: string }>();
    expectTypeOf(item.data.bytes).toEqualTypeOf<number | undefined>();
    expectTypeOf(await logs.get(key)).toEqualTypeOf<Item<Status, { logId: string; partnerCode: string }, { localFilePath?: string; bytes?: number }> | null>();
  });

  it('types leases by stage and complete targets by the stage\'s done statuses', async () => {
    const lease = await logs.claim('process', { owner: 'w', key });
    expectTypeOf(lease).toExtend<Lease<'process'> | null>();
    if (!lease) return;
    await logs.complete(lease, { to: 'skipped' });
    await logs.complete(lease, { data: { bytes: 1 } });
    // @ts-expect-error -- `downloaded` is a done status of `download`, not of `process`
    await logs.complete(lease, { to: 'downloaded' });
    // @ts-expect-error -- not a declared status at all
    await logs.complete(lease, { to: 'archived' });
    // @ts-expect-error -- data patch must match the data schema
    await logs.complete(lease, { data: { bytes: 'many' } });
  });

  it('types a batch result by where the item went, not the whole item', async () => {
    const leases = await logs.claimBatch('process', { owner: 'w', limit: 10 });
    const [done] = await logs.completeBatch(leases);
    if (done?.ok) {
      expectTypeOf(done.status).toEqualTypeOf<'processed' | 'skipped'>();
      expectTypeOf(done.notBefore).toEqualTypeOf<Date | null>();
      // @ts-expect-error -- a batch result no longer carries the item
      void done.item;
    }
    const [failed] = await logs.failBatch(leases.map((lease) => ({ lease, error: new Error('x') })));
    if (failed?.ok) expectTypeOf(failed.status).toEqualTypeOf<Status>();
  });

  it('rejects unknown stages and undeclared statuses at compile time', async () => {
    // @ts-expect-error -- no such stage
    await logs.claim('upload', { owner: 'w' });
    // @ts-expect-error -- not a declared status
    await logs.find({ status: 'archived' });
    // @ts-expect-error -- key fields must match the key schema
    await logs.track({ logId: 1, partnerCode: 'acme' });
    const stats = await logs.stats();
    expectTypeOf(stats.stages.download.claimable).toEqualTypeOf<number>();
    // @ts-expect-error -- no such stage (a misspelt `download`)
    void stats.stages.dowload;
    // @ts-expect-error -- not a declared status
    void stats.byStatus.pendng;

    new Tracker({
      store: new MemoryStore(),
      statuses: ['a', 'b', 'c'],
      // @ts-expect-error -- initial must be a declared status
      initial: 'z',
      key: z.object({ id: z.string() }),
      stages: { s: { from: 'a', active: 'b', done: 'c', failed: 'c' } },
    });

    new Tracker({
      store: new MemoryStore(),
      statuses: ['a', 'b', 'c'],
      initial: 'a',
      key: z.object({ id: z.string() }),
      // @ts-expect-error -- a stage may only use declared statuses
      stages: { s: { from: 'a', active: 'running', done: 'c', failed: 'c' } },
    });
  });

  it('makes track\'s data required where the data schema has required fields', () => {
    const fetches = new Tracker({
      store: new MemoryStore(),
      statuses: ['queued', 'running', 'done', 'failed'],
      initial: 'queued',
      key: z.object({ id: z.string() }),
      data: z.object({ url: z.string() }),
      stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } },
    });
    // @ts-expect-error -- `{}` is no valid data here: the data must be given
    void fetches.track({ id: 'a' });
    void fetches.track({ id: 'a' }, { url: 'https://example.com' });
    void fetches.track({ id: 'a' }, { url: 'https://example.com' }, { delayMs: 1_000 });
    // a generic wrapper passes on data that may be undefined
    const add = <D extends z.ZodType>(t: Tracker<string, z.ZodObject<{ id: z.ZodString }>, D>, id: string, data?: z.input<D>) => t.track({ id }, data);
    void add(fetches, 'b', { url: 'https://example.com' });
    // optional where the schema accepts `{}`, and where there is none
    void logs.track(key);
    void logs.track(key, undefined, { delayMs: 1_000 });
    expectTypeOf(logs.track).parameter(1).toEqualTypeOf<{ localFilePath?: string | undefined; bytes?: number | undefined } | undefined>();
  });

  it('types worker handler results and events', () => {
    logs.work('process', async (lease) => {
      expectTypeOf(lease.stage).toEqualTypeOf<'process'>();
      expectTypeOf(lease.fence).toEqualTypeOf<number>();
      return { to: 'processed' as const };
    });
    // @ts-expect-error -- handler may only complete to a done status of its stage
    logs.work('download', async () => ({ to: 'processed' as const }));
    // written plainly, without `as const`: a done status of the stage (one of several, or its only one)
    logs.work('process', async () => ({ to: 'skipped' }));
    logs.work('process', async (lease) => (lease.attempt > 1 ? { to: 'skipped' } : {}));
    logs.work('download', async () => ({ to: 'downloaded' }));
    // @ts-expect-error -- still only a done status of the stage
    logs.work('process', async () => ({ to: 'failed' }));
    // @ts-expect-error -- a field beside `to` and `data`: the item would be parked at run time
    logs.work('download', async () => ({ data: { bytes: 1 }, note: 'x' }));
    // @ts-expect-error -- likewise from a variable, where an object literal's own check does not reach
    logs.work('download', async () => {
      const result = { to: 'downloaded' as const, retries: 2 };
      return result;
    });
    logs.work('download', async () => {
      const result = { to: 'downloaded' as const, data: { bytes: 1 } };
      return result;
    });
    logs.work('download', async (lease) => (lease.attempt > 2 ? undefined : { data: { bytes: 2 } }));
    logs.work('download', () => {});
    // what compiled before the check for extra fields still does: an untyped helper's result,
    // handlers through generic wrappers, a class instance (its methods are not fields)
    const untyped = (value: unknown): any => value;
    logs.work('process', async (lease) => untyped(lease.key.logId));
    const withLogging = <L extends { key: unknown }>(handler: (lease: L) => Promise<void>) => async (lease: L) => handler(lease);
    logs.work('process', withLogging(async (lease) => {
      expectTypeOf(lease.key.logId).toEqualTypeOf<string>();
    }));
    const timed = <L, R>(handler: (lease: L) => Promise<R>) => async (lease: L) => handler(lease);
    logs.work('process', timed(async (lease) => ({ to: 'skipped' as const, data: { bytes: lease.attempt } })));
    class Outcome {
      to = 'processed' as const;
      toString() {
        return this.to;
      }
    }
    logs.work('process', async () => new Outcome());
    // a function-valued field is not a field of the result at run time either
    logs.work('process', async () => ({ to: 'processed' as const, cleanup: () => {} }));
    logs.on('failed', (e) => {
      expectTypeOf(e.willRetry).toEqualTypeOf<boolean>();
      expectTypeOf(e.key).toEqualTypeOf<{ logId: string; partnerCode: string }>();
      // the state machine's names, not any string: a typo in a comparison does not compile
      expectTypeOf(e.stage).toEqualTypeOf<'download' | 'process'>();
      expectTypeOf(e.status).toEqualTypeOf<Status>();
      // @ts-expect-error -- no such status
      void (e.status === 'dowloaded');
    });
    logs.on('completed', (e) => expectTypeOf(e.status).toEqualTypeOf<Status>());
    logs.on('reaped', (e) => expectTypeOf(e.status).toEqualTypeOf<Status>());
    logs.on('claimed', (e) => expectTypeOf(e.stage).toEqualTypeOf<'download' | 'process'>());
    // leaseLost reports what the store holds now: possibly a status no longer declared
    logs.on('leaseLost', (e) => expectTypeOf(e.status).toEqualTypeOf<string | null>());
  });

  it('names a tracker\'s lease, item and key for code written apart from it (LeaseOf, ItemOf, KeyOf)', async () => {
    async function download(lease: LeaseOf<typeof logs, 'download'>) {
      expectTypeOf(lease.key).toEqualTypeOf<{ logId: string; partnerCode: string }>();
      expectTypeOf(lease.item.data.bytes).toEqualTypeOf<number | undefined>();
      await logs.complete(lease, { to: 'downloaded', data: { bytes: 1 } });
      // @ts-expect-error -- a done status of another stage
      await logs.complete(lease, { to: 'processed' });
    }
    const lease = await logs.claim('download', { owner: 'w' });
    if (lease) await download(lease);
    const other = await logs.claim('process', { owner: 'w' });
    // @ts-expect-error -- a lease of another stage
    if (other) await download(other);
    expectTypeOf<ItemOf<typeof logs>>().toEqualTypeOf<Item<Status, { logId: string; partnerCode: string }, { localFilePath?: string; bytes?: number }>>();
    expectTypeOf<KeyOf<typeof logs>>().toEqualTypeOf<{ logId: string; partnerCode: string }>();
    // @ts-expect-error -- no such stage
    expectTypeOf<LeaseOf<typeof logs, 'dowload'>>().not.toBeNever();
  });

  it('takes one of notBefore and delayMs in reschedule', () => {
    void logs.reschedule(key, { delayMs: 1_000 });
    void logs.reschedule(key, { notBefore: new Date() });
    // @ts-expect-error -- neither: refused at run time
    void logs.reschedule(key, {});
    // @ts-expect-error -- both: refused at run time
    void logs.reschedule(key, { delayMs: 1, notBefore: new Date() });
  });

  it('lets a tool that only reads and steers items take any tracker as TrackerOperations', async () => {
    const ops: TrackerOperations = logs;
    expectTypeOf((await ops.retry({ logId: 'l1' }))?.status).toEqualTypeOf<string | undefined>();
    expectTypeOf(ops.definition.statuses).toEqualTypeOf<readonly string[]>();
    // @ts-expect-error -- the hand-offs need a Tracker
    void ops.claim;
    // the tracker's own type keeps its names
    const typed: TrackerOperations<Status> = logs;
    // @ts-expect-error -- not a declared status
    await typed.find({ status: 'archived' });
  });
});
