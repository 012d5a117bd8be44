import { describe, expect, it } from 'vitest';
import { ValidationError } from '../index.js';
import { countingStore } from './counting.js';
import { freshTracker, k, makeTracker } from './definition.js';
import type { StoreHarness } from './harness.js';

/**
 * Rule 7: bad input is refused before the store is called, and an item edited by hand into an
 * invalid shape is reported (and parked where it was claimed) while the others keep flowing.
 */
export function validationContract(harness: StoreHarness): void {
  const fresh = (options?: Parameters<typeof makeTracker>[1]) => freshTracker(harness, options);

  describe('7. validation', () => {
    it('rejects operator objects and unknown fields in keys before the store is called', async () => {
      const { store: inner } = await fresh();
      const { store, calls } = countingStore(inner);
      const tracker = makeTracker(store);
      await tracker.init();
      calls.length = 0;
      const bad = [
        { logId: { $ne: null }, partnerCode: 'acme', seq: 1 },
        { logId: 'a', partnerCode: 'acme', seq: { $gt: 0 } },
        { logId: 'a', partnerCode: 'acme', seq: 1, $where: 'sleep(1000)' },
        { logId: 'a', partnerCode: ['acme'], seq: 1 },
        { logId: 'a', partnerCode: 'acme', seq: Number.NaN },
        null,
      ];
      for (const key of bad) {
        await expect(tracker.track(key as never)).rejects.toThrow(ValidationError);
        await expect(tracker.claim('download', { owner: 'w', key: key as never })).rejects.toThrow(ValidationError);
        await expect(tracker.get(key as never)).rejects.toThrow(ValidationError);
      }
      expect(calls).toEqual([]);
    });

    it('rejects data that fails its schema, naming the operation and key', async () => {
      const { tracker } = await fresh();
      const error = await tracker.track(k(1), { bytes: 'many' as never }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toMatch(/`track` of item .*log-1.*bytes/);
      expect(await tracker.get(k(1))).toBeNull();
    });

    it.skipIf(!harness.corrupt)('an item edited by hand into an invalid shape is reported and parked; others keep flowing', async () => {
      const { store, tracker } = await fresh();
      await tracker.track(k(1));
      await tracker.track(k(2));
      await harness.corrupt!(store, k(1));
      await expect(tracker.get(k(1))).rejects.toThrow(/stored data/);
      const thrown = await tracker.claim('download', { owner: 'w' }).then(() => undefined, (error: unknown) => error);
      expect(thrown).toBeInstanceOf(ValidationError);
      // the claim wrote: the error says where the item went and that it needs a retry once fixed
      expect(thrown).toMatchObject({ applied: true, stored: true, message: expect.stringMatching(/the claim parked it in `[^`]+` \(an attempt spent\)\. Fix it in the database, then `retry` it/) });
      const next = await tracker.claim('download', { owner: 'w' });
      expect(next?.key).toEqual(k(2));
      expect((await tracker.stats()).byStatus.failed).toBe(1);
    });
  });

  describe('reading an invalid item', () => {
    it.skipIf(!harness.corrupt)('find throws the ValidationError of an item edited into an invalid shape (stored: true); with onInvalid it hands it over and returns the others', async () => {
      const { store, tracker } = await fresh();
      for (let n = 0; n < 3; n++) await tracker.track(k(n));
      await harness.corrupt!(store, k(1));
      const thrown = await tracker.find({ status: 'pending' }).catch((e: unknown) => e);
      expect(thrown).toBeInstanceOf(ValidationError);
      expect((thrown as ValidationError).stored).toBe(true);
      const invalid: ValidationError[] = [];
      const where: Array<{ status: string; stage: string | null }> = [];
      const items = await tracker.find({ status: 'pending', onInvalid: (error, item) => void (invalid.push(error), where.push(item)) });
      expect(where).toEqual([{ status: 'pending', stage: null }]);
      expect(items.map((i) => i.key.seq)).toEqual([0, 2]);
      expect(invalid).toHaveLength(1);
      expect(invalid[0]!.key).toEqual(k(1));
      expect(invalid[0]!.stored).toBe(true);
      // a key the caller gives that fails its schema is no stored item
      const given = await tracker.get({ logId: 1 } as never).catch((e: unknown) => e);
      expect((given as ValidationError).stored).toBe(false);
    });
  });

  describe('operator verbs on an invalid item', () => {
    it.skipIf(!harness.corrupt)('cancel, retry and reschedule of an item edited into an invalid shape apply, and say so (applied: true)', async () => {
      const { store, tracker } = await fresh();
      await tracker.track(k(1));
      await harness.corrupt!(store, k(1));
      const applied = async (call: Promise<unknown>, status: string) => {
        const error = await call.then(() => 'no error', (e: unknown) => e);
        expect(error).toBeInstanceOf(ValidationError);
        expect((error as ValidationError).applied).toBe(true);
        expect((error as Error).message).toMatch(new RegExp(`was applied: the item is now \`${status}\``));
        const [now] = await store.find({ key: k(1) }, { limit: 1, returning: 'state' });
        expect(now!.status).toBe(status);
      };
      await applied(tracker.reschedule(k(1), { delayMs: 60_000 }), 'pending');
      await applied(tracker.cancel(k(1), { reason: 'bad data' }), 'failed');
      await applied(tracker.retry(k(1)), 'pending');
    });
  });

  describe('batch claim of an invalid item', () => {
    it.skipIf(!harness.corrupt)('claimBatch parks an item edited into an invalid shape and returns the others', async () => {
      const { store, tracker } = await fresh();
      for (let n = 0; n < 3; n++) await tracker.track(k(n));
      await harness.corrupt!(store, k(1));
      const leases = await tracker.claimBatch('download', { owner: 'w', limit: 3 });
      expect(leases.map((l) => l.key.seq).sort((a, b) => a - b)).toEqual([0, 2]);
      expect((await tracker.stats()).byStatus).toMatchObject({ failed: 1, downloading: 2 });
    });
  });
}
