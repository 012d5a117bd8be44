// leasehold's drain: claim + complete per item, or claimBatch + completeBatch.
import { Tracker } from '../dist/index.js';
import { jobDefinition } from '../test/support/job-definition.mjs';
import { concurrently } from './lib.mjs';

export function benchTracker(store) {
  return new Tracker(jobDefinition(store));
}

/** Seeds a PostgreSQL table in one statement (the bench measures draining, not tracking). */
export async function seedLeaseholdPg(admin, tracker, table, items) {
  // init() runs once per tracker; later runs empty the table and its key table instead of dropping them
  await tracker.init();
  await admin.query(`TRUNCATE "${table}", "${table}_keys" RESTART IDENTITY`);
  await admin.query(
    `INSERT INTO "${table}" (key_n, status, data, deadline, created_at, updated_at)
     SELECT i, 'queued', '{}'::jsonb, now(), now(), now() FROM generate_series(1, $1::int) AS i`,
    [items],
  );
  // as a bulk load must: each item's key into the key table (see docs/stores/postgres.md)
  await admin.query(`INSERT INTO "${table}_keys" (key_n, id) SELECT key_n, id FROM "${table}"`);
  await admin.query(`ANALYZE "${table}"; ANALYZE "${table}_keys"`);
}

export async function drainLeasehold(tracker, { workers, batch = 1, deadline, latencies }) {
  let done = 0;
  await concurrently(workers, deadline, async (w) => {
    const owner = `w${w}`;
    const started = performance.now();
    if (batch === 1) {
      const lease = await tracker.claim('run', { owner });
      latencies?.push(performance.now() - started);
      if (!lease) return false;
      await tracker.complete(lease);
      done++;
      return true;
    }
    const leases = await tracker.claimBatch('run', { owner, limit: batch });
    latencies?.push(performance.now() - started);
    if (leases.length === 0) return false;
    const results = await tracker.completeBatch(leases);
    done += results.filter((r) => r.ok).length;
    return true;
  });
  return done;
}
