import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Tracker, type Store, type StoreChange } from '../src/index.js';
import { listen, listenCheck, parsePayload } from '../src/stores/sql/pg-listener.js';
import { MemoryStore } from '../src/stores/memory.js';
import { PostgresStore } from '../src/stores/postgres.js';
import { SqliteStore } from '../src/stores/sqlite.js';
import { jobDefinition } from './support/job-definition.mjs';
import { startWakeChild, until } from './support/processes.js';
import { stderrOf } from './support/stderr.js';

/**
 * Wake-ups across processes. Every worker here polls only every 30 s (`POLL_MS`), and every
 * wait below has a budget of 20 s counted from the moment the work was made claimable: only a
 * wake-up can explain an item handled within it. The budgets say nothing about speed (a loaded
 * machine takes what it takes); they only rule out the poll.
 */
const POLL_MS = 30_000;
const BUDGET_MS = 20_000;

const start = (kind: string, target: string, table: string) => startWakeChild(kind, target, table, POLL_MS);
const dir = mkdtempSync(join(tmpdir(), 'leasehold-wake-'));
const url = inject('postgresUrl');
const pools: pg.Pool[] = [];
const pool = (max = 4) => {
  const p = new pg.Pool({ connectionString: url, max });
  p.on('error', () => {});
  pools.push(p);
  return p;
};
const admin = pool(2);
const run = `${process.pid}_${Date.now() % 1e6}`;
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  rmSync(dir, { recursive: true, force: true });
});

/** Waits for a condition, failing with `what` after `budgetMs`. */
const stores = [
  ['sqlite', () => join(dir, 'wake.sqlite'), (target: string, table: string): Store => new SqliteStore({ filename: target, table })],
  ['postgres', () => url, (_target: string, table: string): Store => new PostgresStore({ pool: admin, table })],
] as const;

