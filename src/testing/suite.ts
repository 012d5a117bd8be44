import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, LeaseLostError, NonRetryableError, type Store } from '../index.js';
import { bystanderContract } from './bystanders.js';
import { countingStore } from './counting.js';
import { freshTracker, k, makeTracker, must, TTL } from './definition.js';
import { edgeContract } from './edges.js';
import { recording, type StoreHarness } from './harness.js';
import { inDoubtContract } from './in-doubt.js';
import { operateContract } from './operate.js';
import { settleContract } from './settle.js';
import { validationContract } from './validation.js';

/** The leasehold store contract (docs/writing-a-store.md, "The contract"), once for every store. */
export function storeContract(given: StoreHarness): void {
  const made: Store[] = [];
  const harness = recording(given, made);
  const fresh = (options?: Parameters<typeof makeTracker>[1]) => freshTracker(harness, options);
  const repeats = harness.raceRepeats ?? 100;

  describe(`store contract: ${harness.name}`, () => {
    if (!harness.peer) {
      // said, not hidden: the races then check one client's ordering, not a database's
      console.warn(`[leasehold/testing] ${harness.name}: the harness has no \`peer\`, so the races run through one client; give \`peer\` (a second client over its own connection) to race connections.`);
    }
    afterAll(async () => {
      const stores = made.splice(0);
      if (given.dispose) for (const store of stores) await given.dispose(store);
    });

    describe('1. track', () => {
      it('creates the item in the initial status once and never changes an existing item', async () => {
        const { tracker } = await fresh();
        const first = await tracker.track(k(1), { bytes: 1 });
        expect(first.created).toBe(true);
        expect(first.item).toMatchObject({ key: k(1), status: 'pending', data: { bytes: 1 }, attempts: 0, fence: 0, owner: null });
        const lease = await tracker.claim('download', { owner: 'w1', key: k(1) });
        expect(lease).not.toBeNull();
        const again = await tracker.track(k(1), { bytes: 999 });
        expect(again.created).toBe(false);
        expect(again.item).toMatchObject({ status: 'downloading', data: { bytes: 1 } });
      });

      it('concurrent tracks of one key create exactly one item', async () => {
        const { store, tracker } = await fresh();
        const others = harness.peer ? await Promise.all([1, 2, 3].map(() => harness.peer!(store))) : [];
        const trackers = [tracker, ...others.map((s) => makeTracker(s))];
        const results = await Promise.all(Array.from({ length: 16 }, (_, i) => trackers[i % trackers.length]!.track(k(7), { note: `t${i}` })));
        expect(results.filter((r) => r.created)).toHaveLength(1);
        expect((await tracker.stats()).total).toBe(1);
        const created = results.find((r) => r.created)!;
        expect(new Set(results.map((r) => r.item.data.note))).toEqual(new Set([created.item.data.note]));
      });
    });

    describe('2. claim', () => {
      it('takes the oldest eligible item first and returns null when none is eligible', async () => {
        const { tracker } = await fresh();
        for (const n of [3, 1, 2]) await tracker.track(k(n));
        const order: number[] = [];
        for (let i = 0; i < 3; i++) order.push(must(await tracker.claim('download', { owner: 'w' }), 'claim').key.seq);
        expect(order).toEqual([3, 1, 2]);
        expect(await tracker.claim('download', { owner: 'w' })).toBeNull();
      });

      it('the claimed event says how long each item had been claimable (waitedMs), for one claim and a batch', async () => {
        const { store, tracker } = await fresh();
        const since = (await tracker.track(k(0))).item.createdAt.getTime();
        // due one and two minutes before the store's now: claimable that long already
        const due = new Map([[0, since], [1, since - 60_000], [2, since - 120_000]]);
        for (const n of [1, 2]) await tracker.track(k(n), {}, { notBefore: new Date(due.get(n)!) });
        const waited = new Map<number, number>();
        tracker.on('claimed', (e) => waited.set(e.key.seq, e.waitedMs));
        // a store without `capabilities.priorDeadline` cannot tell: it reports 0
        const expected = (seq: number, claimedAt: Date) => (store.capabilities.priorDeadline ? claimedAt.getTime() - due.get(seq)! : 0);
        const one = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
        expect(waited.get(1)).toBe(expected(1, one.item.claimedAt!));
        if (!store.capabilities.priorDeadline) return;
        expect(waited.get(1)).toBeGreaterThanOrEqual(60_000);
        const batch = await tracker.claimBatch('download', { owner: 'w', limit: 5 });
        expect(batch.map((l) => l.key.seq).sort()).toEqual([0, 2]);
        for (const lease of batch) expect(waited.get(lease.key.seq)).toBe(expected(lease.key.seq, lease.item.claimedAt!));
        expect(waited.get(2)).toBeGreaterThanOrEqual(120_000);
      });

      it('sets the active status, owner, fence + 1, attempts + 1 and a lease from the store clock', async () => {
        const { tracker } = await fresh();
        await tracker.track(k(1));
        const lease = must(await tracker.claim('download', { owner: 'w1', key: k(1) }), 'claim');
        expect(lease).toMatchObject({ stage: 'download', owner: 'w1', fence: 1, attempt: 1, key: k(1) });
        const item = must(await tracker.get(k(1)), 'get');
        expect(item).toMatchObject({ status: 'downloading', owner: 'w1', fence: 1, attempts: 1 });
        expect(item.leaseExpiresAt!.getTime() - item.claimedAt!.getTime()).toBe(TTL);
        expect(lease.expiresAt.getTime()).toBe(item.leaseExpiresAt!.getTime());
      });

      it('claims a given key only, and only from the stage\'s from status', async () => {
        const { tracker } = await fresh();
        await tracker.track(k(1));
        await tracker.track(k(2));
        expect(await tracker.claim('process', { owner: 'w', key: k(1) })).toBeNull();
        const lease = await tracker.claim('download', { owner: 'w', key: k(2) });
        expect(lease?.key).toEqual(k(2));
        expect(await tracker.claim('download', { owner: 'w', key: k(2) })).toBeNull();
        expect(await tracker.claim('download', { owner: 'w', key: k(99) })).toBeNull();
      });

      for (const n of [3, 16, 64]) {
        it(`of ${n} concurrent claims of one item exactly one wins (x${repeats})`, async () => {
          const { store, tracker } = await fresh();
          const others = harness.peer ? await Promise.all([1, 2, 3].map(() => harness.peer!(store))) : [];
          const trackers = [tracker, ...others.map((s) => makeTracker(s))];
          for (let round = 0; round < repeats; round++) {
            await tracker.track(k(round));
            const leases = await Promise.all(
              Array.from({ length: n }, (_, i) => trackers[i % trackers.length]!.claim('download', { owner: `w${i}`, key: k(round) })),
            );
            const winners = leases.filter((l) => l !== null);
            expect(winners).toHaveLength(1);
            expect(winners[0]!.fence).toBe(1);
          }
        });
      }

      // two rounds at least: the claimers take turns in starting first, so that a listening one can win
      const listenedRounds = Math.max(2, Math.ceil(repeats / 4));
      it(`of 16 concurrent claims of one item exactly one wins, when half the claimers listen to claimed (x${listenedRounds})`, async () => {
        // a listened-to claim also reads the deadline before it (`priorDeadline`), on some stores
        // by another statement: the two kinds race each other here
        const { store, tracker } = await fresh();
        const others = harness.peer ? await Promise.all([1, 2, 3].map(() => harness.peer!(store))) : [];
        const trackers = [tracker, makeTracker(store), ...others.map((s) => makeTracker(s))];
        const waited: number[] = [];
        trackers.forEach((t, i) => i % 2 === 1 && t.on('claimed', (e) => waited.push(e.waitedMs)));
        let listenedWins = 0;
        for (let round = 0; round < listenedRounds; round++) {
          await tracker.track(k(round));
          const leases = await Promise.all(Array.from({ length: 16 }, (_, i) => trackers[(i + round) % trackers.length]!.claim('download', { owner: `w${i}`, key: k(round) })));
          expect(leases.filter((l) => l !== null)).toHaveLength(1);
          if (((leases.findIndex((l) => l !== null) + round) % trackers.length) % 2 === 1) listenedWins++;
        }
        // each claim a listening tracker won said so once, with its wait
        expect(waited).toHaveLength(listenedWins);
      });

      it('claimBatch claims distinct items, each with its own lease, oldest first', async () => {
        const { tracker } = await fresh();
        for (let n = 0; n < 7; n++) await tracker.track(k(n));
        const first = await tracker.claimBatch('download', { owner: 'w', limit: 5 });
        expect(first.map((l) => l.key.seq).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4]);
        expect(first.every((l) => l.fence === 1 && l.attempt === 1)).toBe(true);
        const rest = await tracker.claimBatch('download', { owner: 'w', limit: 5 });
        expect(rest.map((l) => l.key.seq).sort((a, b) => a - b)).toEqual([5, 6]);
      });
    });

    describe('3. complete / fail / renew / release are fenced', () => {
      it('complete moves to a done status and merges a data patch', async () => {
        const { tracker } = await fresh();
        await tracker.track(k(1), { note: 'kept' });
        const lease = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
        const item = await tracker.complete(lease, { data: { path: '/tmp/x', bytes: 10 } });
        expect(item).toMatchObject({ status: 'downloaded', data: { note: 'kept', path: '/tmp/x', bytes: 10 } });
        expect(item.finishedAt).toBeInstanceOf(Date);
        const next = must(await tracker.claim('process', { owner: 'w', key: k(1) }), 'claim');
        expect(next.fence).toBe(2);
        expect((await tracker.complete(next, { to: 'skipped' })).status).toBe('skipped');
      });

      it('complete to a status that is not a done status of the stage writes nothing', async () => {
        const { tracker } = await fresh();
        await tracker.track(k(1));
        const lease = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
        // @ts-expect-error -- `processed` is not a done status of `download`
        await expect(tracker.complete(lease, { to: 'processed' })).rejects.toThrow(ConfigError);
        expect(must(await tracker.get(k(1)), 'get').status).toBe('downloading');
      });

      it('a settled lease cannot settle again', async () => {
        const { tracker } = await fresh();
        await tracker.track(k(1));
        const lease = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
        await tracker.complete(lease);
        await expect(tracker.complete(lease)).rejects.toThrow(LeaseLostError);
        await expect(tracker.renew(lease)).rejects.toThrow(LeaseLostError);
        expect(must(await tracker.get(k(1)), 'get').status).toBe('downloaded');
      });

      it('after a reap, the stale holder\'s complete/fail/renew/release throw LeaseLostError and change nothing', async () => {
        const { store, tracker } = await fresh();
        await tracker.track(k(1));
        const stale = must(await tracker.claim('download', { owner: 'stale', key: k(1) }), 'claim');
        await harness.elapse(store, TTL + 1);
        expect(await tracker.reapStale()).toEqual({ retried: 1, failed: 0 });
        await harness.elapse(store, 60_000);
        const fresh2 = must(await tracker.claim('download', { owner: 'new', key: k(1) }), 'claim');
        expect(fresh2.fence).toBeGreaterThan(stale.fence);
        const before = await tracker.get(k(1));
        for (const attempt of [
          () => tracker.complete(stale, { data: { path: 'stale' } }),
          () => tracker.fail(stale, new Error('stale')),
          () => tracker.renew(stale),
          () => tracker.release(stale),
        ]) {
          const error = await attempt().catch((e: unknown) => e);
          expect(error).toBeInstanceOf(LeaseLostError);
          expect(error).toMatchObject({ expectedFence: stale.fence, actualFence: fresh2.fence, status: 'downloading', stage: 'download' });
        }
        expect(await tracker.get(k(1))).toEqual(before);
        await tracker.complete(fresh2);
      });

      it('renew keeps a long job alive past its ttl', async () => {
        const { store, tracker } = await fresh();
        await tracker.track(k(1));
        const lease = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
        for (let i = 0; i < 4; i++) {
          await harness.elapse(store, TTL * 0.6);
          await tracker.renew(lease);
        }
        expect(await tracker.reapStale()).toEqual({ retried: 0, failed: 0 });
        expect((await tracker.complete(lease)).status).toBe('downloaded');
      });
    });

    describe('4. fail, backoff and attempts', () => {
      it('fail with attempts left goes back to from after backoff, with lastError', async () => {
        const { store, tracker } = await fresh();
        await tracker.track(k(1));
        const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
        const item = await tracker.fail(lease, new Error('partner 503'));
        expect(item).toMatchObject({ status: 'pending', attempts: 1, lastError: 'Error: partner 503' });
        expect(item.notBefore!.getTime() - item.updatedAt.getTime()).toBe(1_000);
        expect(await tracker.claim('download', { owner: 'w' })).toBeNull();
        // halfway: well before the backoff ends, also when real time passes between the calls
        // (a store a few round trips of 50 ms away)
        await harness.elapse(store, 500);
        expect(await tracker.claim('download', { owner: 'w' })).toBeNull();
        await harness.elapse(store, 600);
        const second = must(await tracker.claim('download', { owner: 'w' }), 'claim');
        expect(second.attempt).toBe(2);
        const again = await tracker.fail(second, new Error('partner 503'));
        expect(again.notBefore!.getTime() - again.updatedAt.getTime()).toBe(2_000);
      });

      it('attempts run out into the failed status, and a failed item is never claimed again', async () => {
        const { store, tracker } = await fresh();
        await tracker.track(k(1));
        for (let i = 1; i <= 3; i++) {
          const lease = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
          expect(lease.attempt).toBe(i);
          await tracker.fail(lease, 'boom');
          await harness.elapse(store, 60_000);
        }
        const item = must(await tracker.get(k(1)), 'get');
        expect(item).toMatchObject({ status: 'failed', attempts: 3, lastError: 'boom' });
        expect(item.finishedAt).toBeInstanceOf(Date);
        expect(await tracker.claim('download', { owner: 'w' })).toBeNull();
      });

      it('a non-retryable error parks the item at once', async () => {
        const { tracker } = await fresh();
        await tracker.track(k(1));
        const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
        expect((await tracker.fail(lease, new NonRetryableError('bad file'))).status).toBe('failed');
        await tracker.track(k(2));
        const other = must(await tracker.claim('download', { owner: 'w' }), 'claim');
        expect((await tracker.fail(other, new Error('x'), { retry: false })).status).toBe('failed');
      });

      it('release gives the item back at once without counting an attempt', async () => {
        const { tracker } = await fresh();
        await tracker.track(k(1));
        const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
        const item = await tracker.release(lease);
        expect(item).toMatchObject({ status: 'pending', attempts: 0 });
        const again = must(await tracker.claim('download', { owner: 'w' }), 'claim');
        expect(again).toMatchObject({ attempt: 1, fence: 2 });
      });

      it('completing a stage resets attempts for the next stage', async () => {
        const { tracker } = await fresh();
        await tracker.track(k(1));
        const lease = must(await tracker.claim('download', { owner: 'w' }), 'claim');
        await tracker.complete(lease);
        expect(must(await tracker.claim('process', { owner: 'w' }), 'claim').attempt).toBe(1);
      });
    });

    describe('5. reapStale', () => {
      it('treats expired leases as failed attempts and parks those out of attempts', async () => {
        const { store, tracker } = await fresh({ maxAttempts: 2 });
        await tracker.track(k(1));
        await tracker.track(k(2));
        const a = must(await tracker.claim('download', { owner: 'w', key: k(1) }), 'claim');
        await tracker.fail(a, 'first');
        await harness.elapse(store, 5_000);
        await tracker.claim('download', { owner: 'w', key: k(1) });
        await tracker.claim('download', { owner: 'w', key: k(2) });
        expect(await tracker.reapStale()).toEqual({ retried: 0, failed: 0 });
        await harness.elapse(store, TTL + 1);
        expect(await tracker.reapStale()).toEqual({ retried: 1, failed: 1 });
        expect(await tracker.get(k(1))).toMatchObject({ status: 'failed', lastError: 'lease expired', fence: 3 });
        const back = must(await tracker.get(k(2)), 'get');
        expect(back).toMatchObject({ status: 'pending', lastError: 'lease expired', fence: 2, attempts: 1 });
        expect(back.notBefore!.getTime() - back.updatedAt.getTime()).toBe(1_000);
      });

      it('reaps in batches: as many store calls for 3 items as for 40 (one batch each) where the store settles batches', async () => {
        const counts: number[] = [];
        // a store without `batchSettle` settles each reaped lease on its own: one call per item more
        let perItem = 0;
        for (const items of [3, 40]) {
          const inner = await harness.create();
          perItem = inner.capabilities.batchSettle ? 0 : 1;
          const { store, calls } = countingStore(inner);
          const tracker = makeTracker(store);
          for (let n = 0; n < items; n++) await tracker.track(k(n));
          expect(await tracker.claimBatch('download', { owner: 'w', limit: items })).toHaveLength(items);
          await harness.elapse(inner, TTL + 1);
          calls.length = 0;
          expect((await tracker.reapStale()).retried).toBe(items);
          counts.push(calls.length);
        }
        expect(counts[1]! - counts[0]!).toBe(perItem * (40 - 3));
        // per stage: one read of expired states, and (when any) one batch of guarded updates
        expect(counts[0]! - perItem * 3).toBeLessThanOrEqual(3);
      });
    });

    validationContract(harness);
    settleContract(harness);
    inDoubtContract(harness);
    edgeContract(harness);
    operateContract(harness);
    bystanderContract(harness);
  });
}
