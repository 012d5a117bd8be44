/**
 * Bulk commands in bounded batches. Internal.
 * @module
 */

/** Items changed per call of a bulk command (retry --all, purge), so that progress can be shown between calls. */
const BATCH = 500;

/**
 * Runs `call(limit)` (a `retryAll` or a `purge`) in batches of at most {@link BATCH} until
 * `expected` items are done or a batch comes back short; reports the running total after each
 * batch. At most `expected`, the count the operator confirmed: workers that park items again at
 * once (a handler that fails them for good), or that finish items into the status being purged,
 * would otherwise keep it going for ever. Returns the total.
 */
export async function inBatches(expected: number, call: (limit: number) => Promise<number>, progress: (total: number) => void): Promise<number> {
  let total = 0;
  while (total < expected) {
    const batch = Math.min(BATCH, expected - total);
    const n = await call(batch);
    total += n;
    progress(total);
    if (n < batch) break;
  }
  return total;
}
