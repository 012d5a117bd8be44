import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { LeaseLostError, Tracker, ValidationError, type KeySchema, type Store } from '../index.js';
import { countingStore } from './counting.js';
import { freshTracker, k, makeTracker, must, TTL } from './definition.js';
import type { StoreHarness } from './harness.js';

/** A tracker of one stage `go` (new → busy → done, or failed) over `store`, with the key and data schemas given. */
function goTracker<K extends KeySchema, D extends z.ZodType = z.ZodType<Record<string, unknown>>>(store: Store, key: K, data?: D) {
  return new Tracker<'new' | 'busy' | 'done' | 'failed', K, D>({
    store,
    statuses: ['new', 'busy', 'done', 'failed'],
    initial: 'new',
    key,
    ...(data ? { data } : {}),
    stages: { go: { from: 'new', active: 'busy', done: 'done', failed: 'failed' } },
  });
}

/** Any key field name and type; data that round-trips; definitions that change under items. */
export function edgeContract(harness: StoreHarness): void {
  const fresh = (options?: Parameters<typeof makeTracker>[1]) => freshTracker(harness, options);

  describe('keys: any field name, every scalar type', () => {
    it('key fields named like leasehold\'s own (id, status, data, owner, deadline), with Date, boolean and enum types', async () => {
      const store = await harness.create();
      const tracker = goTracker(store, z.object({ id: z.string(), status: z.number(), data: z.boolean(), owner: z.enum(['ops', 'dev']), deadline: z.date() }));
      const day = new Date('2026-03-01T12:34:56.789Z');
      const key = { id: 'a', status: 1.5, data: true, owner: 'ops' as const, deadline: day };
      expect((await tracker.track(key)).created).toBe(true);
      expect((await tracker.track({ ...key, deadline: new Date(day) })).created).toBe(false);
      expect((await tracker.track({ ...key, data: false })).created).toBe(true);
      const lease = must(await tracker.claim('go', { owner: 'w', key }), 'claim');
      expect(lease.key).toEqual(key);
      expect(lease.key.deadline).toBeInstanceOf(Date);
      await tracker.complete(lease);
      expect(await tracker.get(key)).toMatchObject({ key, status: 'done' });
      expect(must(await tracker.get({ ...key, data: false }), 'get').status).toBe('new');
    });
  });

  it('a Date in a key is the caller\'s: changing it, or one read back, changes no stored item', async () => {
    const store = await harness.create();
    const tracker = goTracker(store, z.object({ day: z.date() }));
    // one Date object, moved on between tracks (as a loop over days does)
    const day = new Date('2026-01-01T00:00:00Z');
    for (let i = 0; i < 3; i++) {
      expect((await tracker.track({ day })).created).toBe(true);
      day.setUTCDate(day.getUTCDate() + 1);
    }
    const first = { day: new Date('2026-01-01T00:00:00Z') };
    const found = must(await tracker.get(first), 'get');
    expect(found.key).toEqual(first);
    found.key.day.setUTCFullYear(2030);
    const lease = must(await tracker.claim('go', { owner: 'w', key: first }), 'claim');
    expect(lease.key).toEqual(first);
    lease.key.day.setUTCFullYear(2031);
    // the handler changed its key: the item is still found, completed and counted
    await tracker.complete(lease);
    expect(must(await tracker.get(first), 'get').status).toBe('done');
    expect((await tracker.find({ status: 'new' })).map((item) => item.key.day.toISOString()).sort()).toEqual(['2026-01-02T00:00:00.000Z', '2026-01-03T00:00:00.000Z']);
  });

  describe('data round-trips, or nothing is written', () => {
    const dataTracker = (store: Store) =>
      new Tracker({
        store,
        statuses: ['new', 'busy', 'done', 'failed'],
        initial: 'new',
        key: z.object({ id: z.string() }),
        data: z.object({
          at: z.date().optional(),
          flag: z.boolean().optional(),
          level: z.enum(['low', 'high']).optional(),
          nested: z.object({ when: z.date(), list: z.array(z.number()) }).optional(),
          name: z.string().trim().optional(),
          wrapped: z.string().transform((s) => `[${s}]`).optional(),
          day: z.codec(z.iso.datetime(), z.date(), { decode: (s) => new Date(s), encode: (d) => d.toISOString() }).optional(),
        }),
        stages: { go: { from: 'new', active: 'busy', done: 'done', failed: 'failed' } },
      });

    it('Dates, booleans, enums and nested values read back equal on every path (track, get, claim, complete)', async () => {
      const tracker = dataTracker(await harness.create());
      const at = new Date('2026-01-02T03:04:05.678Z');
      const data = { at, flag: false, level: 'high' as const, nested: { when: new Date(5), list: [1, 2.5] }, name: '  padded  ' };
      const tracked = await tracker.track({ id: 'a' }, data);
      const expected = { ...data, name: 'padded' };
      expect(tracked.item.data).toEqual(expected);
      expect(must(await tracker.get({ id: 'a' }), 'get').data).toEqual(expected);
      const lease = must(await tracker.claim('go', { owner: 'w' }), 'claim');
      expect(lease.item.data).toEqual(expected);
      expect(lease.item.data.at).toBeInstanceOf(Date);
      const done = await tracker.complete(lease, { data: { at: new Date(at.getTime() + 1) } });
      expect(done.data.at).toEqual(new Date(at.getTime() + 1));
      expect(must(await tracker.get({ id: 'a' }), 'get').data).toEqual({ ...expected, at: new Date(at.getTime() + 1) });
    });

    it('-0 in data reads back as 0 on every path, as JSON stores it', async () => {
      const tracker = dataTracker(await harness.create());
      const tracked = await tracker.track({ id: 'z' }, { nested: { when: new Date(5), list: [-0, 1] } });
      const zeros = [tracked.item.data.nested!.list[0], must(await tracker.get({ id: 'z' }), 'get').data.nested!.list[0], must(await tracker.claim('go', { owner: 'w' }), 'claim').item.data.nested!.list[0]];
      expect(zeros.map((n) => Object.is(n, 0))).toEqual([true, true, true]);
    });

    it('a codec stores its input form and reads back the decoded value', async () => {
      const tracker = dataTracker(await harness.create());
      await tracker.track({ id: 'c' }, { day: '2026-05-05T00:00:00.000Z' });
      expect(must(await tracker.get({ id: 'c' }), 'get').data.day).toEqual(new Date('2026-05-05T00:00:00.000Z'));
    });

    it('a transform whose output does not read back as itself is refused before anything is written, naming the field', async () => {
      const tracker = dataTracker(await harness.create());
      const error = await tracker.track({ id: 'b' }, { wrapped: 'abc' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect(String(error)).toMatch(/`track` of item \{"id":"b"\}.*wrapped.*\.transform\(\)/);
      expect(await tracker.get({ id: 'b' })).toBeNull();
      // and on complete: the lease stays held and the item unchanged
      await tracker.track({ id: 'b' }, { name: 'kept' });
      const lease = must(await tracker.claim('go', { owner: 'w' }), 'claim');
      await expect(tracker.complete(lease, { data: { wrapped: 'x' } })).rejects.toThrow(ValidationError);
      expect(must(await tracker.get({ id: 'b' }), 'get')).toMatchObject({ status: 'busy', data: { name: 'kept' } });
    });

    it('values that cannot be stored (Map, NaN, class instances) are refused by path', async () => {
      const store = await harness.create();
      const tracker = goTracker(store, z.object({ id: z.string() }), z.object({ extra: z.unknown() }));
      for (const extra of [new Map([[1, 2]]), Number.NaN, new (class Point {})(), [1, undefined]]) {
        await expect(tracker.track({ id: 'x' }, { extra })).rejects.toThrow(/extra.*cannot be stored/);
      }
      expect(await tracker.get({ id: 'x' })).toBeNull();
    });
  });

  describe('a redeploy strands nothing', () => {
    it('items whose attempts reached a lowered retry.maxAttempts are parked, saying why, instead of waiting forever', async () => {
      const { store, tracker } = await fresh({ maxAttempts: 5 });
      await tracker.track(k(1));
      await tracker.track(k(2));
      for (let i = 0; i < 2; i++) {
        const lease = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
        await tracker.fail(lease, 'flaky');
        await harness.elapse(store, 60_000);
      }
      const lowered = makeTracker(store, { maxAttempts: 2 });
      expect((await lowered.claim('download', { owner: 'w' }))?.key).toEqual(k(2));
      // the stranded item is parked on the way, never handed to a worker
      expect(await lowered.claim('download', { owner: 'w' })).toBeNull();
      const parked = must(await lowered.get(k(1)), 'get');
      expect(parked).toMatchObject({ status: 'failed', stage: 'download' });
      expect(parked.lastError).toMatch(/retry\.maxAttempts` is 2/);
      expect((await lowered.stats()).byStatus.failed).toBe(1);
    });

    it('items in statuses the definition no longer declares are counted and findable', async () => {
      const store = await harness.create();
      const old = new Tracker({
        store,
        statuses: ['new', 'busy', 'legacy', 'failed'],
        initial: 'new',
        key: z.object({ id: z.string() }),
        stages: { go: { from: 'new', active: 'busy', done: 'legacy', failed: 'failed' } },
      });
      await old.track({ id: 'a' });
      await old.track({ id: 'b' });
      await old.complete(must(await old.claim('go', { owner: 'w', key: { id: 'a' } }), 'claim'));
      const current = goTracker(store, z.object({ id: z.string() }));
      const stats = await current.stats();
      expect(stats).toMatchObject({ total: 2, undeclared: { legacy: 1 } });
      expect(stats.byStatus).toMatchObject({ new: 1, done: 0 });
      const found = await current.find({ undeclared: true });
      expect(found.map((i) => [i.key.id, i.status])).toEqual([['a', 'legacy']]);
      expect(must(await current.get({ id: 'a' }), 'get').status).toBe('legacy');
      // a poller that tracks the key again is told it exists, as `get` reads it
      expect(await current.track({ id: 'a' })).toMatchObject({ created: false, item: { status: 'legacy' } });
    });
  });

  describe('the reap is bounded', () => {
    it('works in batches of `batchSize` with a bounded number of store calls each, and draws backoff per item', async () => {
      const inner = await harness.create();
      const { store, calls } = countingStore(inner);
      let draws = 0;
      const tracker = makeTracker(store, { backoff: () => 1_000 + ++draws * 1_000 });
      for (let n = 0; n < 25; n++) await tracker.track(k(n));
      expect(await tracker.claimBatch('download', { owner: 'w', limit: 25 })).toHaveLength(25);
      await harness.elapse(inner, TTL + 1);
      calls.length = 0;
      draws = 0;
      const reaped: Date[] = [];
      tracker.on('reaped', (e) => reaped.push(e.nextAttemptAt!));
      expect(await tracker.reapStale({ batchSize: 10 })).toEqual({ retried: 25, failed: 0 });
      // 3 batches of the download stage (10, 10, 5) and one empty read of the process stage
      const perBatch = inner.capabilities.batchSettle ? 2 : 11;
      expect(calls.length).toBeLessThanOrEqual(3 * perBatch + 1);
      expect(calls.filter((c) => c === 'find')).toHaveLength(4);
      // every item drew its own delay: no two come back at the same instant
      expect(new Set(reaped.map((d) => d.getTime())).size).toBe(25);
      expect((await tracker.stats()).byStatus.pending).toBe(25);
    });

    it('a lease renewed after the reaper read it is not reaped', async () => {
      const { store, tracker } = await fresh();
      await tracker.track(k(1));
      const lease = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
      await harness.elapse(store, TTL + 1);
      // the holder renews between the reaper's read (which found the lease expired) and its
      // update: the update's own guard (still expired) must refuse it
      const find = store.find.bind(store);
      let renewed = false;
      Object.assign(store, {
        find: async (...args: Parameters<Store['find']>) => {
          const rows = await find(...args);
          if (!renewed && rows.length > 0) {
            renewed = true;
            await tracker.renew(lease);
          }
          return rows;
        },
      });
      expect(await tracker.reapStale()).toEqual({ retried: 0, failed: 0 });
      expect(renewed).toBe(true);
      expect((await tracker.complete(lease)).status).toBe('downloaded');
    });
  });

  describe('failure messages are stored whole and well-formed', () => {
    it('a message cut at 2,000 characters keeps whole characters, a lone surrogate is stored as U+FFFD, and the rest of the batch settles', async () => {
      const { tracker } = await fresh();
      for (let n = 0; n < 3; n++) await tracker.track(k(n));
      const leases = await tracker.claimBatch('download', { owner: 'w', limit: 3 });
      expect(leases).toHaveLength(3);
      // `Error: ` + 1,992 characters puts the emoji (two code units) across the 2,000 cut
      const straddling = new Error(`${'y'.repeat(1_992)}😀 tail`);
      const lone = new Error(`half a pair: \uD83D here`);
      const results = await tracker.failBatch([
        { lease: leases[0]!, error: straddling },
        { lease: leases[1]!, error: lone },
      ]);
      expect(results.map((r) => r.ok)).toEqual([true, true]);
      expect((await tracker.complete(leases[2]!)).status).toBe('downloaded');
      const cut = must(await tracker.get(leases[0]!.key), 'get').lastError!;
      expect(cut).toBe(`Error: ${'y'.repeat(1_992)}`);
      expect(must(await tracker.get(leases[1]!.key), 'get').lastError).toBe('Error: half a pair: \uFFFD here');
    });
  });

  it('a failure message holding a NUL character (a binary file read as text) is recorded, with U+FFFD', async () => {
    const { tracker } = await fresh();
    await tracker.track(k(1));
    const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
    const failed = await tracker.fail(lease, new SyntaxError('Unexpected token \'\0\', "\0\u0001PK" is not valid JSON'), { retry: false });
    expect(failed.lastError).toBe('SyntaxError: Unexpected token \'\uFFFD\', "\uFFFD\u0001PK" is not valid JSON');
    expect(must(await tracker.get(k(1)), 'get').lastError).toBe(failed.lastError);
  });

  describe('conditions', () => {
    it('a status listed twice in a condition matches, changes and deletes each item once', async () => {
      const { store } = await fresh();
      for (let n = 0; n < 3; n++) await store.insert({ key: k(n), status: 'pending', data: {} });
      const changed = await store.update({ status: ['pending', 'pending'] }, { status: 'downloading', bumpFence: true }, { returning: 'state' });
      expect(changed.map((item) => item.fence)).toEqual([1, 1, 1]);
      expect((await store.find({ status: ['downloading', 'downloading'] })).map((item) => item.key.seq).sort()).toEqual([0, 1, 2]);
      expect(await store.delete({ status: ['downloading', 'downloading'] }, { limit: 10 })).toBe(3);
    });
  });

  describe('concurrent claimers each get their share', () => {
    // a claim with a `claimed` listener also reads each item's deadline before the claim
    // (`UpdateOptions.priorDeadline`), on some stores by another statement shape: both race alike
    const racers = async (listening: boolean) => {
      const { store, tracker } = await fresh();
      const peers = harness.peer ? await Promise.all([1, 2, 3].map(() => harness.peer!(store))) : [];
      const trackers = [tracker, ...peers.map((s) => makeTracker(s))];
      const waited: number[] = [];
      if (listening) for (const t of trackers) t.on('claimed', (e) => waited.push(e.waitedMs));
      // k(0) claimable from now, the others due a minute before (store clock)
      const trackAll = async (n: number) => {
        const since = (await tracker.track(k(0))).item.createdAt.getTime();
        for (let i = 1; i < n; i++) await tracker.track(k(i), {}, { notBefore: new Date(since - 60_000) });
      };
      // each claim reported, and where the store tells, how long it waited (at least the minute)
      const expectWaited = (n: number) => {
        expect(waited).toHaveLength(listening ? n : 0);
        if (listening) expect(waited.filter((ms) => ms >= 60_000)).toHaveLength(store.capabilities.priorDeadline ? n - 1 : 0);
      };
      return { trackers, trackAll, expectWaited };
    };

    for (const listening of [false, true]) {
      const how = listening ? ' (with a claimed listener)' : '';
      it(`N concurrent claimBatch calls over N×limit eligible items claim all of them, each exactly once${how}`, async () => {
        const { trackers, trackAll, expectWaited } = await racers(listening);
        await trackAll(40);
        const batches = await Promise.all([0, 1, 2, 3].map((i) => trackers[i % trackers.length]!.claimBatch('download', { owner: `w${i}`, limit: 10 })));
        const seqs = batches.flat().map((l) => l.key.seq).sort((a, b) => a - b);
        expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => i));
        expectWaited(40);
      });

      it(`concurrent claim-next calls hand out every item once${how}`, async () => {
        const { trackers, trackAll, expectWaited } = await racers(listening);
        await trackAll(30);
        const won: number[] = [];
        await Promise.all(
          Array.from({ length: 6 }, async (_, w) => {
            for (;;) {
              const lease = await trackers[w % trackers.length]!.claim('download', { owner: `w${w}` });
              if (!lease) return;
              won.push(lease.key.seq);
            }
          }),
        );
        expect(won.sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
        expectWaited(30);
      });
    }

    it('a stage with several from statuses claims from each, oldest first, and retries to the first', async () => {
      const store = await harness.create();
      const tracker = new Tracker({
        store,
        statuses: ['new', 'checking', 'resubmitted', 'reviewing', 'done', 'failed'],
        initial: 'new',
        key: z.object({ id: z.number() }),
        stages: {
          check: { from: 'new', active: 'checking', done: 'resubmitted', failed: 'failed' },
          review: { from: ['new', 'resubmitted'], active: 'reviewing', done: 'done', failed: 'failed' },
        },
        retry: { backoff: () => 0 },
      });
      for (const id of [1, 2, 3]) await tracker.track({ id });
      await harness.elapse(store, 1_000);
      await tracker.complete(must(await tracker.claim('check', { owner: 'w', key: { id: 2 } }), 'claim'));
      const order: number[] = [];
      const leases = [];
      for (let i = 0; i < 3; i++) {
        const lease = must(await tracker.claim('review', { owner: 'w' }), 'claim');
        order.push(lease.key.id);
        leases.push(lease);
      }
      expect(order).toEqual([1, 3, 2]);
      expect(await tracker.claim('review', { owner: 'w' })).toBeNull();
      expect((await tracker.fail(leases[2]!, 'again')).status).toBe('new');
    });
  });

  describe('messages say what happened', () => {
    it('settling a lease twice says it was already settled, not lost', async () => {
      const { tracker } = await fresh();
      await tracker.track(k(1));
      const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
      await tracker.complete(lease);
      const error = await tracker.complete(lease).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseLostError);
      expect(error).toMatchObject({ reason: 'settled' });
      expect(String(error)).toMatch(/already completed by this process/);
    });
  });
}
