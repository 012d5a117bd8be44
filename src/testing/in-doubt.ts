import { describe, expect, it } from 'vitest';
import { LeaseLostError, StoreError, type Store } from '../index.js';
import { k, makeTracker, must } from './definition.js';
import type { StoreHarness } from './harness.js';

/**
 * Wraps a store so that a test can lose the answer of its next write: the write is applied,
 * then the call fails as a dropped connection would (`ECONNRESET`, a transient fault), or the
 * call fails before it reaches the store.
 */
function flakyStore(inner: Store) {
  let next: 'applied' | 'refused' | undefined;
  const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  const store = new Proxy(inner, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function' || prop === 'constructor') return value;
      if (prop !== 'update' && prop !== 'updateEach') return value.bind(target);
      return async (...args: unknown[]) => {
        const mode = next;
        next = undefined;
        if (mode === 'refused') throw reset();
        const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        if (mode === 'applied') throw reset();
        return result;
      };
    },
  });
  return { store, loseNextAnswer: () => void (next = 'applied'), refuseNext: () => void (next = 'refused') };
}

/** A settle whose answer was lost (it may have applied) can be sent again safely. */
export function inDoubtContract(harness: StoreHarness): void {
  const fresh = async () => {
    const inner = await harness.create();
    const flaky = flakyStore(inner);
    const tracker = makeTracker(flaky.store);
    await tracker.init();
    const events: string[] = [];
    for (const name of ['completed', 'failed', 'released', 'leaseLost'] as const) tracker.on(name, () => void events.push(name));
    return { ...flaky, inner, tracker, events };
  };

  /** An item claimed, and its complete applied with the answer lost. */
  const completeInDoubt = async () => {
    const { tracker, events, loseNextAnswer } = await fresh();
    await tracker.track(k(1));
    const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
    loseNextAnswer();
    await expect(tracker.complete(lease)).rejects.toThrow(StoreError);
    return { tracker, events, lease };
  };

  /**
   * An item claimed by `old`, whose settle (`send`) was refused before it reached the store; the
   * lease then reaped, and the item claimed by another worker (`other`).
   */
  type PartnerLogs = ReturnType<typeof makeTracker>;
  type Held = NonNullable<Awaited<ReturnType<PartnerLogs['claim']>>>;
  const refusedThenTakenOver = async (send: (tracker: PartnerLogs, lease: Held) => Promise<unknown>) => {
    const { inner, tracker, events, refuseNext } = await fresh();
    await tracker.track(k(1));
    const lease = must(await tracker.claim('download', { owner: 'old' }), 'claim');
    refuseNext();
    await expect(send(tracker, lease)).rejects.toThrow(StoreError);
    await harness.elapse(inner, 60_000);
    await tracker.reapStale();
    await harness.elapse(inner, 60_000);
    const other = must(await tracker.claim('download', { owner: 'new' }), 'claim');
    return { tracker, events, lease, other };
  };

  describe('a settle whose answer was lost', () => {
    it('complete, fail and release sent again after a lost answer that applied return the item, reported once, not as a lost lease', async () => {
      const { tracker, events, loseNextAnswer } = await fresh();
      for (let n = 0; n < 3; n++) await tracker.track(k(n));
      const claimed = async (n: number) => must(await tracker.claim('download', { owner: 'w', key: k(n) }), 'claim');
      const sends = [
        (l: Awaited<ReturnType<typeof claimed>>) => tracker.complete(l, { data: { path: '/p' } }),
        (l: Awaited<ReturnType<typeof claimed>>) => tracker.fail(l, new Error('again')),
        (l: Awaited<ReturnType<typeof claimed>>) => tracker.release(l),
      ];
      for (const [n, send] of sends.entries()) {
        const lease = await claimed(n);
        loseNextAnswer();
        const error = await send(lease).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(StoreError);
        expect((error as StoreError).transient).toBe(true);
        expect(lease.settled).toBe(false);
        const again = await send(lease);
        expect(again).toEqual(await tracker.get(k(n)));
        expect(lease.settled).toBe(true);
      }
      expect(must(await tracker.get(k(0)), 'get')).toMatchObject({ status: 'downloaded', data: { path: '/p' } });
      expect(must(await tracker.get(k(1)), 'get')).toMatchObject({ status: 'pending', lastError: 'Error: again', attempts: 1 });
      expect(must(await tracker.get(k(2)), 'get')).toMatchObject({ status: 'pending', attempts: 0 });
      expect(events).toEqual(['completed', 'failed', 'released']);
    });

    it('a resend with another data patch returns the item as the first attempt wrote it', async () => {
      const { tracker, loseNextAnswer } = await fresh();
      await tracker.track(k(1));
      const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
      loseNextAnswer();
      await expect(tracker.complete(lease, { data: { path: '/first' } })).rejects.toThrow(StoreError);
      const again = await tracker.complete(lease, { data: { path: '/second' } });
      expect(again.data).toEqual({ path: '/first' });
      expect(again).toEqual(await tracker.get(k(1)));
    });

    it('a settle sent again after a call that did not reach the store applies then', async () => {
      const { tracker, events, refuseNext } = await fresh();
      await tracker.track(k(1));
      const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
      refuseNext();
      await expect(tracker.complete(lease)).rejects.toThrow(StoreError);
      expect(must(await tracker.get(k(1)), 'get').status).toBe('downloading');
      expect(await tracker.complete(lease)).toMatchObject({ status: 'downloaded' });
      expect(events).toEqual(['completed']);
    });

    it('a renew that finds the lost complete applied reports it as completed; the complete sent again returns the item', async () => {
      const { tracker, events, lease } = await completeInDoubt();
      const renewed = await tracker.renew(lease).catch((e: unknown) => e);
      expect(renewed).toBeInstanceOf(LeaseLostError);
      expect((renewed as LeaseLostError).reason).toBe('settled');
      expect(events).toEqual(['completed']);
      expect(lease.signal.aborted).toBe(true);
      expect(await tracker.complete(lease)).toMatchObject({ status: 'downloaded' });
      expect(events).toEqual(['completed']);
    });

    it('another settle after a lost answer that applied is refused as already settled by it, and nothing is reported lost', async () => {
      const { tracker, events, lease } = await completeInDoubt();
      const error = await tracker.release(lease).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseLostError);
      expect(String(error)).toMatch(/already completed by this process/);
      expect(must(await tracker.get(k(1)), 'get').status).toBe('downloaded');
      expect(events).toEqual(['completed']);
    });

    it('an item that only looks settled is not taken for it: with the fence advanced by a reap and a claim, the resend is a lost lease', async () => {
      const { tracker, events, lease, other } = await refusedThenTakenOver((t, l) => t.fail(l, new Error('x')));
      // another worker fails it the same way: status and last error are what the fail would have written
      await tracker.fail(other, new Error('x'));
      expect(must(await tracker.get(k(1)), 'get')).toMatchObject({ status: 'pending', lastError: 'Error: x' });
      const error = await tracker.fail(lease, new Error('x')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseLostError);
      expect((error as LeaseLostError).reason).toBe('lost');
      expect(events).toEqual(['failed', 'leaseLost']);
    });

    it('a complete that never reached the store is not taken for another worker\'s complete into the same status: the resend is a lost lease', async () => {
      const { tracker, events, lease, other } = await refusedThenTakenOver((t, l) => t.complete(l));
      // another worker completes it: status and attempts are what the first complete would have written
      await tracker.complete(other);
      expect(await tracker.get(k(1))).toMatchObject({ status: 'downloaded', attempts: 0 });
      const error = await tracker.complete(lease).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseLostError);
      expect((error as LeaseLostError).reason).toBe('lost');
      expect(events).toEqual(['completed', 'leaseLost']);
    });

    it('a key purged and tracked again is another item: a resend that finds it at the same fence is a lost lease', async () => {
      const { tracker, events, refuseNext } = await fresh();
      await tracker.track(k(1));
      const old = must(await tracker.claim('download', { owner: 'old' }), 'claim');
      refuseNext();
      await expect(tracker.complete(old, { data: { path: '/old' } })).rejects.toThrow(StoreError);
      await tracker.cancel(k(1), { reason: 'withdrawn' });
      await tracker.purge({ status: 'failed', finishedBefore: new Date(Date.now() + 60_000) });
      await tracker.track(k(1));
      const current = must(await tracker.claim('download', { owner: 'new' }), 'claim');
      expect(current.fence).toBe(old.fence);
      await tracker.complete(current, { data: { path: '/new' } });
      const error = await tracker.complete(old, { data: { path: '/old' } }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseLostError);
      expect(must(await tracker.get(k(1)), 'get').data).toEqual({ path: '/new' });
      expect(events).toEqual(['completed', 'leaseLost']);
    });

    it('a fail that applied is not taken for a release sent after it: the release is refused as already failed', async () => {
      const { tracker, events, loseNextAnswer, refuseNext } = await fresh();
      await tracker.track(k(1));
      const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
      loseNextAnswer();
      await expect(tracker.fail(lease, new Error('boom'))).rejects.toThrow(StoreError);
      refuseNext();
      await expect(tracker.release(lease)).rejects.toThrow(StoreError);
      // both would leave the item in `pending` at this fence; the fail counted the attempt
      const error = await tracker.release(lease).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LeaseLostError);
      expect(String(error)).toMatch(/already failed by this process/);
      expect(await tracker.fail(lease, new Error('boom'))).toMatchObject({ status: 'pending', attempts: 1, lastError: 'Error: boom' });
      expect(events).toEqual(['failed']);
    });

    it('attempts tell a release that applied from a fail in doubt with the same last error as before', async () => {
      const { inner, tracker, events, loseNextAnswer, refuseNext } = await fresh();
      await tracker.track(k(1));
      await tracker.fail(must(await tracker.claim('download', { owner: 'w' }), 'claim'), new Error('boom'));
      await harness.elapse(inner, 60_000);
      const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
      expect(lease.attempt).toBe(2);
      refuseNext();
      await expect(tracker.fail(lease, new Error('boom'))).rejects.toThrow(StoreError);
      loseNextAnswer();
      await expect(tracker.release(lease)).rejects.toThrow(StoreError);
      // the release kept the last error `boom`: only the attempts (1, not 2) say it was the release
      expect(await tracker.release(lease)).toMatchObject({ status: 'pending', attempts: 1, lastError: 'Error: boom' });
      expect(events).toEqual(['failed', 'released']);
    });

    it('completeBatch sent again after a lost answer returns ok for each lease it had settled', async () => {
      const { tracker, events, loseNextAnswer } = await fresh();
      for (let n = 0; n < 3; n++) await tracker.track(k(n));
      const leases = await tracker.claimBatch('download', { owner: 'w', limit: 3 });
      loseNextAnswer();
      await expect(tracker.completeBatch(leases)).rejects.toThrow(StoreError);
      const results = await tracker.completeBatch(leases);
      expect(results.map((r) => r.ok && r.status)).toEqual(['downloaded', 'downloaded', 'downloaded']);
      expect(events).toEqual(['completed', 'completed', 'completed']);
    });
  });
}
