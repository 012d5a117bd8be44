import { expect } from 'vitest';
import type { Store } from '../../src/index.js';
import { makeTracker } from '../../src/testing/definition.js';

/**
 * Runs a claim-next and a reap on `store`, recording the statements it sends through
 * `captured`: the claim's UPDATE, the reap's SELECT of expired leases, and the reap's UPDATE
 * of what it found (by primary key).
 */
export async function captureClaimAndReap(store: Store, captured: Array<{ text: string; values: unknown[] }>) {
  const tracker = makeTracker(store);
  await tracker.init();
  captured.length = 0;
  await tracker.claim('download', { owner: 'explain' });
  const claim = captured.find((s) => s.text.startsWith('UPDATE'));
  captured.length = 0;
  await tracker.reapStale();
  const reap = captured.find((s) => s.text.startsWith('SELECT'));
  // a reap that puts items back for a retry also notifies (PostgreSQL wraps it: `WITH changed AS (UPDATE …)`)
  const reapUpdate = captured.find((s) => /^(WITH changed AS \()?UPDATE/.test(s.text));
  expect(claim, 'claim-next statement').toBeDefined();
  expect(reap, 'reap statement').toBeDefined();
  expect(reapUpdate, 'reap update statement').toBeDefined();
  return { claim: claim!, reap: reap!, reapUpdate: reapUpdate! };
}
