import { describe, expect, it } from 'vitest';
import { ConfigError, LeaseLostError } from '../index.js';
import { freshTracker, k, makeTracker, must, TTL } from './definition.js';
import type { StoreHarness } from './harness.js';

/** The operator's verbs: schedule, retry, cancel, reschedule, purge, each one conditional update. */
export function operateContract(harness: StoreHarness): void {
  const fresh = (options?: Parameters<typeof makeTracker>[1]) => freshTracker(harness, options);
  const repeats = Math.min(harness.raceRepeats ?? 100, 30);
  /** Parks `n` in the download stage's failed status. */
  const park = async (tracker: ReturnType<typeof makeTracker>, n: number) => {
    await tracker.track(k(n));
    const lease = must(await tracker.claim('download', { owner: 'w', key: k(n) }), 'claim');
    await tracker.fail(lease, new Error(`broken ${n}`), { retry: false });
  };

  describe('operate: scheduled work', () => {
    it('track with delayMs or notBefore is not claimable before then; an existing key is never changed', async () => {
      const { store, tracker } = await fresh();
      const first = await tracker.track(k(1), {}, { delayMs: 5_000 });
      expect(first.item.notBefore!.getTime() - first.item.createdAt.getTime()).toBe(5_000);
      const at = new Date(first.item.createdAt.getTime() + 60_000);
      await tracker.track(k(2), {}, { notBefore: at });
      expect(must(await tracker.get(k(2)), 'get').notBefore).toEqual(at);
      expect((await tracker.track(k(1), {}, { delayMs: 0 })).created).toBe(false);
      expect(await tracker.claim('download', { owner: 'w' })).toBeNull();
      expect((await tracker.stats()).waiting).toBe(2);
      await harness.elapse(store, 5_000);
      expect((await tracker.claim('download', { owner: 'w' }))?.key).toEqual(k(1));
      expect(await tracker.claim('download', { owner: 'w' })).toBeNull();
      await expect(tracker.track(k(3), {}, { delayMs: -1 })).rejects.toThrow(ConfigError);
      await expect(tracker.track(k(3), {}, { notBefore: new Date(Number.NaN) })).rejects.toThrow(/`track.notBefore`/);
    });

    it('claim-next takes the item claimable longest first, not the one tracked first', async () => {
      const { store, tracker } = await fresh();
      await tracker.track(k(1), {}, { delayMs: 2_000 });
      await tracker.track(k(2), {}, { delayMs: 1_000 });
      await tracker.track(k(3), {}, { delayMs: 3_000 });
      await harness.elapse(store, 5_000);
      const one = await tracker.claim('download', { owner: 'w' });
      const rest = await tracker.claimBatch('download', { owner: 'w', limit: 2 });
      expect([one, ...rest].map((lease) => lease?.key.seq)).toEqual([2, 1, 3]);
    });

    it('items due at one time are claimed, found and listed in the order they were tracked', async () => {
      const { store, tracker } = await fresh();
      const base = (await tracker.track(k(0))).item.createdAt.getTime();
      const at = new Date(base + 1_000);
      for (const n of [3, 1, 2]) await tracker.track(k(n), {}, { notBefore: at });
      // what a worker with nothing to claim asks for: the earliest of the waiting items
      const [next] = await store.find({ status: ['pending'], deadline: 'future' }, { limit: 1, returning: 'state' });
      expect(next?.key).toEqual(k(3));
      expect((await tracker.claim('download', { owner: 'w' }))?.key).toEqual(k(0));
      await harness.elapse(store, 2_000);
      expect((await tracker.find({ status: 'pending' })).map((item) => item.key.seq)).toEqual([3, 1, 2]);
      expect((await tracker.claimBatch('download', { owner: 'w', limit: 3 })).map((lease) => lease.key.seq)).toEqual([3, 1, 2]);
    });

    it('reschedule to a time (notBefore) keeps the item from claims until then', async () => {
      const { store, tracker } = await fresh();
      const tracked = await tracker.track(k(1));
      const at = new Date(tracked.item.createdAt.getTime() + 60_000);
      expect(must(await tracker.reschedule(k(1), { notBefore: at }), 'reschedule').notBefore).toEqual(at);
      await harness.elapse(store, 30_000);
      expect(await tracker.claim('download', { owner: 'w' })).toBeNull();
      await harness.elapse(store, 31_000);
      expect((await tracker.claim('download', { owner: 'w' }))?.key).toEqual(k(1));
    });

    it('reschedule moves a waiting item, and refuses one that is not waiting', async () => {
      const { store, tracker } = await fresh();
      await tracker.track(k(1));
      const moved = must(await tracker.reschedule(k(1), { delayMs: 30_000 }), 'reschedule');
      expect(moved.notBefore!.getTime() - moved.updatedAt.getTime()).toBe(30_000);
      expect(await tracker.claim('download', { owner: 'w' })).toBeNull();
      await harness.elapse(store, 30_000);
      const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
      expect(await tracker.reschedule(k(1), { delayMs: 1 })).toBeNull();
      expect(must(await tracker.get(k(1)), 'get').status).toBe('downloading');
      await tracker.complete(lease);
    });
  });

  describe('operate: retry', () => {
    it('retry puts a parked item back in its stage\'s first from status, attempts 0, claimable now, lastError kept', async () => {
      const { tracker } = await fresh();
      await park(tracker, 1);
      await tracker.track(k(2));
      await tracker.complete(must(await tracker.claim('download', { owner: 'w', key: k(2) }), 'claim'));
      const lease = must(await tracker.claim('process', { owner: 'w', key: k(2) }), 'claim');
      await tracker.fail(lease, 'bad parse', { retry: false });
      const one = must(await tracker.retry(k(1)), 'retry');
      expect(one).toMatchObject({ status: 'pending', attempts: 0, lastError: 'Error: broken 1', finishedAt: null });
      // the failed status is shared: the recorded stage decides where it goes back to
      expect(must(await tracker.retry(k(2)), 'retry')).toMatchObject({ status: 'downloaded', attempts: 0 });
      expect(await tracker.retry(k(1))).toBeNull();
      expect(await tracker.retry(k(99))).toBeNull();
      expect((await tracker.claim('download', { owner: 'w' }))?.key).toEqual(k(1));
    });

    it('retry with a stage takes only an item parked by that stage, never one another stage parked', async () => {
      const { tracker } = await fresh();
      await park(tracker, 1); // parked by download
      expect(await tracker.retry(k(1), { stage: 'process' })).toBeNull();
      expect(must(await tracker.get(k(1)), 'get')).toMatchObject({ status: 'failed', stage: 'download' });
      expect(must(await tracker.retry(k(1), { stage: 'download' }), 'retry')).toMatchObject({ status: 'pending', attempts: 0 });
    });

    it('retryAll works in bounded batches up to a limit and returns the count', async () => {
      const { tracker } = await fresh();
      for (let n = 0; n < 7; n++) await park(tracker, n);
      expect(await tracker.retryAll({ limit: 3 })).toBe(3);
      expect(await tracker.retryAll({ stage: 'process' })).toBe(0);
      expect(await tracker.retryAll({ stage: 'download' })).toBe(4);
      expect((await tracker.stats()).byStatus).toMatchObject({ pending: 7, failed: 0 });
    });

    it(`retry racing a claim-next: exactly one outcome per item, nothing half-applied (x${repeats})`, async () => {
      const { store, tracker } = await fresh();
      const peer = harness.peer ? makeTracker(await harness.peer(store)) : tracker;
      for (let round = 0; round < repeats; round++) {
        await park(tracker, round);
        const [retried, lease] = await Promise.all([tracker.retry(k(round)), peer.claim('download', { owner: 'racer' })]);
        const item = must(await tracker.get(k(round)), 'get');
        if (lease) {
          // the claim saw the retried item: the retry must have won first
          expect(retried).not.toBeNull();
          expect(item).toMatchObject({ status: 'downloading', fence: lease.fence });
          await peer.complete(lease);
        } else {
          expect(item.status).toBe(retried ? 'pending' : 'failed');
          if (retried) await tracker.complete(must(await tracker.claim('download', { owner: 'w', key: k(round) }), 'claim'));
        }
      }
    });
  });

  describe('operate: cancel', () => {
    it('cancel parks a waiting item with the reason; done and failed items are left alone', async () => {
      const { tracker } = await fresh();
      await tracker.track(k(1));
      const item = must(await tracker.cancel(k(1), { reason: 'partner withdrew the log' }), 'cancel');
      expect(item).toMatchObject({ status: 'failed', stage: 'download', lastError: 'cancelled: partner withdrew the log' });
      expect(await tracker.cancel(k(1), { reason: 'again' })).toBeNull();
      await tracker.track(k(2));
      await tracker.complete(must(await tracker.claim('download', { owner: 'w', key: k(2) }), 'claim'));
      // downloaded waits for the process stage: cancellable there
      expect(must(await tracker.cancel(k(2), { reason: 'skip' }), 'cancel')).toMatchObject({ status: 'failed', stage: 'process' });
      expect(await tracker.cancel(k(404), { reason: 'x' })).toBeNull();
      // a cancelled item can be retried like any parked one
      expect(must(await tracker.retry(k(2)), 'retry').status).toBe('downloaded');
    });

    it('cancel and retry return the item exactly as the store then holds it', async () => {
      const { tracker } = await fresh();
      await tracker.track(k(1));
      expect(await tracker.cancel(k(1), { reason: 'withdrawn' })).toEqual(await tracker.get(k(1)));
      // retry moves a parked item back into a status a stage claims from (a notifying update)
      expect(await tracker.retry(k(1))).toEqual(await tracker.get(k(1)));
    });

    it('cancel of a held item advances the fence: the holder\'s renew and complete are refused', async () => {
      const { tracker } = await fresh();
      await tracker.track(k(1));
      const lease = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
      const cancelled = must(await tracker.cancel(k(1), { reason: 'stop' }), 'cancel');
      expect(cancelled.fence).toBeGreaterThan(lease.fence);
      await expect(tracker.renew(lease)).rejects.toThrow(LeaseLostError);
      await expect(tracker.complete(lease)).rejects.toThrow(LeaseLostError);
      expect(must(await tracker.get(k(1)), 'get')).toMatchObject({ status: 'failed', lastError: 'cancelled: stop' });
    });

    it(`cancel racing complete: exactly one wins, the loser gets null or LeaseLostError (x${repeats})`, async () => {
      const { store, tracker } = await fresh();
      const peer = harness.peer ? makeTracker(await harness.peer(store)) : tracker;
      for (let round = 0; round < repeats; round++) {
        await tracker.track(k(round));
        const lease = must(await tracker.claim('download', { owner: 'w', key: k(round) }), 'claim');
        const [cancelled, completed] = await Promise.all([
          peer.cancel(k(round), { reason: 'race' }),
          tracker.complete(lease).catch((e: unknown) => e),
        ]);
        const item = must(await tracker.get(k(round)), 'get');
        if (completed instanceof LeaseLostError) {
          expect(cancelled).not.toBeNull();
          expect(item).toMatchObject({ status: 'failed', lastError: 'cancelled: race' });
        } else {
          expect(completed).toMatchObject({ status: 'downloaded' });
          // the item waits for the next stage now, so a cancel that came second parks it there
          if (cancelled) expect(item).toMatchObject({ status: 'failed', stage: 'process' });
          else expect(item.status).toBe('downloaded');
        }
      }
    });
  });

  describe('operate: purge', () => {
    it('purge deletes finished items only, bounded by limit and finishedBefore', async () => {
      const { store, tracker } = await fresh();
      for (let n = 0; n < 5; n++) await park(tracker, n);
      await harness.elapse(store, 60_000);
      await park(tracker, 5);
      const cutoff = new Date(must(await tracker.get(k(5)), 'get').finishedAt!.getTime() - 30_000);
      expect(await tracker.purge({ status: 'failed', finishedBefore: cutoff, limit: 2 })).toEqual({ deleted: 2 });
      expect(await tracker.purge({ status: 'failed', finishedBefore: cutoff })).toEqual({ deleted: 3 });
      expect((await tracker.stats()).byStatus.failed).toBe(1);
      expect(await tracker.get(k(5))).not.toBeNull();
      // gone for good: tracking the key again makes a new item
      expect((await tracker.track(k(0))).created).toBe(true);
    });

    it('purge with a limit deletes the items that finished first', async () => {
      const { store, tracker } = await fresh();
      for (const n of [0, 1, 2]) {
        await park(tracker, n);
        await harness.elapse(store, 1_000);
      }
      expect(await tracker.purge({ status: 'failed', limit: 1 })).toEqual({ deleted: 1 });
      expect((await tracker.find({ status: 'failed' })).map((item) => item.key)).toEqual([k(1), k(2)]);
    });

    it('purge\'s finishedBefore is strict: an item that finished exactly then stays', async () => {
      const { tracker } = await fresh();
      await park(tracker, 0);
      const at = must(await tracker.get(k(0)), 'get').finishedAt!;
      // the store's `deadline: { before }` reads as `<`, not `<=` (a store whose times are finer
      // than a Date's, as PostgreSQL's microseconds, passes either way: its instant lies after `at`)
      expect(await tracker.purge({ status: 'failed', finishedBefore: at })).toEqual({ deleted: 0 });
      expect(await tracker.get(k(0))).not.toBeNull();
      expect(await tracker.purge({ status: 'failed', finishedBefore: new Date(at.getTime() + 1) })).toEqual({ deleted: 1 });
    });

    it('purge by olderThanMs measures the age by the store\'s clock', async () => {
      const { store, tracker } = await fresh();
      for (let n = 0; n < 3; n++) await park(tracker, n);
      await harness.elapse(store, 60_000);
      await park(tracker, 3);
      expect(await tracker.purge({ status: 'failed', olderThanMs: 120_000 })).toEqual({ deleted: 0 });
      expect(await tracker.purge({ status: 'failed', olderThanMs: 30_000, limit: 1 })).toEqual({ deleted: 1 });
      expect(await tracker.purge({ status: 'failed', olderThanMs: 30_000 })).toEqual({ deleted: 2 });
      expect((await tracker.find({ status: 'failed' })).map((item) => item.key)).toEqual([k(3)]);
      await expect(tracker.purge({ status: 'failed', olderThanMs: 1, finishedBefore: new Date() })).rejects.toThrow(/`purge.olderThanMs`.*not both/);
      await expect(tracker.purge({ status: 'failed', olderThanMs: -1 })).rejects.toThrow(/`purge.olderThanMs`/);
    });

    it('purge refuses statuses items wait or are held in', async () => {
      const { tracker } = await fresh();
      for (const status of ['pending', 'downloading', 'downloaded', 'nope'] as const) {
        await expect(tracker.purge({ status: status as 'pending' })).rejects.toThrow(ConfigError);
      }
      await expect(tracker.purge({ status: 'processed', limit: 0 })).rejects.toThrow(/`purge.limit`/);
    });

    it('a stale lease of a purged and re-tracked item cannot touch the new item', async () => {
      const { store, tracker } = await fresh();
      await tracker.track(k(1));
      const stale = must(await tracker.claim('download', { owner: 'stale', key: k(1) }), 'claim');
      await tracker.cancel(k(1), { reason: 'gone' });
      expect(await tracker.purge({ status: 'failed' })).toEqual({ deleted: 1 });
      await tracker.track(k(1));
      await harness.elapse(store, TTL);
      const fresh2 = must(await tracker.claim('download', { owner: 'new', key: k(1) }), 'claim');
      expect(fresh2.fence).toBe(stale.fence);
      await expect(tracker.complete(stale)).rejects.toThrow(LeaseLostError);
      expect(must(await tracker.get(k(1)), 'get')).toMatchObject({ status: 'downloading', owner: 'new' });
    });
  });
}
