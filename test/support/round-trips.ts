import { expect } from 'vitest';
import type { Store } from '../../src/index.js';
import { k, makeTracker } from '../conformance/definition.js';

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
