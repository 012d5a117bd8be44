import { describe, expect, it } from 'vitest';
import { freshTracker, k, must, TTL } from './definition.js';
import type { StoreHarness } from './harness.js';

/**
 * What each condition leaves alone: the items beside the one a call is for. A store that drops
 * one part of a condition (a purge that ignores the status, a claim by key that ignores the
 * deadline) passes every test whose items all match the rest of it; these put items that must
 * not match next to the ones that must.
 */
export function bystanderContract(harness: StoreHarness): void {
  describe('bystanders: what a condition leaves alone', () => {
    it('purge deletes the parked item only, never the waiting, held, retrying or done ones beside it, however old', async () => {
      const { store, tracker } = await freshTracker(harness);
      await tracker.track(k(1)); // waiting
      await tracker.track(k(2));
      must(await tracker.claim('download', { owner: 'w', key: k(2) }), 'claim'); // held, its lease will expire
      await tracker.track(k(3));
      await tracker.fail(must(await tracker.claim('download', { owner: 'w', key: k(3) }), 'claim'), new Error('flaky')); // retrying
      await tracker.track(k(4));
      await tracker.complete(must(await tracker.claim('download', { owner: 'w', key: k(4) }), 'claim')); // waits for process
      await tracker.track(k(5));
      await tracker.fail(must(await tracker.claim('download', { owner: 'w', key: k(5) }), 'claim'), new Error('broken'), { retry: false }); // parked
      await tracker.track(k(6));
      await tracker.complete(must(await tracker.claim('download', { owner: 'w', key: k(6) }), 'claim'));
      await tracker.complete(must(await tracker.claim('process', { owner: 'w', key: k(6) }), 'claim')); // done
      await harness.elapse(store, 10 * TTL);
      const cutoff = new Date(must(await tracker.get(k(5)), 'get').updatedAt.getTime() + 5 * TTL);
      expect(await tracker.purge({ status: 'failed', finishedBefore: cutoff })).toEqual({ deleted: 1 });
      expect(await tracker.purge({ status: 'failed', olderThanMs: 1 })).toEqual({ deleted: 0 });
      expect(await tracker.purge({ status: 'processed', olderThanMs: 1 })).toEqual({ deleted: 1 });
      for (const n of [1, 2, 3, 4]) expect(await tracker.get(k(n)), `item ${n}`).not.toBeNull();
      expect(await tracker.get(k(5))).toBeNull();
    });

    it('a claim by key waits for the deadline as claim-next does: scheduled, backing off, released with a delay, rescheduled', async () => {
      const { store, tracker } = await freshTracker(harness);
      await tracker.track(k(1), {}, { delayMs: 5_000 });
      await tracker.track(k(2));
      await tracker.fail(must(await tracker.claim('download', { owner: 'w', key: k(2) }), 'claim'), new Error('flaky')); // backoff 1 s
      await tracker.track(k(3));
      await tracker.release(must(await tracker.claim('download', { owner: 'w', key: k(3) }), 'claim'), { delayMs: 3_000 });
      await tracker.track(k(4));
      must(await tracker.reschedule(k(4), { delayMs: 4_000 }), 'reschedule');
      for (const n of [1, 2, 3, 4]) expect(await tracker.claim('download', { owner: 'w', key: k(n) }), `item ${n}`).toBeNull();
      await harness.elapse(store, 5_000);
      for (const n of [1, 2, 3, 4]) expect((await tracker.claim('download', { owner: 'w', key: k(n) }))?.key, `item ${n}`).toEqual(k(n));
    });

    it('a renew long after its lease ran out (no reaper came) extends from now, so the next reap leaves it', async () => {
      const { store, tracker } = await freshTracker(harness);
      await tracker.track(k(1));
      const lease = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
      await harness.elapse(store, 3 * TTL);
      await tracker.renew(lease);
      const item = must(await tracker.get(k(1)), 'get');
      expect(item.leaseExpiresAt!.getTime() - item.updatedAt.getTime()).toBe(TTL);
      expect(await tracker.reapStale()).toEqual({ retried: 0, failed: 0 });
      await tracker.complete(lease);
    });

    it('notStage: an item recorded under a listed stage does not match; one with no stage recorded does', async () => {
      const { store, tracker } = await freshTracker(harness);
      for (const n of [1, 2]) {
        await tracker.track(k(n));
        await tracker.fail(must(await tracker.claim('download', { owner: 'w', key: k(n) }), 'claim'), new Error('broken'), { retry: false });
      }
      await tracker.track(k(3));
      await tracker.complete(must(await tracker.claim('download', { owner: 'w', key: k(3) }), 'claim'));
      await tracker.fail(must(await tracker.claim('process', { owner: 'w', key: k(3) }), 'claim'), new Error('broken'), { retry: false });
      await store.insert({ key: k(4), status: 'failed', data: {} }); // no stage recorded
      const seqs = (rows: Array<{ key: Record<string, unknown> }>) => rows.map((row) => row.key.seq).sort();
      expect(seqs(await store.find({ status: ['failed'], notStage: ['download'] }, { returning: 'state' }))).toEqual([3, 4]);
      expect(seqs(await store.find({ status: ['failed'], notStage: ['download', 'process'] }, { returning: 'state' }))).toEqual([4]);
      const moved = await store.update({ status: ['failed'], notStage: ['process'] }, { status: 'pending', deadline: { ms: 0 }, finished: false }, { limit: 10, returning: 'state' });
      expect(seqs(moved)).toEqual([1, 2, 4]);
      expect(must(await tracker.get(k(3)), 'get').status).toBe('failed');
    });
  });
}
