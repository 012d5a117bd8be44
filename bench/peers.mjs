// The libraries users would pick instead, driven through their public APIs with a no-op handler.
import { sleep } from './lib.mjs';

/** pg-boss: `work()` with `batchSize` jobs per fetch, `workers` fetch loops. */
export async function drainPgBoss(url, admin, { items, workers, batch, deadline }) {
  const { default: PgBoss } = await import('pg-boss');
  await admin.query('DROP SCHEMA IF EXISTS pgboss CASCADE');
  const boss = new PgBoss({ connectionString: url, max: workers + 2, supervise: false, schedule: false });
  boss.on('error', () => {});
  await boss.start();
  await boss.createQueue('bench');
  for (let i = 0; i < items; i += 5_000) {
    await boss.insert(Array.from({ length: Math.min(5_000, items - i) }, () => ({ name: 'bench', data: {} })));
  }
  const completed = async () => Number((await admin.query(`SELECT count(*) AS n FROM pgboss.job WHERE name = 'bench' AND state = 'completed'`)).rows[0].n);
  const started = Date.now();
  for (let w = 0; w < workers; w++) await boss.work('bench', { batchSize: batch, pollingIntervalSeconds: 0.5 }, async () => {});
  let done = 0;
  while (Date.now() < deadline && (done = await completed()) < items) await sleep(100);
  const seconds = (Date.now() - started) / 1000;
  await boss.stop({ graceful: false, wait: true, timeout: 2_000 }).catch(() => {});
  return { done, seconds };
}

/** graphile-worker: `run()` with `workers` concurrent jobs, with or without its local queue. */
export async function drainGraphile(url, admin, { items, workers, localQueue, deadline }) {
  const { run, makeWorkerUtils } = await import('graphile-worker');
  await admin.query('DROP SCHEMA IF EXISTS graphile_worker CASCADE');
  const utils = await makeWorkerUtils({ connectionString: url });
  await utils.migrate();
  for (let i = 0; i < items; i += 5_000) {
    await utils.addJobs(Array.from({ length: Math.min(5_000, items - i) }, () => ({ identifier: 'noop', payload: {} })));
  }
  const remaining = async () => Number((await admin.query('SELECT count(*) AS n FROM graphile_worker._private_jobs')).rows[0].n);
  const started = Date.now();
  const runner = await run({
    connectionString: url,
    concurrency: workers,
    noHandleSignals: true,
    pollInterval: 500,
    logger: new (await import('graphile-worker')).Logger(() => () => {}),
    taskList: { noop: async () => {} },
    preset: localQueue ? { worker: { localQueue: { size: localQueue } } } : undefined,
  });
  let left = items;
  while (Date.now() < deadline && (left = await remaining()) > 0) await sleep(100);
  const seconds = (Date.now() - started) / 1000;
  await runner.stop();
  await utils.release();
  return { done: items - left, seconds };
}
