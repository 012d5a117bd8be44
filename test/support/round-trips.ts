import { expect } from 'vitest';
import type { Store } from '../../src/index.js';
import { k, makeTracker, TTL } from '../../src/testing/definition.js';

/**
 * Checks that each single-item operation costs exactly one round trip, as counted by
 * `roundTrips` (statements, commands or calls seen by the driver).
 */
export async function expectOneRoundTripEach(store: Store, roundTrips: () => number): Promise<void> {
  const tracker = makeTracker(store);
  await tracker.init();
  const cost = async (fn: () => Promise<unknown>) => {
    const before = roundTrips();
    await fn();
    return roundTrips() - before;
  };
  const costs: Record<string, number> = {};
  costs.track = await cost(() => tracker.track(k(1)));
  await tracker.track(k(2));
  await tracker.track(k(3));
  let lease = null as Awaited<ReturnType<typeof tracker.claim<'download'>>>;
  costs.claim = await cost(async () => {
    lease = await tracker.claim('download', { owner: 'w' });
  });
  costs.renew = await cost(() => tracker.renew(lease!));
  costs.complete = await cost(() => tracker.complete(lease!, { data: { bytes: 1 } }));
  const second = (await tracker.claim('download', { owner: 'w' }))!;
  costs.fail = await cost(() => tracker.fail(second, new Error('x')));
  const third = (await tracker.claim('download', { owner: 'w', key: k(3) }))!;
  costs.release = await cost(() => tracker.release(third));
  expect(costs).toEqual({ track: 1, claim: 1, renew: 1, complete: 1, fail: 1, release: 1 });
}

/** Round trips of the batch paths, for any batch size. */
export interface BatchCosts {
  readonly claimBatch: number;
  readonly completeBatch: number;
  /** A failBatch with two outcomes (a retry and a park). */
  readonly failBatch: number;
  /** One reap batch of expired leases (read + guarded updates), plus the empty read of the other stage. */
  readonly reapStale: number;
}

/**
 * Checks that the batch paths cost the same number of round trips for 3 items as for 30, and
 * exactly `expected` (statements or commands as counted by `roundTrips`).
 */
export async function expectBatchRoundTrips(
  make: () => Promise<Store>,
  elapse: (store: Store, ms: number) => Promise<void>,
  roundTrips: () => number,
  expected: BatchCosts,
): Promise<void> {
  for (const size of [3, 30]) {
    const store = await make();
    const tracker = makeTracker(store, { backoff: () => 0 });
    await tracker.init();
    for (let n = 0; n < 3 * size; n++) await tracker.track(k(n));
    const cost = async (fn: () => Promise<unknown>) => {
      const before = roundTrips();
      await fn();
      return roundTrips() - before;
    };
    let leases: Awaited<ReturnType<typeof tracker.claimBatch<'download'>>> = [];
    const costs: Record<string, number> = {};
    costs.claimBatch = await cost(async () => {
      leases = await tracker.claimBatch('download', { owner: 'w', limit: size });
    });
    expect(leases).toHaveLength(size);
    costs.completeBatch = await cost(() => tracker.completeBatch(leases));
    const failing = await tracker.claimBatch('download', { owner: 'w', limit: size });
    costs.failBatch = await cost(() => tracker.failBatch(failing.map((lease, i) => ({ lease, error: 'x', retry: i % 2 === 0 }))));
    expect(await tracker.claimBatch('download', { owner: 'w', limit: size })).toHaveLength(size);
    await elapse(store, TTL + 1);
    costs.reapStale = await cost(async () => expect((await tracker.reapStale({ batchSize: 1_000 })).retried).toBeGreaterThanOrEqual(size));
    expect(costs, `batch of ${size}`).toEqual({ ...expected });
  }
}
