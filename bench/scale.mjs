// Scale and contention: claim-next and reap latency as the table grows, and what losing a race costs.
import { PostgresStore } from '../dist/stores/postgres.js';
import { benchTracker } from './leasehold.mjs';
import { median, sleep } from './lib.mjs';

/**
 * Median claim-next and reapStale latency (ms) on a table of `rows` rows, most of them finished;
 * `also(tracker)` measures more on the same table and adds its fields to the result.
 */
export async function scaleLatency(admin, pool, rows, { also } = {}) {
  const table = 'bench_scale';
  const tracker = benchTracker(new PostgresStore({ pool, table }));
  await admin.query(`DROP TABLE IF EXISTS "${table}_keys", "${table}"`);
  await tracker.init();
  // 1% waiting, 1% held (live leases), the rest done: the shape of a long-lived table
  await admin.query(
    `INSERT INTO "${table}" (key_n, status, data, deadline, created_at, updated_at)
     SELECT i, CASE WHEN i % 100 = 0 THEN 'queued' WHEN i % 100 = 1 THEN 'running' ELSE 'done' END, '{}'::jsonb,
            CASE WHEN i % 100 = 1 THEN now() + interval '1 hour' ELSE now() - interval '1 hour' + i * interval '1 ms' END,
            now(), now() FROM generate_series(1, $1::int) AS i`,
    [rows],
  );
  await admin.query(`VACUUM ANALYZE "${table}"`);
  const claims = [];
  for (let i = 0; i < 200; i++) {
    const started = performance.now();
    const lease = await tracker.claim('run', { owner: 'scale' });
    claims.push(performance.now() - started);
    if (lease) await tracker.release(lease);
  }
  const reaps = [];
  for (let i = 0; i < 10; i++) {
    // expire 20 leases so that every sweep has the same small amount of work
    await admin.query(`UPDATE "${table}" SET deadline = now() - interval '1 minute' WHERE key_n IN (SELECT key_n FROM "${table}" WHERE status = 'running' AND deadline > now() LIMIT 20)`);
    const started = performance.now();
    await tracker.reapStale();
    reaps.push(performance.now() - started);
  }
  const extra = also ? await also(tracker) : {};
  await admin.query(`DROP TABLE IF EXISTS "${table}_keys", "${table}"`);
  return { rows, claimMs: median(claims), reapMs: median(reaps), ...extra };
}

/** 64 workers claiming the same 10 items by key for `ms`: wasted round trips per successful claim. */
export async function contention(pool, admin, ms) {
  const table = 'bench_contention';
  const tracker = benchTracker(new PostgresStore({ pool, table }));
  await admin.query(`DROP TABLE IF EXISTS "${table}_keys", "${table}"`);
  await tracker.init();
  for (let n = 0; n < 10; n++) await tracker.track({ n });
  let attempts = 0;
  let wins = 0;
  const deadline = Date.now() + ms;
  await Promise.all(
    Array.from({ length: 64 }, async (_, w) => {
      while (Date.now() < deadline) {
        attempts++;
        const lease = await tracker.claim('run', { owner: `w${w}`, key: { n: Math.floor(Math.random() * 10) } });
        if (!lease) continue;
        wins++;
        await tracker.release(lease);
        await sleep(0);
      }
    }),
  );
  await admin.query(`DROP TABLE IF EXISTS "${table}_keys", "${table}"`);
  return { workers: 64, items: 10, attempts, wins, wastedPerWin: (attempts - wins) / Math.max(1, wins) };
}