describe.each(stores)('wake-ups across processes on %s', (kind, target, make) => {
  it('a worker in another process, polling every 30 s, picks up items tracked here at once, and stop() lets it exit', async () => {
    const table = `wake_${kind}_${run}`;
    const tracker = new Tracker(jobDefinition(make(target(), table)));
    await tracker.init();
    const worker = start(kind, target(), table);
    try {
      await until('the worker child to go idle', () => worker.lines.includes('idle'), 60_000);
      for (const n of [1, 2, 3]) {
        await tracker.track({ n });
        await until(`item ${n} done by the other process`, async () => (await tracker.get({ n }))?.status === 'done', BUDGET_MS);
      }
      expect(worker.lines.filter((l) => l.startsWith('started'))).toEqual(['started 1', 'started 2', 'started 3']);
    } finally {
      // the child exits by itself after stop(): its watcher (listening connection, timer) is gone
      expect(await worker.stop()).toBe(0);
    }
    expect(worker.lines).toContain('stopped');
    expect(worker.lines.filter((l) => l.startsWith('error'))).toEqual([]);
  }, 120_000);

  it('an item scheduled 300 ms ahead wakes the worker in another process when it is due', async () => {
    const table = `wake_due_${kind}_${run}`;
    const tracker = new Tracker(jobDefinition(make(target(), table)));
    await tracker.init();
    const worker = start(kind, target(), table);
    try {
      await until('the worker child to go idle', () => worker.lines.includes('idle'), 60_000);
      await tracker.track({ n: 1 }, undefined, { delayMs: 300 });
      await until('the scheduled item done by the other process', async () => (await tracker.get({ n: 1 }))?.status === 'done', BUDGET_MS);
      const item = (await tracker.get({ n: 1 }))!;
      // claimed no earlier than it was due, by the store's clock
      expect(item.claimedAt!.getTime()).toBeGreaterThanOrEqual(item.createdAt.getTime() + 300);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  }, 120_000);
});

describe('PostgreSQL LISTEN/NOTIFY', () => {
  const listeners = async (channelPrefix: string) =>
    (await admin.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE query LIKE $1`, [`LISTEN "${channelPrefix}%`])).rows.map((r) => r.pid);

  it('survives a killed listening connection: after pg_terminate_backend the next track still wakes the other process', async () => {
    const table = `wake_kill_${run}`;
    const channel = `leasehold.public.${table}`;
    const tracker = new Tracker(jobDefinition(new PostgresStore({ pool: admin, table })));
    await tracker.init();
    const worker = start('postgres', url, table);
    try {
      await until('the worker child to go idle', () => worker.lines.includes('idle'), 60_000);
      await until('the child to LISTEN', async () => (await listeners(channel)).length === 1, 30_000);
      const [killed] = await listeners(channel);
      await admin.query('SELECT pg_terminate_backend($1)', [killed]);
      await until('the child to LISTEN again on a new connection', async () => {
        const now = await listeners(channel);
        return now.length === 1 && now[0] !== killed;
      }, BUDGET_MS);
      await tracker.track({ n: 1 });
      await until('item 1 done by the other process', async () => (await tracker.get({ n: 1 }))?.status === 'done', BUDGET_MS);
    } finally {
      expect(await worker.stop()).toBe(0);
    }
  }, 120_000);

  it('reads a payload as `<ms>:<status>`, and anything else (or a delay past what a Date holds) as "something changed"', () => {
    expect(parsePayload('0:pending')).toEqual({ status: 'pending' });
    const due = parsePayload('5000:pending');
    expect(due.status).toBe('pending');
    expect(due.at!.getTime() - Date.now()).toBeGreaterThan(4_000);
    for (const odd of [undefined, '', 'pending', ':pending', 'x:pending', '10:', '9000000000000000:pending']) expect(parsePayload(odd)).toEqual({});
  });

  // a listening connection that a NAT or load balancer dropped while idle never errors: no
  // notification arrived again, and nothing said so
  it('replaces a listening connection that went silent (no error, no close), and tells its listeners to look', async () => {
    const target = new URL(url);
    const sockets: Array<{ frozen: boolean; listening: boolean; ends: net.Socket[] }> = [];
    const proxy = net.createServer((client) => {
      const upstream = net.connect(Number(target.port), target.hostname);
      const pair = { frozen: false, listening: false, ends: [client, upstream] };
      sockets.push(pair);
      client.on('data', (chunk) => {
        if (chunk.includes('LISTEN')) pair.listening = true;
        if (!pair.frozen) upstream.write(chunk);
      });
      upstream.on('data', (chunk) => void (pair.frozen || client.write(chunk)));
      for (const s of pair.ends) s.on('error', () => {});
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const via = new URL(url);
    via.hostname = '127.0.0.1';
    via.port = String((proxy.address() as net.AddressInfo).port);
    const proxied = new pg.Pool({ connectionString: via.toString(), max: 2 });
    proxied.on('error', () => {});
    const saved = { ...listenCheck };
    Object.assign(listenCheck, { everyMs: 100, timeoutMs: 300 });
    const channel = `leasehold.public.silent_${run}`;
    const heard: StoreChange[] = [];
    const stop = listen(proxied, channel, (change) => heard.push(change));
    try {
      await until('the first catch-up', () => heard.length === 1, BUDGET_MS);
      // the path goes quiet: no FIN, no RST, nothing delivered either way
      for (const pair of sockets.filter((p) => p.listening)) pair.frozen = true;
      await until('a new listening connection and its catch-up', () => heard.length === 2, BUDGET_MS);
      expect(heard[1]).toEqual({});
      await admin.query('SELECT pg_notify($1, $2)', [channel, '0:pending']);
      await until('the notification on the new connection', () => heard.some((c) => c.status === 'pending'), BUDGET_MS);
    } finally {
      stop();
      Object.assign(listenCheck, saved);
      for (const pair of sockets) for (const s of pair.ends) s.destroy();
      await proxied.end();
      await new Promise((resolve) => proxy.close(resolve));
    }
  }, 60_000);

  describe('a probe notification from another connection', () => {
    const quickly = async (fn: () => Promise<void>) => {
      const saved = { ...listenCheck };
      Object.assign(listenCheck, { probeMs: 300 });
      try {
        await fn();
      } finally {
        Object.assign(listenCheck, saved);
      }
    };

    it('says once, and stops listening on the pool, where notifications from other connections never reach the listening one (a pooler in transaction mode)', async () => {
      // what a pooler in transaction mode does: the LISTEN is held on one server connection, and
      // what the client hears afterwards comes from another one
      const real = pool(6);
      let connects = 0;
      const released: unknown[] = [];
      const deafPool = {
        async connect() {
          connects++;
          const [held, heardFrom] = [await real.connect(), await real.connect()];
          return {
            query: (text: string) => held.query(text),
            on: (event: 'notification' | 'error' | 'end', fn: (arg: never) => void) => heardFrom.on(event, fn as never),
            release: (destroy?: Error | boolean) => {
              released.push(destroy);
              held.release(destroy);
              heardFrom.release(destroy);
            },
          };
        },
      };
      const channel = `leasehold.public.deaf_${run}`;
      const heard: StoreChange[] = [];
      let stop = () => {};
      const said = await stderrOf(() =>
        quickly(async () => {
          stop = listen(deafPool, channel, (change) => heard.push(change));
          await until('the listening connection given up', () => released.length === 2, BUDGET_MS);
          // no new listening connection after it, though one would come within 0.1 s after a failure
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }),
      );
      stop();
      expect(connects).toBe(2);
      expect(released).toEqual([undefined, true]);
      expect(said.match(/\[leasehold\]/g)).toHaveLength(1);
      expect(said).toMatch(/did not reach its listening connection .* pooler in transaction mode.*notifications: false/);
    }, 60_000);

    it('is heard on a connection to PostgreSQL itself: nothing is said, and the pool goes on listening', async () => {
      const direct = pool(3);
      const channel = `leasehold.public.probed_${run}`;
      const heard: StoreChange[] = [];
      let stop = () => {};
      const said = await stderrOf(() =>
        quickly(async () => {
          stop = listen(direct, channel, (change) => heard.push(change));
          await until('the catch-up after LISTEN', () => heard.length === 1, BUDGET_MS);
          // past the probe's wait: a deaf verdict would have been said, and the connection dropped
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          await admin.query('SELECT pg_notify($1, $2)', [channel, '0:queued']);
          await until('the notification', () => heard.some((c) => c.status === 'queued'), BUDGET_MS);
        }),
      );
      stop();
      expect(said).toBe('');
      expect(heard).toHaveLength(2);
    }, 60_000);
  });

  it('one listening connection per pool, whatever the number of trackers and tables; given back when the last worker stops', async () => {
    const shared = pool(4);
    const tables = ['a', 'b'].map((t) => `wake_share_${run}_${t}`);
    const prefix = `leasehold.public.wake_share_${run}`;
    // workers on one pool, two tables, two workers each; the items come from another pool, so
    // only a notification can wake them
    const workers = tables.flatMap((table) => {
      const tracker = new Tracker(jobDefinition(new PostgresStore({ pool: shared, table })));
      return [1, 2].map(() => tracker.work('run', async () => {}, { pollMinMs: POLL_MS, pollMaxMs: POLL_MS }));
    });
    await Promise.all(workers.map((w) => w.drain()));
    const seen = new Set<number>();
    const sample = async () => {
      for (const pid of await listeners(prefix)) seen.add(pid);
      return seen.size > 0;
    };
    await until('a LISTEN on these channels', sample, 30_000);
    const producers = tables.map((table) => new Tracker(jobDefinition(new PostgresStore({ pool: admin, table }))));
    await Promise.all(producers.map((t) => t.track({ n: 1 })));
    await until('both items done', async () => (await sample()) && (await Promise.all(producers.map(async (t) => (await t.get({ n: 1 }))?.status))).every((s) => s === 'done'), BUDGET_MS);
    expect(seen.size).toBe(1);
    await Promise.all(workers.map((w) => w.stop()));
    // the listening connection was destroyed, not kept: the pool can end
    const ended = await Promise.race([shared.end().then(() => 'ended'), new Promise((r) => setTimeout(() => r('hung'), 10_000))]);
    pools.splice(pools.indexOf(shared), 1);
    expect(ended).toBe('ended');
  }, 60_000);

  it('sends `<ms>:<status>` in the statement that makes an item claimable, and nothing with `notifications: false`', async () => {
    const table = `wake_payload_${run}`;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const heard: string[] = [];
    client.on('notification', (m) => heard.push(m.payload ?? ''));
    await client.query(`LISTEN "leasehold.public.${table}"`);
    try {
      const silent = new Tracker(jobDefinition(new PostgresStore({ pool: admin, table, notifications: false })));
      await silent.track({ n: 0 });
      const tracker = new Tracker(jobDefinition(new PostgresStore({ pool: admin, table }), { backoff: () => 60_000 }));
      await tracker.track({ n: 1 });
      await tracker.track({ n: 2 }, undefined, { delayMs: 5_000 });
      const lease = (await tracker.claim('run', { owner: 'w', key: { n: 1 } }))!;
      await tracker.fail(lease, new Error('again later'));
      await until('three notifications', () => heard.length >= 3, BUDGET_MS);
      // a marker: anything the silent store or the claim had sent would have arrived before it
      await admin.query(`SELECT pg_notify($1, 'marker')`, [`leasehold.public.${table}`]);
      await until('the marker', () => heard.includes('marker'), BUDGET_MS);
      const [now, scheduled, retried] = heard;
      expect(now).toBe('0:queued');
      expect(scheduled).toMatch(/^\d+:queued$/);
      expect(Number(scheduled!.split(':')[0])).toBeGreaterThan(4_000);
      expect(Number(scheduled!.split(':')[0])).toBeLessThanOrEqual(5_000);
      expect(Number(retried!.split(':')[0])).toBeGreaterThan(50_000);
      expect(heard).toHaveLength(4);
    } finally {
      await client.end();
    }
  });

  it('watches only where it can listen: not without `pool.connect`, not with `max: 1`, not with `notifications: false`', () => {
    expect(new PostgresStore({ pool: { query: (q) => admin.query(q) }, table: 't' }).watch).toBeUndefined();
    expect(new PostgresStore({ pool: pool(1), table: 't' }).watch).toBeUndefined();
    expect(new PostgresStore({ pool: admin, table: 't', notifications: false }).watch).toBeUndefined();
    expect(new PostgresStore({ pool: admin, table: 't' }).watch).toBeTypeOf('function');
    expect(() => new PostgresStore({ pool: admin, table: 't', notifications: 'yes' as never })).toThrow(/`notifications`/);
    expect(new SqliteStore({ filename: ':memory:', table: 't' }).watch).toBeUndefined();
    expect(new SqliteStore({ filename: join(dir, 'x.sqlite'), table: 't', watchIntervalMs: false }).watch).toBeUndefined();
    expect(() => new SqliteStore({ filename: join(dir, 'x.sqlite'), table: 't', watchIntervalMs: 0 })).toThrow(/`watchIntervalMs`/);
  });
});

describe('due times in one process', () => {
  const memoryJobs = (backoff?: (attempt: number) => number) => new Tracker(jobDefinition(new MemoryStore(), backoff ? { backoff } : {}));

  it('a worker polling every 30 s claims a scheduled item when it is due', async () => {
    const tracker = memoryJobs();
    const worker = tracker.work('run', async () => {}, { pollMinMs: POLL_MS, pollMaxMs: POLL_MS });
    await worker.drain();
    await tracker.track({ n: 1 }, undefined, { delayMs: 300 });
    await until('the scheduled item done', async () => (await tracker.get({ n: 1 }))?.status === 'done', BUDGET_MS);
    await worker.stop();
  });

  /** A worker polling every 30 s whose first attempt at item 1 fails; `attempts()` counts item 1's. */
  const failingOnce = (tracker: ReturnType<typeof memoryJobs>) => {
    let attempts = 0;
    const worker = tracker.work(
      'run',
      async (lease) => {
        if (lease.key.n === 1 && ++attempts === 1) throw new Error('first try fails');
      },
      { pollMinMs: POLL_MS, pollMaxMs: POLL_MS },
    );
    return { worker, attempts: () => attempts };
  };

  it('a worker polling every 30 s retries a failed item when its backoff ends, and learns of items scheduled before it started', async () => {
    const tracker = memoryJobs(() => 300);
    await tracker.track({ n: 2 }, undefined, { delayMs: 400 });
    const { worker, attempts } = failingOnce(tracker);
    await tracker.track({ n: 1 });
    await until('both items done', async () => (await tracker.get({ n: 1 }))?.status === 'done' && (await tracker.get({ n: 2 }))?.status === 'done', BUDGET_MS);
    await worker.stop();
    expect(attempts()).toBe(2);
  });

  it.each([
    ['a minute ahead of', 60_000],
    ['a minute behind', -60_000],
  ])('with the store\'s clock %s this process\'s, a worker polling every 30 s still claims a scheduled item and a retry when they are due', async (_, skew) => {
    const tracker = new Tracker(jobDefinition(new MemoryStore({ clock: () => Date.now() + skew }), { backoff: () => 300 }));
    const { worker, attempts } = failingOnce(tracker);
    await worker.drain();
    // due in 300 ms by the store's clock: by this process's, a minute late (or long past) before
    await tracker.track({ n: 1 }, undefined, { delayMs: 300 });
    await until('the scheduled item, then its retry, done', async () => (await tracker.get({ n: 1 }))?.status === 'done', BUDGET_MS);
    await worker.stop();
    expect(attempts()).toBe(2);
  });
});
