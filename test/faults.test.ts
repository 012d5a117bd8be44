import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseLostError, StoreError, Tracker, type Store, type Worker } from '../src/index.js';
import { PostgresStore } from '../src/stores/postgres.js';
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs';
import { jobDefinition } from './support/job-definition.mjs';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function makeTracker(store: Store) {
  return new Tracker(jobDefinition(store, { ttlMs: 1_000, maxAttempts: 100, backoff: (a) => Math.min(300, 10 * 2 ** a) }));
}

/**
 * Store faults on a PostgreSQL of this test's own (so that restarting it disturbs no other
 * test): a restart mid-run, connections dropped, left half-open and delayed through a proxy,
 * and a store slow enough that leases expire while handlers run.
 */
describe('store faults: workers carry on, and every failure is a StoreError or LeaseLostError', () => {
  let server: Awaited<ReturnType<typeof startEmbeddedPostgres>>;
  let proxy: TcpProxy;
  const pools: pg.Pool[] = [];
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => void unhandled.push(reason);

  beforeAll(async () => {
    server = await startEmbeddedPostgres();
    proxy = await startTcpProxy(server.port);
    process.on('unhandledRejection', onUnhandled);
  }, 60_000);

  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
    await proxy?.close();
    await server?.stop();
  });

  const pool = (port: number, timeouts = true) => {
    const p = new pg.Pool({
      connectionString: server.url.replace(`:${server.port}/`, `:${port}/`),
      max: 4,
      ...(timeouts ? { query_timeout: 1_500, connectionTimeoutMillis: 1_500 } : {}),
    });
    p.on('error', () => {}); // idle connections closed by a restart or a drop are replaced
    pools.push(p);
    return p;
  };

  it('restart, drops, half-open connections and a slow store: 300 items all done, none completed twice', async () => {
    const direct = makeTracker(new PostgresStore({ pool: pool(server.port), table: 'faults' }));
    await direct.init();
    for (let n = 0; n < 300; n++) await direct.track({ n });

    const completions = new Map<number, number[]>();
    const errors: unknown[] = [];
    let leaseLost = 0;
    const workers: Worker[] = [];
    for (let w = 0; w < 3; w++) {
      const tracker = makeTracker(new PostgresStore({ pool: pool(proxy.port), table: 'faults' }));
      tracker.on('completed', (e) => completions.set(e.key.n, [...(completions.get(e.key.n) ?? []), e.fence]));
      tracker.on('error', (e) => errors.push(e.error));
      tracker.on('leaseLost', () => leaseLost++);
      workers.push(tracker.work('run', async () => sleep(150 + Math.random() * 200), { concurrency: 3, owner: `w${w}`, pollMaxMs: 200, heartbeatMs: 300 }));
    }
    let reaping = true;
    const reaper = (async () => {
      while (reaping) {
        await direct.reapStale().catch((e: unknown) => errors.push(e));
        await sleep(200);
      }
    })();

    const faults: string[] = [];
    await sleep(300);
    proxy.dropAll();
    faults.push('dropped every connection');
    await sleep(400);
    proxy.blackhole(true);
    faults.push('connections half-open for 2.5 s');
    await sleep(2_500);
    proxy.blackhole(false);
    proxy.dropAll();
    await sleep(400);
    proxy.delay(1_200);
    faults.push('every packet delayed 1.2 s (longer than the lease) for 2.5 s');
    await sleep(2_500);
    proxy.delay(0);
    await server.restart();
    faults.push('PostgreSQL restarted');

    const deadline = Date.now() + 60_000;
    let stats = await direct.stats();
    while (stats.byStatus.done < 300 && Date.now() < deadline) {
      await sleep(200);
      stats = await direct.stats().catch(() => stats);
    }
    reaping = false;
    await reaper;
    await Promise.all(workers.map((w) => w.stop({ timeoutMs: 3_000 })));

    console.log(`[faults] ${faults.join('; ')}: ${errors.length} store errors, ${leaseLost} lost leases, ${stats.byStatus.done}/300 done`);
    expect(stats.byStatus).toMatchObject({ done: 300, running: 0, queued: 0, failed: 0 });
    // the faults happened, and every one surfaced as a StoreError with its cause, or a lost lease
    expect(errors.length).toBeGreaterThan(0);
    for (const error of errors) {
      expect(error instanceof StoreError || error instanceof LeaseLostError, String(error)).toBe(true);
      if (error instanceof StoreError) expect(error.cause).toBeDefined();
    }
    expect(unhandled).toEqual([]);
    // a complete whose answer was lost may have no event; none may have two
    for (const [n, fences] of completions) expect(fences, `item ${n}`).toHaveLength(1);
    const items = await direct.find({ limit: 400 });
    for (const item of items) {
      const fences = completions.get(item.key.n);
      if (fences) expect(item.fence).toBe(fences[0]);
    }
  }, 120_000);

  it('a complete whose answer the connection lost had committed: sent again, it is taken as applied, not as a lost lease', async () => {
    const direct = makeTracker(new PostgresStore({ pool: pool(server.port), table: 'lost_answer' }));
    const tracker = makeTracker(new PostgresStore({ pool: pool(proxy.port), table: 'lost_answer' }));
    await tracker.track({ n: 1 });
    const events: string[] = [];
    for (const name of ['completed', 'leaseLost'] as const) tracker.on(name, () => void events.push(name));
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    proxy.loseNextAnswer();
    const error = await tracker.complete(lease).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).transient).toBe(true);
    // the server committed it before the answer was lost
    expect((await direct.get({ n: 1 }))!.status).toBe('done');
    expect(await tracker.complete(lease)).toEqual(await direct.get({ n: 1 }));
    expect(events).toEqual(['completed']);
  }, 60_000);

  it('a worker whose complete committed but lost its answer sends it again and reports it done once', async () => {
    const direct = makeTracker(new PostgresStore({ pool: pool(server.port), table: 'lost_answer_worker' }));
    const tracker = makeTracker(new PostgresStore({ pool: pool(proxy.port), table: 'lost_answer_worker' }));
    await direct.track({ n: 1 });
    const events: string[] = [];
    const errors: unknown[] = [];
    for (const name of ['completed', 'failed', 'leaseLost'] as const) tracker.on(name, () => void events.push(name));
    tracker.on('error', (e) => void errors.push(e.error));
    const worker = tracker.work(
      'run',
      () => {
        // the next answer from the server is the complete's: dropped after the commit
        proxy.loseNextAnswer();
      },
      { reapIntervalMs: false },
    );
    for (const end = Date.now() + 20_000; events.length === 0 && Date.now() < end; ) await sleep(20);
    await worker.stop();
    expect(events).toEqual(['completed']);
    expect((await direct.get({ n: 1 }))!).toMatchObject({ status: 'done', attempts: 0 });
    // what the dropped connection cost is a transient store fault or two, never a settle error
    expect(errors.every((e) => e instanceof StoreError && e.transient && e.operation !== 'complete')).toBe(true);
  }, 60_000);

  it('a renew hung on a half-open connection (no pool-level query timeout) still aborts lease.signal', async () => {
    const tracker = makeTracker(new PostgresStore({ pool: pool(proxy.port, false), table: 'half_open' }));
    await tracker.track({ n: 1 });
    let claimed = false;
    let reason: unknown;
    const worker = tracker.work(
      'run',
      (lease) =>
        new Promise<void>((resolve) => {
          claimed = true;
          lease.signal.addEventListener('abort', () => ((reason = lease.signal.reason), resolve()));
        }),
      { heartbeatMs: 100, renewTimeoutMs: 200, reapIntervalMs: false },
    );
    tracker.on('error', () => {});
    while (!claimed) await sleep(20);
    // every byte is swallowed from now on: renews are sent and never answered
    proxy.blackhole(true);
    while (reason === undefined) await sleep(20);
    proxy.blackhole(false);
    proxy.dropAll();
    expect(String(reason)).toMatch(/could not be renewed for a whole ttl/);
    await worker.stop({ timeoutMs: 500 });
  }, 60_000);
});
