import { describe, expect, it } from 'vitest';
import { LeaseLostError, NonRetryableError } from '../index.js';
import { freshTracker, k, makeTracker, must, TTL } from './definition.js';
import type { StoreHarness } from './harness.js';

/** What settles return, batch settles, and reading items back (stats, get, find). */
export function settleContract(harness: StoreHarness): void {
  const fresh = (options?: Parameters<typeof makeTracker>[1]) => freshTracker(harness, options);

  describe('what a settle returns', () => {
    it('complete, fail and release return the item exactly as the store then holds it', async () => {
      const { tracker } = await fresh();
      for (let n = 0; n < 4; n++) await tracker.track(k(n), { bytes: n });
      const claimed = async (n: number) => must(await tracker.claim('download', { owner: 'w', key: k(n) }), 'claim');
      const a = await claimed(0);
      await tracker.renew(a);
      expect(await tracker.complete(a, { data: { path: '/a' } })).toEqual(await tracker.get(k(0)));
      expect(await tracker.fail(await claimed(1), new Error('again'))).toEqual(await tracker.get(k(1)));
      expect(await tracker.fail(await claimed(2), new NonRetryableError('broken'))).toEqual(await tracker.get(k(2)));
      expect(await tracker.release(await claimed(3))).toEqual(await tracker.get(k(3)));
      // and through the next stage, whose claim started from a completed item
      const next = must(await tracker.claim('process', { owner: 'w2', key: k(0) }), 'claim');
      expect(await tracker.complete(next, { to: 'skipped' })).toEqual(await tracker.get(k(0)));
    });
  });

  describe('what a claim returns', () => {
    it("a lease's item, single or batched, from waiting or from an earlier stage, is exactly what the store then holds", async () => {
      const { tracker } = await fresh();
      for (let n = 0; n < 4; n++) await tracker.track(k(n), { bytes: n });
      const one = must(await tracker.claim('download', { owner: 'w1', key: k(0) }), 'claim');
      expect(one.item).toEqual(await tracker.get(k(0)));
      // an owner with a lone surrogate: the lease names it as the store keeps it
      const batch = await tracker.claimBatch('download', { owner: 'w2\uD800', limit: 2 });
      expect(batch).toHaveLength(2);
      for (const lease of batch) expect(lease.item).toEqual(await tracker.get(lease.key));
      // with a `claimed` listener the claim also reads each item's deadline from before it
      const waits: number[] = [];
      tracker.on('claimed', (e) => waits.push(e.waitedMs));
      const listened = must(await tracker.claim('download', { owner: 'w4' }), 'claim');
      expect(listened.item).toEqual(await tracker.get(listened.key));
      expect(waits).toHaveLength(1);
      // the next stage claims a completed item: finishedAt goes back to null, claimedAt moves on
      await tracker.complete(one);
      const next = must(await tracker.claim('process', { owner: 'w3', key: k(0) }), 'claim');
      expect(next.item).toEqual(await tracker.get(k(0)));
      expect(next.item).toMatchObject({ status: 'processing', owner: 'w3', finishedAt: null, stage: 'process' });
    });
  });

  describe('batch settle', () => {
    it('completeBatch settles each lease under its own fence and reports lost ones per item', async () => {
      const { store, tracker } = await fresh();
      for (let n = 0; n < 4; n++) await tracker.track(k(n));
      const leases = await tracker.claimBatch('download', { owner: 'w', limit: 4 });
      await tracker.release(leases[2]!);
      const results = await tracker.completeBatch(leases, { data: { note: 'batch' } });
      expect(results.map((r) => r.ok)).toEqual([true, true, false, true]);
      // a settled lease's result says where the item is now: `downloaded` is what `process` claims from
      const settled = results[0]!;
      expect(settled.ok && settled.status).toBe('downloaded');
      expect(settled.ok && settled.notBefore).toBeInstanceOf(Date);
      const lost = results[2]!;
      expect(!lost.ok && lost.error).toBeInstanceOf(LeaseLostError);
      const stats = await tracker.stats();
      expect(stats.byStatus).toMatchObject({ downloaded: 3, pending: 1 });
      void store;
    });

    it('completeBatch refuses a stale lease whose item was reaped and claimed again (same status, newer fence)', async () => {
      const { store, tracker } = await fresh();
      await tracker.track(k(1));
      await tracker.track(k(2));
      const [stale] = await tracker.claimBatch('download', { owner: 'stale', limit: 1 });
      await harness.elapse(store, TTL + 1);
      await tracker.reapStale();
      await harness.elapse(store, 60_000);
      const current = must(await tracker.claim('download', { owner: 'new', key: stale!.key }), 'claim');
      const other = must(await tracker.claim('download', { owner: 'new', key: k(2) }), 'claim');
      const results = await tracker.completeBatch([stale!, other]);
      expect(results.map((r) => r.ok)).toEqual([false, true]);
      expect(must(await tracker.get(stale!.key), 'get')).toMatchObject({ status: 'downloading', fence: current.fence, owner: 'new' });
    });

    it('a batch may hold an item twice (its stale lease and its current one): each is judged by its own fence, in order', async () => {
      const { store, tracker } = await fresh();
      for (let n = 1; n <= 3; n++) await tracker.track(k(n));
      const stale = must(await tracker.claim('download', { owner: 'stale', key: k(1) }), 'claim');
      const staleToo = must(await tracker.claim('download', { owner: 'stale', key: k(2) }), 'claim');
      await harness.elapse(store, TTL + 1);
      await tracker.reapStale();
      await harness.elapse(store, 60_000);
      const current = must(await tracker.claim('download', { owner: 'new', key: k(1) }), 'claim');
      const currentToo = must(await tracker.claim('download', { owner: 'new', key: k(2) }), 'claim');
      const other = must(await tracker.claim('download', { owner: 'new', key: k(3) }), 'claim');
      // stale first, then current; and the other way round
      const results = await tracker.completeBatch([stale, current, currentToo, staleToo, other]);
      expect(results.map((r) => r.ok)).toEqual([false, true, true, false, true]);
      for (const n of [1, 2, 3]) expect(must(await tracker.get(k(n)), 'get').status).toBe('downloaded');
    });

    it('updates of one item in one batch apply in the order given, also across kinds of change', async () => {
      const { tracker } = await fresh();
      for (let n = 1; n <= 2; n++) await tracker.track(k(n));
      const s = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
      const r = must(await tracker.claim('download', { owner: 'w', key: k(2) }), 'claim');
      // park s; then retry r, then park r: the retry comes first, so r waits again and its park is too late
      const results = await tracker.failBatch([
        { lease: s, error: new NonRetryableError('broken') },
        { lease: r, error: new Error('again') },
        { lease: r, error: new NonRetryableError('broken') },
      ]);
      expect(results.map((x) => x.ok)).toEqual([true, true, false]);
      expect(must(await tracker.get(k(1)), 'get').status).toBe('failed');
      expect(must(await tracker.get(k(2)), 'get')).toMatchObject({ status: 'pending', lastError: 'Error: again' });
    });

    it('failBatch retries or parks each lease under its own fence and reports lost ones per item', async () => {
      const { tracker } = await fresh();
      for (let n = 0; n < 4; n++) await tracker.track(k(n));
      const leases = await tracker.claimBatch('download', { owner: 'w', limit: 4 });
      const bySeq = (seq: number) => leases.find((l) => l.key.seq === seq)!;
      await tracker.complete(bySeq(3));
      const results = await tracker.failBatch([
        { lease: bySeq(0), error: new Error('retry me') },
        { lease: bySeq(1), error: new NonRetryableError('broken') },
        { lease: bySeq(2), error: 'no retry', retry: false },
        { lease: bySeq(3), error: 'too late' },
      ]);
      expect(results.map((r) => r.ok)).toEqual([true, true, true, false]);
      expect(results.slice(0, 3).map((r) => r.ok && [r.status, r.notBefore === null])).toEqual([['pending', false], ['failed', true], ['failed', true]]);
      const retried = await tracker.get(k(0));
      expect(results[0]!.ok && results[0]!.notBefore!.getTime()).toBe(retried!.notBefore!.getTime());
      expect(must(await tracker.get(k(0)), 'get')).toMatchObject({ status: 'pending', lastError: 'Error: retry me' });
      expect(must(await tracker.get(k(1)), 'get')).toMatchObject({ status: 'failed', lastError: 'NonRetryableError: broken' });
      expect(must(await tracker.get(k(2)), 'get').status).toBe('failed');
      expect(must(await tracker.get(k(3)), 'get').status).toBe('downloaded');
    });
  });

  describe('stats, get and find', () => {
    it('counts per status, expired leases and items waiting on backoff', async () => {
      const { store, tracker } = await fresh();
      for (let n = 0; n < 5; n++) await tracker.track(k(n));
      const [a, b] = await tracker.claimBatch('download', { owner: 'w', limit: 2 });
      await tracker.fail(a!, 'later');
      void b;
      await harness.elapse(store, TTL - 500);
      await tracker.claim('download', { owner: 'w' });
      await harness.elapse(store, 600);
      const stats = await tracker.stats();
      expect(stats).toMatchObject({ total: 5, expiredLeases: 1, waiting: 0, claimable: 3 });
      expect(stats.stages.download).toMatchObject({ waiting: 0, claimable: 3, active: 1, expired: 1, done: 0, failed: 0 });
      expect(stats.byStatus).toMatchObject({ pending: 3, downloading: 2, processed: 0 });
      const waiting = await tracker.claim('download', { owner: 'w' });
      await tracker.fail(waiting!, 'again');
      expect((await tracker.stats()).waiting).toBe(1);
      expect((await tracker.find({ status: 'downloading' })).map((i) => i.key.seq).sort((a, b) => a - b)).toEqual([1, 2]);
      expect(await tracker.find({ limit: 2 })).toHaveLength(2);
    });
  });
}
