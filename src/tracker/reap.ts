/**
 * The reap family (rule 5): expired leases become failed attempts, in bounded batches. Each
 * batch is one read of slim item states (no data) and one batch of guarded updates, whatever
 * the number of items; every item draws its own backoff, so that items reaped together after
 * a mass crash do not all come back at the same instant.
 * @module
 */
import type { ReapResult } from '../results.js';
import type { ItemState } from '../store.js';
import { failureChange, LEASE_EXPIRED, willRetry } from '../transitions.js';
import type { Core } from './core.js';

/** Items reaped per batch when no `batchSize` is given. */
export const REAP_BATCH = 500;

/** Reaps every expired lease of every stage, `batchSize` items per batch until a batch is short. */
export async function reapStale(core: Core, batchSize = REAP_BATCH): Promise<ReapResult> {
  await core.init();
  const started = performance.now();
  let retried = 0;
  let failed = 0;
  let batches = 0;
  for (const stage of core.def.stages.values()) {
    for (;;) {
      const expired: ItemState[] = await core.call('reapStale', undefined, () =>
        core.store.find({ status: [stage.active], deadline: 'passed' }, { limit: batchSize, returning: 'state' }),
      );
      if (expired.length === 0) break;
      batches++;
      const updates = expired.map((item) => {
        const retry = willRetry(core.def, item.attempts, undefined, undefined);
        return {
          guard: { ref: item.ref, key: item.key, status: stage.active, fence: item.fence, expired: true },
          change: failureChange(core.def, stage, item.attempts, LEASE_EXPIRED, retry, true).change,
        };
      });
      const rows = await core.updateEach('reapStale', updates);
      rows.forEach((row, i) => {
        // a renew or settle won the race since the read: that lease was not expired after all
        if (!row) return;
        const retry = row.status !== stage.failed;
        if (retry) retried++;
        else failed++;
        if (core.events.has('reaped')) {
          core.events.emit('reaped', {
            stage: stage.name,
            key: row.key,
            owner: expired[i]!.owner ?? '',
            fence: row.fence,
            attempt: row.attempts,
            willRetry: retry,
            nextAttemptAt: retry ? row.deadline : null,
            status: row.status,
          });
        }
      });
      // a full batch of which nothing applied reads the same items again: the next pass takes
      // them (an item whose guard can never match would otherwise loop here for ever)
      if (expired.length < batchSize || rows.every((row) => row === null)) break;
    }
  }
  if (retried + failed > 0) {
    core.wake();
    core.logger?.warn?.(
      { retried, failed, batches, ms: Math.round(performance.now() - started) },
      `[leasehold] reaped ${retried + failed} expired lease(s): ${retried} back for another attempt, ${failed} parked`,
    );
  }
  return { retried, failed };
}
