import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { RedisStore, type RedisClient, type RedisPipeline, type RedisStoreOptions } from '../src/stores/redis.js';
import { ConfigError, LeaseLostError, StoreError, Tracker, type Store, type StoreChange } from '../src/index.js';
import { storeContract } from '../src/testing/suite.js';
import { k, makeTracker } from '../src/testing/definition.js';
import { PROCESS_RACES_TIMEOUT, processRaces, raceTracker, startWakeChild, until } from './support/processes.js';
import { expectBatchRoundTrips, expectOneRoundTripEach } from './support/round-trips.js';
import { redisServerBinary, startRedisServer, type RedisServer } from '../scripts/redis-server.mjs';
import { Subscriber, type RedisSubscriberConnection } from '../src/stores/redis/subscriber.js';

const url = inject('redisUrl');
const source = inject('redisSource');
const binary = redisServerBinary();
const clients: Redis[] = [];
const servers: RedisServer[] = [];
const prefixes = new WeakMap<Store, string>();
const run = `${process.pid}_${Date.now() % 1e6}`;
let n = 0;

function client(at = url, options: RedisOptions = {}): Redis {
  const c = new Redis(at, { maxRetriesPerRequest: 1, ...options });
  clients.push(c);
  return c;
}
const main = url ? client() : undefined;

afterAll(async () => {
  await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  await Promise.all(servers.map((s) => s.stop()));
});

/** Says loudly, in the output and in the report, that a suite cannot run here and why. */
function skipLoudly(what: string, why: string): void {
  console.log(`\n${'='.repeat(100)}\n[leasehold tests] ${what} SKIPPED: ${why}\n${'='.repeat(100)}\n`);
  it.skip(`SKIPPED: ${why}`);
}

if (!url) {
  skipLoudly(
    'test/redis.test.ts',
    'no Redis server (REDIS_URL unset, no redis-server installed).\n  Install redis-server (apt-get install redis-server) or set REDIS_URL=redis://... to run it.',
  );
}

/** A test's own edit of the stored state (not the store's): Lua over the store's layout. */
async function edit(store: Store, script: string, ...args: Array<string | number>): Promise<unknown> {
  const base = `{${prefixes.get(store)}}:`;
  return main!.eval(script, 1, `${base}ids`, base, ...args);
}

/**
 * A TCP proxy to the test server that, once armed, drops the connection instead of passing on
 * the next reply: the command ran, and the client never heard. ioredis then reconnects.
 */
async function replyDropper() {
  const target = new URL(url);
  let armed = false;
  let dropped = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const s of [socket, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    socket.on('close', () => upstream.destroy());
    upstream.on('close', () => socket.destroy());
    socket.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => {
      if (!armed) return void socket.write(chunk);
      armed = false;
      dropped++;
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const at = new URL(url);
  at.hostname = '127.0.0.1';
  at.port = String((server.address() as AddressInfo).port);
  return {
    url: at.toString(),
    arm: () => void (armed = true),
    dropped: () => dropped,
    close: () => new Promise<void>((resolve) => (sockets.forEach((s) => s.destroy()), server.close(() => resolve()))),
  };
}

/** Moves every deadline `ms` earlier, in the item hashes and the status sorted sets alike. */
const BACKDATE = `
local P, ms = ARGV[1], tonumber(ARGV[2])
for _, s in ipairs(redis.call('SMEMBERS', P .. 'statuses')) do
  local z = P .. 'z:' .. s
  local members = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
  for i = 1, #members, 2 do
    local dl = string.format('%.0f', math.floor(tonumber(members[i + 1]) - ms))
    redis.call('ZADD', z, dl, members[i])
    redis.call('HSET', P .. 'i:' .. members[i], 'dl', dl)
  end
end`;

const CORRUPT = `
local id = redis.call('HGET', KEYS[1], ARGV[2])
redis.call('HSET', ARGV[1] .. 'i:' .. id, 'd', '{"bytes":"not a number"}')`;

function make(prefix: string, options: Partial<RedisStoreOptions> = {}, via: RedisClient | undefined = main): RedisStore {
  const store = new RedisStore({ client: via!, prefix, ...options });
  prefixes.set(store, prefix);
  return store;
}

describe.skipIf(!url)(`RedisStore (${source})`, () => {
  if (!url) return;

  storeContract({
    name: `RedisStore (${source})`,
    raceRepeats: 100,
    async create() {
      return make(`contract_${run}_${++n}`);
    },
    async elapse(store, ms) {
      await edit(store, BACKDATE, ms);
    },
    async peer(store) {
      // a connection of its own: separate connections race for real
      return make(prefixes.get(store)!, {}, client());
    },
    async corrupt(store, key) {
      await edit(store, CORRUPT, JSON.stringify([key.logId, key.partnerCode, key.seq]));
    },
  });

  describe('RedisStore: free text reaches the scripts well-formed', () => {
    // JSON.stringify writes a lone surrogate as `\udXXX`, which Redis's cjson refuses: the whole
    // script failed, and with it every other settle of the batch
    it('a lastError or owner with a lone surrogate, written by the store directly, settles the whole batch', async () => {
      const store = make(`surrogate_${run}`);
      const tracker = makeTracker(store);
      await tracker.init();
      for (let i = 0; i < 2; i++) await tracker.track(k(i));
      expect(await tracker.claimBatch('download', { owner: 'w', limit: 2 })).toHaveLength(2);
      const [a, b] = await store.find({ status: ['downloading'] });
      const rows = await store.updateEach!([
        { guard: { ref: a!.ref, key: a!.key, status: 'downloading', fence: a!.fence }, change: { status: 'downloaded', attempts: 'reset' } },
        { guard: { ref: b!.ref, key: b!.key, status: 'downloading', fence: b!.fence }, change: { status: 'pending', owner: 'w\uD800', lastError: 'cut \uD83D', deadline: { ms: 0 } } },
      ]);
      expect(rows.map((r) => r?.status)).toEqual(['downloaded', 'pending']);
      const [stored] = await store.find({ ref: b!.ref });
      expect(stored!.lastError).toBe('cut \uFFFD');
      expect(stored!.owner).toBe('w\uFFFD');
    });
  });

  describe('RedisStore: the deadline from before an update (priorDeadline)', () => {
    // the script appends it after the fields only when asked: a reply of either shape, with and
    // without data, must still decode field by field
    it('returns each item\'s old deadline when asked, for every returning, and nothing more when not', async () => {
      const store = make(`prior_${run}`);
      await makeTracker(store).init();
      const base = Date.now() - 600_000;
      const due = (seq: number) => base - seq * 1_000;
      for (let seq = 0; seq < 3; seq++) await store.insert({ key: k(seq), status: 'pending', data: { note: `n${seq}` }, deadline: { at: new Date(due(seq)) } });
      const claim = { status: 'downloading', bumpFence: true, attempts: 'increment', deadline: { ms: 10_000 } } as const;
      const state = await store.update({ status: ['pending'], deadline: 'passed' }, claim, { returning: 'state', priorDeadline: true });
      expect(state.map((item) => [item.key.seq, item.priorDeadline?.getTime(), item.data, item.status])).toEqual([2, 1, 0].map((seq) => [seq, due(seq), undefined, 'downloading']));
      for (const item of state) expect(item.deadline.getTime()).toBe(item.claimedAt!.getTime() + 10_000);
      const [one] = await store.update({ key: k(1), status: ['downloading'] }, { status: 'downloaded', deadline: { ms: 0 } }, { priorDeadline: true });
      expect(one).toMatchObject({ status: 'downloaded', data: { note: 'n1' }, priorDeadline: state[1]!.deadline });
      for (const returning of ['item', 'state'] as const) {
        const [plain] = await store.update({ key: k(1), status: ['downloaded'] }, {}, { returning });
        expect(plain).not.toHaveProperty('priorDeadline');
        expect(plain!.data).toEqual(returning === 'item' ? { note: 'n1' } : undefined);
        expect(plain!.finishedAt).toBeNull();
      }
    });
  });

  describe('RedisStore across processes', () => {
    it('4 processes, each with its own connection, claiming the same 60 items: one winner per item', async () => {
      await processRaces({ store: 'redis', target: url, tag: run, make: (prefix) => make(prefix) });
    }, PROCESS_RACES_TIMEOUT);
  });

  describe('RedisStore: the canonical key places values by field name', () => {
    const keyed = <K extends z.ZodObject>(store: Store, key: K) =>
      new Tracker({
        store,
        statuses: ['pending', 'active', 'done', 'failed'] as const,
        initial: 'pending',
        key,
        stages: { go: { from: 'pending', active: 'active', done: 'done', failed: 'failed' } },
      });
    const key = { logId: 'L-1', partnerCode: 'ACME' };
    const declared = () => z.object({ partnerCode: z.string(), logId: z.string() });
    const reordered = () => z.object({ logId: z.string(), partnerCode: z.string() });

    // the values stood in the order of the zod key object's fields: listing them in another order,
    // a harmless refactor on the other stores, tracked every item again and read the old ones
    // with their values swapped
    it('a tracker whose key object lists the same fields in another order finds the same items', async () => {
      const prefix = `reorder_${run}`;
      const before = keyed(make(prefix), declared());
      expect((await before.track(key)).created).toBe(true);
      const after = keyed(make(prefix), reordered());
      expect((await after.track(key)).created).toBe(false);
      expect((await after.find({ status: 'pending' })).map((item) => item.key)).toEqual([key]);
      const lease = (await after.claim('go', { owner: 'w', key }))!;
      expect(lease.key).toEqual(key);
      await after.complete(lease);
      expect(await before.get(key)).toMatchObject({ key, status: 'done' });
    });

    it('a store written before the key fields were recorded keeps its items, also for a tracker that reorders the fields later', async () => {
      const prefix = `reorder_legacy_${run}`;
      await keyed(make(prefix), declared()).track(key);
      // what earlier versions left: the values in declaration order, and no record of the fields
      expect(await main!.hkeys(`{${prefix}}:ids`)).toEqual([JSON.stringify(['ACME', 'L-1'])]);
      await main!.del(`{${prefix}}:keyfields`);
      expect((await keyed(make(prefix), declared()).track(key)).created).toBe(false);
      expect(await main!.get(`{${prefix}}:keyfields`)).toBe(JSON.stringify(['partnerCode', 'logId']));
      const later = keyed(make(prefix), reordered());
      expect((await later.track(key)).created).toBe(false);
      expect(await later.get(key)).toMatchObject({ key, status: 'pending' });
    });

    // a key of other fields had its values sorted by name, and the old items were read with
    // their values under the wrong fields (a worker handed log `ACME` of partner `L-1`)
    it.each([
      ['a field dropped', z.object({ logId: z.string() })],
      ['a field renamed', z.object({ logId: z.string(), customerId: z.string() })],
      ['a field added', z.object({ logId: z.string(), partnerCode: z.string(), region: z.string() })],
    ])('a key of other fields than the recorded ones is refused while the store holds items (%s); an empty store takes the new fields', async (_, reshaped) => {
      const prefix = `reshaped_${run}_${reshaped.keyof().options.join('_')}`;
      const before = keyed(make(prefix), declared());
      await before.track(key);
      const after = keyed(make(prefix), reshaped);
      const error = await after.init().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/holds 1 item\(s\) whose keys are the values of the fields `partnerCode`, `logId`.*this tracker's key has the fields .*Nothing was changed/);
      expect(await main!.get(`{${prefix}}:keyfields`)).toBe(JSON.stringify(['partnerCode', 'logId']));
      expect(await before.get(key)).toMatchObject({ key, status: 'pending' });
      // emptied, the store takes the new fields
      await before.cancel(key);
      await before.purge({ status: 'failed' });
      const fresh = keyed(make(prefix), reshaped);
      await fresh.init();
      expect(JSON.parse((await main!.get(`{${prefix}}:keyfields`))!)).toEqual(reshaped.keyof().options);
    });

    it('a key whose item is gone but whose id entry is left (evicted, deleted by hand) is tracked again', async () => {
      const prefix = `orphan_${run}`;
      const tracker = keyed(make(prefix), declared());
      const { item } = await tracker.track(key);
      await main!.del(...(await main!.keys(`{${prefix}}:i:*`)));
      expect(await tracker.get(key)).toBeNull();
      const again = await tracker.track(key);
      expect(again.created).toBe(true);
      expect(again.item.createdAt.getTime()).toBeGreaterThanOrEqual(item.createdAt.getTime());
      expect(await tracker.get(key)).toMatchObject({ key, status: 'pending' });
      // the gone item's id no longer stands among the pending ones: claims and counts see one item
      expect((await tracker.stats()).byStatus.pending).toBe(1);
      expect((await tracker.claim('go', { owner: 'w' }))?.key).toEqual(key);
    });

    // a claim met the id of a hash deleted by hand in its status's sorted set, failed with a Lua
    // error after writing part of a hash for it, and so did every claim after it: the stage stuck
    it('an id whose item hash is gone (deleted by hand, evicted) is passed over by claims, reaps, finds and purges, and a write removes it', async () => {
      const prefix = `ghost_${run}`;
      const tracker = keyed(make(prefix), declared());
      const keys = ['L-1', 'L-2', 'L-3', 'L-4', 'L-5'].map((logId) => ({ logId, partnerCode: 'ACME' }));
      for (const k of keys) await tracker.track(k);
      const ids = await main!.zrange(`{${prefix}}:z:pending`, 0, -1);
      // one is held, and its lease has run out
      const held = (await tracker.claim('go', { owner: 'w', key: keys[2] }))!;
      await edit(tracker.store, BACKDATE, 3_600_000);
      // the first two pending items and the held one vanish by hand
      await main!.del(...ids.slice(0, 3).map((id) => `{${prefix}}:i:${id}`));
      expect((await tracker.find({ status: 'pending' })).map((i) => i.key)).toEqual(keys.slice(3));
      // the find removed the two it met: the pending set holds the two left
      expect(await main!.zrange(`{${prefix}}:z:pending`, 0, -1)).toEqual(ids.slice(3));
      expect(await tracker.reapStale()).toEqual({ retried: 0, failed: 0 });
      expect(await main!.zcard(`{${prefix}}:z:active`)).toBe(0);
      const claimed = await tracker.claimBatch('go', { owner: 'w', limit: 5 });
      expect(claimed.map((l) => l.key)).toEqual(keys.slice(3));
      expect(await tracker.complete(held).catch((e: unknown) => e)).toBeInstanceOf(LeaseLostError);
      // no partial hash was written for a gone item
      for (const id of ids.slice(0, 3)) expect(await main!.exists(`{${prefix}}:i:${id}`)).toBe(0);
      await tracker.completeBatch(claimed);
      expect(await tracker.purge({ status: 'done' })).toEqual({ deleted: 2 });
      const again = await tracker.track(keys[0]!);
      expect(again.created).toBe(true);
      expect((await tracker.claim('go', { owner: 'w' }))?.key).toEqual(keys[0]);
    });
  });

  describe('RedisStore through a client with a keyPrefix', () => {
    const tenant = (name: string) => client(url, { keyPrefix: `${name}_${run}:` });

    // ioredis adds its keyPrefix to the one key a script declares: the items, sorted sets and
    // counter of two applications kept apart by keyPrefix were one
    it('two applications kept apart by keyPrefix share nothing (items, claims, wake-ups), and every key of theirs carries it', async () => {
      const prefix = `key_prefix_${run}`;
      const [a, b] = [make(prefix, {}, tenant('tenantA')), make(prefix, {}, tenant('tenantB'))];
      const [ta, tb] = [makeTracker(a), makeTracker(b)];
      await Promise.all([ta.init(), tb.init()]);
      const heard: StoreChange[] = [];
      const stop = b.watch!((change) => heard.push(change));
      try {
        // the first message after subscribing says "look", with no status
        await expect.poll(() => heard.length).toBe(1);
        expect((await ta.track(k(1), { note: 'A' })).created).toBe(true);
        const lease = (await ta.claim('download', { owner: 'w' }))!;
        expect(lease.item.data).toEqual({ note: 'A' });
        expect(await ta.claim('download', { owner: 'w' })).toBeNull();
        await ta.complete(lease);
        expect((await tb.track(k(1), { note: 'B' })).created).toBe(true);
        await expect.poll(() => heard.length).toBe(2);
        expect(heard[1]).toEqual({ status: 'pending' });
        expect((await tb.stats()).byStatus).toMatchObject({ pending: 1, downloading: 0, downloaded: 0 });
        expect((await tb.claim('download', { owner: 'w' }))!.item.data).toEqual({ note: 'B' });
      } finally {
        stop();
      }
      const keys = await main!.keys(`*${prefix}*`);
      expect(keys.length).toBeGreaterThan(8);
      for (const key of keys) expect(key).toMatch(new RegExp(`^tenant[AB]_${run}:\\{${prefix}\\}:`));
    });

    it('refuses a keyPrefix with an empty hash tag, which would spread the store over Cluster slots', () => {
      const c = client(url, { keyPrefix: 'app{}:', lazyConnect: true });
      expect(() => make('x', {}, c)).toThrow(/`keyPrefix` `app\{\}:` has an empty hash tag/);
    });

    it('refuses the layout an earlier version left (ids under the keyPrefix, items not), until the guide\'s script moves them', async () => {
      const prefix = `key_prefix_split_${run}`;
      // what the earlier version wrote through a client with a keyPrefix: only `{p}:ids` under it
      const unprefixed = make(prefix);
      const tracker = makeTracker(unprefixed);
      for (let i = 0; i < 3; i++) await tracker.track(k(i), { note: `n${i}` });
      await tracker.complete((await tracker.claim('download', { owner: 'w', key: k(1) }))!);
      await main!.rename(`{${prefix}}:ids`, `old_${run}:{${prefix}}:ids`);
      await main!.del(`{${prefix}}:keyfields`);
      const moved = makeTracker(make(prefix, {}, tenant('old')));
      const error = await moved.init().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({ option: 'client' });
      expect((error as Error).message).toMatch(/`keyPrefix` `old_\d+_\d+:`.*Stop every process of the older version/);
      // the script of the Redis store guide, as written there
      const guide = readFileSync(new URL('../docs/stores/redis.md', import.meta.url), 'utf8');
      const script = /```lua\n([\s\S]*?)```/.exec(guide.slice(guide.indexOf('## A client with a keyPrefix')))![1]!;
      expect(await main!.eval(script, 0, `old_${run}:`, prefix)).toBe(3);
      await moved.init();
      expect((await moved.find({ status: ['pending', 'downloaded'] })).map((item) => [item.key.seq, item.status, item.data])).toEqual([
        [0, 'pending', { note: 'n0' }],
        [2, 'pending', { note: 'n2' }],
        [1, 'downloaded', { note: 'n1' }],
      ]);
      // the counter moved too: a new item takes the next id
      await moved.track(k(3));
      expect(await main!.hget(`old_${run}:{${prefix}}:ids`, JSON.stringify(['log-3', 'acme', 3]))).toBe('000000000004');
    });
  });

  describe('RedisStore: a call the client sends again after a reconnect', () => {
    // ioredis resends a command whose reply it had not read when the connection dropped
    // (`autoResendUnfulfilledCommands`, on by default): a completion that ran twice reported a
    // lost lease, and a claim that ran twice took a second item and left the first held by no one
    it('a track, claim, renew, settle, batch or purge whose reply was lost is answered as it ran, not run again', async () => {
      const proxy = await replyDropper();
      try {
        // ioredis' defaults, as an application passes its client
        const via = client(proxy.url, { maxRetriesPerRequest: 20 });
        const prefix = `resent_${run}`;
        const tracker = makeTracker(make(prefix, { notifications: false }, via));
        await tracker.init();
        const lost = async <T>(fn: () => Promise<T>): Promise<T> => {
          const before = proxy.dropped();
          proxy.arm();
          const result = await fn();
          expect(proxy.dropped()).toBe(before + 1);
          return result;
        };
        expect((await lost(() => tracker.track(k(1)))).created).toBe(true);
        for (let i = 2; i <= 6; i++) await tracker.track(k(i));
        const lease = (await lost(() => tracker.claim('download', { owner: 'w1' })))!;
        expect(lease.key).toEqual(k(1));
        await lost(() => tracker.renew(lease));
        expect((await lost(() => tracker.complete(lease))).status).toBe('downloaded');
        const batch = await lost(() => tracker.claimBatch('download', { owner: 'w2', limit: 2 }));
        expect(batch.map((l) => l.key.seq)).toEqual([2, 3]);
        expect((await lost(() => tracker.completeBatch(batch))).every((r) => r.ok)).toBe(true);
        // nothing held by no one, nothing claimed twice
        expect(await tracker.find({ status: 'downloading' })).toEqual([]);
        expect((await tracker.stats()).byStatus).toMatchObject({ pending: 3, downloaded: 3 });
        await tracker.cancel(k(4));
        await tracker.cancel(k(5));
        expect(await lost(() => tracker.purge({ status: 'failed', limit: 1 }))).toEqual({ deleted: 1 });
        expect((await tracker.stats()).byStatus).toMatchObject({ pending: 1, failed: 1 });
        // a resent batch naming one item twice, under a stale lease and the current one, answers
        // each as it ran: the stale one lost, the current one settled
        const backdate = () =>
          main!.eval(
            `for _, s in ipairs(redis.call('SMEMBERS', ARGV[1] .. 'statuses')) do
              for _, id in ipairs(redis.call('ZRANGE', ARGV[1] .. 'z:' .. s, 0, -1)) do
                local dl = tonumber(redis.call('HGET', ARGV[1] .. 'i:' .. id, 'dl')) - 100000
                redis.call('HSET', ARGV[1] .. 'i:' .. id, 'dl', string.format('%.0f', dl))
                redis.call('ZADD', ARGV[1] .. 'z:' .. s, dl, id)
              end
            end`,
            0,
            `{${prefix}}:`,
          );
        await tracker.track(k(8));
        const stale = (await tracker.claim('download', { owner: 'w3', key: k(8) }))!;
        await backdate();
        await tracker.reapStale();
        await backdate();
        const current = (await tracker.claim('download', { owner: 'w3', key: k(8) }))!;
        const both = await lost(() => tracker.completeBatch([stale, current]));
        expect(both.map((r) => r.ok)).toEqual([false, true]);
        expect((await tracker.get(k(8)))!.status).toBe('downloaded');
        // a write deletes the records of calls whose replies have arrived
        await tracker.track(k(7));
        expect(await main!.keys(`{${prefix}}:c:*`)).toEqual([]);
      } finally {
        await proxy.close();
      }
    });
  });

  describe('RedisStore round trips', () => {
    /** The client, counting the commands sent (script loads included). */
    function counting(): { client: RedisClient; commands: () => number } {
      let commands = 0;
      const c = main!;
      return {
        commands: () => commands,
        client: {
          evalsha: (...args) => (commands++, c.evalsha(...args)),
          eval: (...args) => (commands++, c.eval(...args)),
          script: (...args) => (commands++, c.script(...args)),
          config: (...args) => (commands++, c.config(...args)),
          duplicate: () => c.duplicate(),
        },
      };
    }

    it('keeps the record of a call that failed on the client (a command timeout): the client may send it again', async () => {
      const c = main!;
      const sent: Array<{ id: string; answered: string[] }> = [];
      let fail = false;
      const via: RedisClient = {
        evalsha: (...args) => {
          // evalsha(sha, 1, ids, base, claimable, call id, answered ids, ...)
          sent.push({ id: String(args[5]), answered: String(args[6]).split(',').filter(Boolean) });
          if (fail) return Promise.reject(new Error('Command timed out'));
          return c.evalsha(...args);
        },
        eval: (...args) => c.eval(...args),
        script: (...args) => c.script(...args),
        config: (...args) => c.config(...args),
        duplicate: () => c.duplicate(),
      };
      const tracker = makeTracker(make(`records_${run}`, {}, via));
      await tracker.track(k(1));
      await tracker.track(k(2));
      const answered = (await tracker.claim('download', { owner: 'w', key: k(1) }))!;
      const claimId = sent.at(-1)!.id;
      fail = true;
      await expect(tracker.claim('download', { owner: 'w', key: k(2) })).rejects.toThrow(/Command timed out/);
      const timedOut = sent.at(-1)!.id;
      fail = false;
      await tracker.complete(answered);
      // the next write deletes the answered claim's record, not the one of the call that timed out
      expect(sent.at(-1)!.answered).toContain(claimId);
      expect(sent.at(-1)!.answered).not.toContain(timedOut);
    });

    it('runs one command (one EVALSHA) per track, claim, renew, complete, fail and release', async () => {
      const { client: via, commands } = counting();
      await expectOneRoundTripEach(make(`round_trips_${run}`, {}, via), commands);
    });

    it('runs one command per batch claim and settle, and one per stage read plus one for the reap, whatever the batch size', async () => {
      const { client: via, commands } = counting();
      let m = 0;
      await expectBatchRoundTrips(
        async () => make(`batch_trips_${run}_${++m}`, {}, via),
        (store, ms) => edit(store, BACKDATE, ms).then(() => {}),
        commands,
        { claimBatch: 1, completeBatch: 1, failBatch: 1, reapStale: 3 },
      );
    });

    it('loads a script again when the server lost it (restart, SCRIPT FLUSH)', async () => {
      const tracker = makeTracker(make(`noscript_${run}`));
      await tracker.track(k(1));
      await main!.script('FLUSH');
      expect((await tracker.track(k(2))).created).toBe(true);
      expect((await tracker.claim('download', { owner: 'w' }))?.key).toEqual(k(1));
    });
  });

  describe('RedisStore layout', () => {
    it('every key of a store carries its hash tag, so one Cluster slot holds it all', async () => {
      const prefix = `layout_${run}`;
      const tracker = makeTracker(make(prefix));
      for (let i = 0; i < 5; i++) await tracker.track(k(i));
      const lease = (await tracker.claim('download', { owner: 'w' }))!;
      await tracker.complete(lease);
      const keys = await main!.keys(`*${prefix}*`);
      expect(keys.length).toBeGreaterThan(3);
      for (const key of keys) expect(key.startsWith(`{${prefix}}:`), key).toBe(true);
    });

    it('items with equal deadlines are claimed in insertion order (ids sort as numbers, past 0xf and 0xff too)', async () => {
      const store = make(`ties_${run}`);
      await makeTracker(store).init();
      const at = new Date(Date.now() - 60_000);
      // keys inserted in an order unrelated to their values: the order of insertion must win
      const order = Array.from({ length: 300 }, (_, i) => (i * 7919) % 300);
      for (const seq of order) await store.insert({ key: k(seq), status: 'pending', data: {}, deadline: { at } });
      const claimed = await store.update({ status: ['pending'], deadline: 'passed' }, { status: 'downloading', bumpFence: true }, { limit: 300, ordered: true, returning: 'state' });
      expect(claimed.map((item) => item.key.seq)).toEqual(order);
    });

    it('a long scan pages by score: 800 items, 600 of them on one deadline (three windows inside one score), come back whole and in eligible order', async () => {
      const store = make(`scan_${run}`);
      await makeTracker(store).init();
      const base = Date.now() - 60_000;
      // 600 items share one deadline and 200 a later one, inserted interleaved: the windows of
      // 256 end inside the run of equal scores twice before it ends
      const later = (i: number) => i % 4 === 3;
      for (let i = 0; i < 800; i++) await store.insert({ key: k(i), status: 'pending', data: {}, deadline: { at: new Date(base + (later(i) ? 1_000 : 0)) } });
      const seqs = Array.from({ length: 800 }, (_, i) => i);
      const expected = [...seqs.filter((i) => !later(i)), ...seqs.filter(later)];
      expect((await store.find({ status: ['pending'] }, { returning: 'state' })).map((item) => item.key.seq)).toEqual(expected);
      // a condition the sorted set cannot answer (the stage) reads every item's hash on the way
      const picked = [799, 700, 350, 2];
      for (const seq of picked) await store.update({ key: k(seq), status: ['pending'] }, { stage: 'picked' });
      const found = await store.find({ status: ['pending'], stage: 'picked' }, { returning: 'state' });
      expect(found.map((item) => item.key.seq)).toEqual(expected.filter((seq) => picked.includes(seq)));
      // and a claim of them all, in windows too
      const claimed = await store.update({ status: ['pending'], deadline: 'passed' }, { status: 'downloading' }, { limit: 800, ordered: true, returning: 'state' });
      expect(claimed.map((item) => item.key.seq)).toEqual(expected);
    });

    it('refuses a prefix that would break the hash tag', () => {
      expect(() => new RedisStore({ client: main!, prefix: 'a}b' })).toThrow(ConfigError);
      expect(() => new RedisStore({ client: main!, prefix: '' })).toThrow(ConfigError);
    });

    it('deletes every trace of a purged item, so a re-tracked key starts afresh', async () => {
      const prefix = `purge_${run}`;
      const store = make(prefix);
      const tracker = makeTracker(store);
      await tracker.track(k(1));
      const lease = (await tracker.claim('download', { owner: 'w' }))!;
      await tracker.complete(lease);
      const first = (await store.find({ key: k(1) }))[0]!;
      expect(await store.delete({ status: ['downloaded'] }, { limit: 10 })).toBe(1);
      expect(await main!.exists(`{${prefix}}:i:${String(first.ref)}`)).toBe(0);
      expect(await main!.hlen(`{${prefix}}:ids`)).toBe(0);
      const again = await tracker.track(k(1));
      expect(again.created).toBe(true);
      expect(again.item.fence).toBe(0);
    });
  });

  describe('RedisStore wake-ups across connections', () => {
    it('a track on another connection wakes a watcher with the status; a delayed one says when', async () => {
      const prefix = `wake_${run}`;
      const watcher = make(prefix, {}, client());
      const writer = make(prefix, {}, client());
      await makeTracker(watcher).init();
      const tracker = makeTracker(writer);
      await tracker.init();
      const heard: StoreChange[] = [];
      let notify: () => void = () => {};
      const stop = watcher.watch!((change) => {
        heard.push(change);
        notify();
      });
      const next = (pred: (c: StoreChange) => boolean) =>
        new Promise<StoreChange>((resolve) => {
          const check = () => {
            const found = heard.find(pred);
            if (found) resolve(found);
          };
          notify = check;
          check();
        });
      // the first message after subscribing says "look", with no status
      await next((c) => c.status === undefined);
      await tracker.track(k(1));
      expect(await next((c) => c.status === 'pending' && c.at === undefined)).toEqual({ status: 'pending' });
      await tracker.track(k(2), {}, { delayMs: 60_000 });
      const delayed = await next((c) => c.at !== undefined);
      expect(delayed.status).toBe('pending');
      expect(delayed.at!.getTime()).toBeGreaterThan(Date.now() + 30_000);
      // a claim makes nothing claimable: no message
      const count = heard.length;
      await tracker.claim('download', { owner: 'w' });
      await tracker.track(k(3));
      await next((c) => c.status === 'pending' && heard.indexOf(c) >= count);
      expect(heard.slice(count).filter((c) => c.status !== 'pending')).toEqual([]);
      stop();
    });

    // `duplicate()` copies `enableOfflineQueue: false`: the SUBSCRIBE sent before the new
    // connection was ready was refused, and nothing subscribed later
    it('a watcher whose client has `enableOfflineQueue: false` subscribes once its connection is ready', async () => {
      const prefix = `offline_queue_${run}`;
      const c = client(url, { enableOfflineQueue: false });
      if (c.status !== 'ready') await new Promise((resolve) => c.once('ready', resolve));
      const watcher = make(prefix, {}, c);
      await makeTracker(watcher).init();
      const heard: StoreChange[] = [];
      const stop = watcher.watch!((change) => heard.push(change));
      try {
        await expect.poll(() => heard).toEqual([{}]);
        await makeTracker(make(prefix)).track(k(1));
        await expect.poll(() => heard).toEqual([{}, { status: 'pending' }]);
      } finally {
        stop();
      }
    });

    it('with notifications off there is no watch and nothing is published', async () => {
      const store = make(`quiet_${run}`, { notifications: false });
      expect(store.watch).toBeUndefined();
      const sub = client().duplicate();
      clients.push(sub);
      const messages: string[] = [];
      sub.on('message', (_c: string, m: string) => messages.push(m));
      await sub.subscribe(`{quiet_${run}}:wake`);
      const tracker = makeTracker(store);
      await tracker.track(k(1));
      // a loud store publishing on the same channel shows that the subscription works
      await makeTracker(make(`quiet_${run}`)).track(k(2));
      await expect.poll(() => messages.length).toBeGreaterThan(0);
      expect(messages).toHaveLength(1);
    });
  });
});

/**
 * Wake-ups across processes: the worker child polls only every 30 s, and each wait below has a
 * budget of 20 s from the moment the work was made claimable, so only a wake-up explains an item
 * handled within it (the budget says nothing about speed).
 */
describe.skipIf(!url)('RedisStore wake-ups across processes', () => {
  if (!url) return;
  const start = (prefix: string) => startWakeChild('redis', url, prefix, 30_000);
  const subscribers = async (channel: string) => ((await main!.call('PUBSUB', 'NUMSUB', channel)) as [string, number])[1];

  it('a worker in another process, polling every 30 s, picks up items tracked here at once, also after its subscriber connection was killed', async () => {
    const prefix = `wake_proc_${run}`;
    const tracker = raceTracker(make(prefix));
    await tracker.init();
    const worker = start(prefix);
    try {
      await until('the worker child to go idle', () => worker.lines.includes('idle'), 60_000);
      await until('the child to subscribe', async () => (await subscribers(`{${prefix}}:wake`)) === 1);
      await tracker.track({ n: 1 });
      await until('item 1 done by the other process', async () => (await tracker.get({ n: 1 }))?.status === 'done');
      await tracker.track({ n: 2 }, {}, { delayMs: 300 });
      await until('the scheduled item done by the other process', async () => (await tracker.get({ n: 2 }))?.status === 'done');
      const due = (await tracker.get({ n: 2 }))!;
      expect(due.claimedAt!.getTime()).toBeGreaterThanOrEqual(due.createdAt.getTime() + 300);
      // the subscriber reconnects and subscribes again by itself
      expect(Number(await main!.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBeGreaterThan(0);
      await until('the child to subscribe again', async () => (await subscribers(`{${prefix}}:wake`)) === 1);
      await tracker.track({ n: 3 });
      await until('item 3 done by the other process', async () => (await tracker.get({ n: 3 }))?.status === 'done');
    } finally {
      expect(await worker.stop()).toBe(0);
    }
    expect(worker.lines.filter((l) => l.startsWith('started'))).toEqual(['started 1', 'started 2', 'started 3']);
    expect(worker.lines).toContain('stopped');
  }, 120_000);
});

describe('RedisStore wake-ups: the subscriber', () => {
  it('after a reconnection tells listeners to look only once the subscription holds again', async () => {
    const handlers = new Map<string, (...args: unknown[]) => void>();
    const pending: Array<() => void> = [];
    const connection: RedisSubscriberConnection = {
      // each SUBSCRIBE answers when the test says so
      subscribe: () => new Promise((resolve) => pending.push(() => resolve(1))),
      on: (event, listener) => handlers.set(event, listener),
      quit: async () => 'OK',
      disconnect: () => {},
    };
    const subscriber = new Subscriber(() => connection, 'wake');
    const heard: StoreChange[] = [];
    const stop = subscriber.listen((change) => heard.push(change));
    pending.shift()!();
    await until('the first look', () => heard.length === 1);
    // the connection drops and comes back: ioredis says 'ready' before its own SUBSCRIBE is sent
    handlers.get('ready')!();
    await new Promise((resolve) => setImmediate(resolve));
    expect(heard).toHaveLength(1);
    expect(pending).toHaveLength(1);
    pending.shift()!();
    await until('the look after the reconnection', () => heard.length === 2);
    expect(heard).toEqual([{}, {}]);
    stop();
  });
});

describe('RedisStore durability check', () => {
  if (!url || !binary) {
    skipLoudly('RedisStore durability check', 'needs the system redis-server to start servers with other persistence settings');
    return;
  }
  const server = async (flags: string[]) => {
    const s = await startRedisServer(binary, flags);
    servers.push(s);
    return client(s.url);
  };
  const init = (store: Store) => makeTracker(store).init();

  it('refuses `appendonly no`, naming the setting, unless durability is relaxed', async () => {
    const c = await server(['--appendonly', 'no']);
    const error = await init(make(`dur_${run}`, {}, c)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ option: 'durability' });
    expect((error as Error).message).toMatch(/`appendonly no`.*`durability: 'relaxed'`/);
    await init(make(`dur_${run}`, { durability: 'relaxed' }, c));
  });

  it('refuses `appendfsync everysec`, naming the setting', async () => {
    const c = await server(['--appendonly', 'yes', '--appendfsync', 'everysec']);
    const error = await init(make(`dur_${run}`, {}, c)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/`appendfsync everysec`/);
    const tracker = makeTracker(make(`dur_${run}`, { durability: 'relaxed' }, c));
    expect((await tracker.track(k(1))).created).toBe(true);
  });

  it('refuses a server whose CONFIG command is disabled, saying it cannot check', async () => {
    const c = await server(['--appendonly', 'yes', '--appendfsync', 'always', '--rename-command', 'CONFIG', '']);
    const error = await init(make(`dur_${run}`, {}, c)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/cannot read the server's `appendonly` setting/);
    await init(make(`dur_${run}`, { durability: 'relaxed' }, c));
  });

  // Redis skips the fsync of every write while a child saves a snapshot or rewrites the AOF
  it('refuses `no-appendfsync-on-rewrite yes`, naming the setting', async () => {
    const c = await server(['--appendonly', 'yes', '--appendfsync', 'always', '--no-appendfsync-on-rewrite', 'yes']);
    const error = await init(make(`dur_${run}`, {}, c)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ option: 'durability' });
    expect((error as Error).message).toMatch(/the server runs with `no-appendfsync-on-rewrite yes`: while it saves a snapshot or rewrites.*`CONFIG SET no-appendfsync-on-rewrite no`.*`durability: 'relaxed'`/);
    await init(make(`dur_${run}`, { durability: 'relaxed' }, c));
  });

  // at maxmemory it would delete items, key entries and the id counter by itself
  it('refuses a server that evicts keys (`maxmemory-policy` other than `noeviction`), naming the setting', async () => {
    const c = await server(['--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'allkeys-lru']);
    const error = await init(make(`dur_${run}`, {}, c)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ option: 'durability' });
    expect((error as Error).message).toMatch(/the server runs with `maxmemory-policy allkeys-lru`: at `maxmemory` it deletes keys by itself.*`CONFIG SET maxmemory-policy noeviction`/);
  });

  it('init refuses a store whose id counter is gone, saying so (not that the layout is an older one), and starts once it is set', async () => {
    const c = await server(['--appendonly', 'yes', '--appendfsync', 'always']);
    const prefix = `dur_${run}_lost`;
    const tracker = makeTracker(make(prefix, {}, c));
    await tracker.track(k(1));
    await tracker.track(k(2));
    await c.del(`{${prefix}}:seq`);
    const error = await makeTracker(make(prefix, {}, c)).init().catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/`\{dur_[\w]+_lost\}:ids` maps 2 key\(s\) but there is no id counter `\{dur_\w+_lost\}:seq` \(deleted, evicted, or lost in a partial restore\).*"A lost id counter"/);
    expect((error as Error).message).not.toMatch(/keyPrefix/);
    // the guide's repair
    const doc = readFileSync(join(dirname(new URL(import.meta.url).pathname), '../docs/stores/redis.md'), 'utf8');
    const script = /redis-cli EVAL "([^"]+)" 2/.exec(doc)![1]!;
    expect(await c.eval(script, 2, `{${prefix}}:ids`, `{${prefix}}:seq`)).toBe(2);
    const again = makeTracker(make(prefix, {}, c));
    expect((await again.track(k(3))).created).toBe(true);
    expect((await again.get(k(1)))?.key).toEqual(k(1));
  });

  it('an insert never writes over an item when the id counter went back (keys evicted, part of the data restored)', async () => {
    const c = await server(['--appendonly', 'yes', '--appendfsync', 'always']);
    const store = make(`dur_${run}_seq`, {}, c);
    const tracker = makeTracker(store);
    await tracker.track(k(1));
    await c.set(`{dur_${run}_seq}:seq`, '0');
    await expect(tracker.track(k(2))).rejects.toThrow(/from the id counter .* is held by another item: the counter went back.*nothing was written/);
    expect((await tracker.get(k(1)))?.key).toEqual(k(1));
  });

  // Redis checks maxmemory in a script only at its first write: an earlier version deleted the
  // records of earlier calls first, which let every track after a claim past a full server
  it('at `maxmemory` under `noeviction` a track is refused, also by a store whose claims left records to delete', async () => {
    const c = await server(['--appendonly', 'yes', '--appendfsync', 'always', '--maxmemory-policy', 'noeviction']);
    const tracker = makeTracker(make(`dur_${run}_oom`, {}, c));
    await tracker.track(k(100_000));
    await tracker.cancel(k(100_000));
    const used = async () => Number(/used_memory:(\d+)/.exec(await c.info('memory'))![1]);
    const limit = (await used()) + 2_000_000;
    await c.config('SET', 'maxmemory', String(limit));
    const later = { delayMs: 3_600_000 };
    let refused: unknown;
    let tracked = 0;
    for (let i = 0; i < 8_000 && refused === undefined; i++) {
      // nothing is claimable (every item waits an hour): each claim-next leaves a record
      expect(await tracker.claim('download', { owner: 'w' })).toBeNull();
      await tracker.track(k(i), { note: 'x'.repeat(500) }, later).then(() => tracked++, (error: unknown) => (refused = error));
    }
    expect(refused, `${tracked} tracks were accepted past maxmemory ${limit} (used ${await used()})`).toBeInstanceOf(StoreError);
    expect((refused as Error).message).toMatch(/OOM command not allowed when used memory > 'maxmemory'/);
    expect(tracked).toBeGreaterThan(100);
    // a change whose first step deletes a field (a retry clears finished_at) is refused too; the
    // limit goes far below what is used, as memory moves by a little either way between calls
    await c.config('SET', 'maxmemory', '1');
    await expect(tracker.retry(k(100_000))).rejects.toThrow(/OOM command not allowed/);
    expect((await tracker.get(k(100_000)))?.status).toBe('failed');
    // reads still run on a full server
    expect((await tracker.stats()).total).toBe(tracked + 1);
    await c.config('SET', 'maxmemory', '0');
  });

  it('accepts `appendonly yes` with `appendfsync always`', async () => {
    const c = await server(['--appendonly', 'yes', '--appendfsync', 'always']);
    await init(make(`dur_${run}`, {}, c));
  });
});

describe('RedisStore with `replicas`: each write waits for replicas', () => {
  if (!url || !binary) {
    skipLoudly('RedisStore with `replicas`: each write waits for replicas', 'needs the system redis-server to start a primary and a replica');
    return;
  }
  let primary: Redis;
  let replica: Redis;

  // a primary with AOF (fsynced every second) and a replica of it, in sync
  beforeAll(async () => {
    const p = await startRedisServer(binary, ['--appendonly', 'yes', '--appendfsync', 'everysec']);
    servers.push(p);
    const r = await startRedisServer(binary, ['--appendonly', 'no', '--replicaof', '127.0.0.1', String(p.port)]);
    servers.push(r);
    primary = client(p.url);
    replica = client(r.url);
    // the replica has done its first sync once the primary lists it online
    while (!/slave0:.*state=online/.test(await primary.info('replication'))) await new Promise((r) => setTimeout(r, 100));
  }, 60_000);

  it('init checks for online replicas instead of `appendfsync`; a claim is on the replica when it returns', async () => {
    const store = make(`replicated_${run}`, { replicas: { count: 1 } }, primary);
    const tracker = makeTracker(store);
    await tracker.track(k(1));
    const lease = (await tracker.claim('download', { owner: 'w' }))!;
    const [item] = await store.find({ key: k(1) });
    expect(await replica.hmget(`{replicated_${run}}:i:${String(item!.ref)}`, 's', 'f', 'o')).toEqual(['downloading', String(lease.fence), 'w']);
  });

  it('still one round trip per single-item operation: the script and its WAIT go in one pipeline', async () => {
    let trips = 0;
    const via: RedisClient = {
      evalsha: (...args) => (trips++, primary.evalsha(...args)),
      eval: (...args) => (trips++, primary.eval(...args)),
      script: (...args) => (trips++, primary.script(...args)),
      config: (...args) => primary.config(...args),
      info: (section) => primary.info(section),
      duplicate: () => primary.duplicate(),
      pipeline: () => {
        const pipeline = primary.pipeline();
        const wrapped: RedisPipeline = {
          evalsha: (...args) => (pipeline.evalsha(...args), wrapped),
          eval: (...args) => (pipeline.eval(...args), wrapped),
          wait: (n, timeout) => (pipeline.wait(n, timeout), wrapped),
          exec: () => (trips++, pipeline.exec()),
        };
        return wrapped;
      },
    };
    await expectOneRoundTripEach(make(`replicated_trips_${run}`, { replicas: { count: 1 } }, via), () => trips);
  });

  it('refuses at init more replicas than are online, naming the option', async () => {
    const error = await makeTracker(make(`replicated_${run}_2`, { replicas: { count: 2 } }, primary)).init().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({ option: 'replicas' });
    expect((error as Error).message).toMatch(/1 replica online/);
  });

  it('a write that too few replicas confirm in time fails as a transient StoreError', async () => {
    const tracker = makeTracker(make(`replicated_${run}_3`, { replicas: { count: 2, timeoutMs: 50 }, durability: 'relaxed' }, primary));
    const error = await tracker.track(k(1)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect(error).toMatchObject({ transient: true, operation: 'track' });
    expect((error as Error).message).toMatch(/WAIT timed out: 1 of 2 replicas/);
  });

  // a replica copies whatever its primary holds: a primary without AOF that restarts before a
  // failover comes back empty (or with an older snapshot), and its replicas copy that
  it('refuses at init a primary without `appendonly yes`, naming the setting', async () => {
    await primary.config('SET', 'appendonly', 'no');
    try {
      const error = await makeTracker(make(`replicated_${run}_aof`, { replicas: { count: 1 } }, primary)).init().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({ option: 'durability' });
      expect((error as Error).message).toMatch(/the server runs with `appendonly no`: if it restarts before a failover.*Set `appendonly yes` on the primary.*`durability: 'relaxed'`/);
      await makeTracker(make(`replicated_${run}_aof`, { replicas: { count: 1 }, durability: 'relaxed' }, primary)).init();
    } finally {
      await primary.config('SET', 'appendonly', 'yes');
    }
  });

  it('refuses at init a primary that evicts keys, reading `INFO memory`', async () => {
    await primary.config('SET', 'maxmemory-policy', 'volatile-lru');
    try {
      const error = await makeTracker(make(`replicated_${run}_evict`, { replicas: { count: 1 } }, primary)).init().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/runs with `maxmemory-policy volatile-lru`/);
    } finally {
      await primary.config('SET', 'maxmemory-policy', 'noeviction');
    }
  });

  it('validates the option', () => {
    expect(() => make('x', { replicas: { count: 0 } }, primary)).toThrow(/replicas.count/);
    expect(() => make('x', { replicas: { count: 1, timeoutMs: -1 } }, primary)).toThrow(/replicas.timeoutMs/);
  });
});

/** `redis-cli`, which creates the cluster below (it comes with redis-server). */
const cli = binary ? join(dirname(binary), 'redis-cli') : '';

describe('RedisStore on a Redis Cluster of 3 primaries, through ioredis Cluster', () => {
  if (!url || !binary || !existsSync(cli)) {
    skipLoudly('RedisStore on a Redis Cluster of 3 primaries, through ioredis Cluster', 'needs the system redis-server and redis-cli to start a cluster');
    return;
  }
  let nodes: RedisServer[] = [];
  const clusters: Cluster[] = [];
  const cluster = () => {
    const c = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
    clusters.push(c);
    return c;
  };

  beforeAll(async () => {
    nodes = await Promise.all([1, 2, 3].map(() => startRedisServer(binary, ['--cluster-enabled', 'yes', '--appendonly', 'yes', '--appendfsync', 'always'])));
    servers.push(...nodes);
    await promisify(execFile)(cli, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    for (const node of nodes) {
      const c = client(node.url);
      while (!/cluster_state:ok/.test(String(await c.call('CLUSTER', 'INFO')))) await new Promise((r) => setTimeout(r, 100));
    }
  }, 60_000);
  afterAll(async () => {
    await Promise.all(clusters.map((c) => c.quit().catch(() => c.disconnect())));
  });

  it('stores on slots of different primaries each run their whole life cycle, scripts loaded again on whichever node lacks them', async () => {
    const c = cluster();
    // prefixes whose hash tags land on each of the three primaries
    const owners = new Map<string, string>();
    for (let i = 0; owners.size < 3 && i < 100; i++) {
      const prefix = `cluster_${run}_${i}`;
      const slot = Number(await c.call('CLUSTER', 'KEYSLOT', `{${prefix}}:ids`));
      const node = ((await c.call('CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>).find(([from, to]) => slot >= from && slot <= to)![2][1];
      if (![...owners.values()].includes(String(node))) owners.set(prefix, String(node));
    }
    expect(owners.size).toBe(3);
    for (const prefix of owners.keys()) {
      const store = new RedisStore({ client: c, prefix });
      const tracker = makeTracker(store);
      for (let i = 0; i < 5; i++) await tracker.track(k(i));
      const [first, ...rest] = await tracker.claimBatch('download', { owner: 'w', limit: 3 });
      await tracker.complete(first!);
      expect((await tracker.completeBatch(rest)).every((r) => r.ok)).toBe(true);
      const lease = (await tracker.claim('download', { owner: 'w', key: k(3) }))!;
      await tracker.fail(lease, new Error('x'));
      expect((await tracker.stats()).byStatus).toMatchObject({ downloaded: 3, pending: 2 });
      expect(await tracker.find({ status: 'downloaded' })).toHaveLength(3);
    }
  });

  it('init checks the persistence of every primary, naming the one that would lose claims', async () => {
    // a keyless CONFIG GET reaches one node of the client's choosing: with one primary of three
    // misconfigured, only a check of every primary refuses every time
    const weak = client(nodes[2]!.url);
    await weak.config('SET', 'appendfsync', 'everysec');
    try {
      for (let i = 0; i < 3; i++) {
        const error = await makeTracker(new RedisStore({ client: cluster(), prefix: `cluster_durable_${run}_${i}` }))
          .init()
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as Error).message).toContain(`the primary 127.0.0.1:${nodes[2]!.port} runs with \`appendfsync everysec\``);
      }
      const replicated = await makeTracker(new RedisStore({ client: cluster(), prefix: `cluster_replicas_${run}`, replicas: { count: 1, timeoutMs: 100 } }))
        .init()
        .catch((e: unknown) => e);
      expect((replicated as Error).message).toMatch(/replicas\.count` is 1, but the primary 127\.0\.0\.1:\d+ is a master with 0 replicas online/);
    } finally {
      await weak.config('SET', 'appendfsync', 'always');
    }
    await makeTracker(new RedisStore({ client: cluster(), prefix: `cluster_durable_${run}_ok` })).init();
  });

  it('a Cluster client with a keyPrefix keeps every key of the store under it', async () => {
    const keyPrefix = `cluster_tenant_${run}:`;
    const c = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })), { keyPrefix });
    clusters.push(c);
    const prefix = `cluster_key_prefix_${run}`;
    const tracker = makeTracker(new RedisStore({ client: c, prefix }));
    for (let i = 0; i < 3; i++) await tracker.track(k(i));
    await tracker.complete((await tracker.claim('download', { owner: 'w' }))!);
    expect((await tracker.stats()).byStatus).toMatchObject({ pending: 2, downloaded: 1 });
    const keys = (await Promise.all(nodes.map((n) => client(n.url).keys(`*${prefix}*`)))).flat();
    expect(keys.length).toBeGreaterThan(6);
    for (const key of keys) expect(key.startsWith(`${keyPrefix}{${prefix}}:`), key).toBe(true);
  });

  it('wakes a watcher on another Cluster connection (pub/sub is broadcast to every node)', async () => {
    const prefix = `cluster_wake_${run}`;
    const watcher = new RedisStore({ client: cluster(), prefix });
    await makeTracker(watcher).init();
    const heard: StoreChange[] = [];
    const stop = watcher.watch!((change) => heard.push(change));
    try {
      // the first message after subscribing says "look"; then a track elsewhere names its status
      while (heard.length === 0) await new Promise((r) => setTimeout(r, 20));
      await makeTracker(new RedisStore({ client: cluster(), prefix })).track(k(1));
      while (!heard.some((c) => c.status === 'pending')) await new Promise((r) => setTimeout(r, 20));
    } finally {
      stop();
    }
  });
});

describe('RedisStore: location', () => {
  it('names a standalone client\'s server (socket or host), db and prefix; none for a Cluster or Sentinel client', () => {
    const clients = [
      new Redis({ lazyConnect: true, path: '/tmp/one.sock' }),
      new Redis({ lazyConnect: true, path: '/tmp/two.sock' }),
      new Redis({ lazyConnect: true, host: '10.0.0.1', port: 6380, db: 2 }),
      new Redis({ lazyConnect: true, sentinels: [{ host: '10.0.0.2', port: 26379 }], name: 'primary' }),
    ];
    const cluster = new Cluster([{ host: '10.0.0.3', port: 7000 }], { lazyConnect: true });
    try {
      const at = (client: Redis | Cluster, prefix = 'jobs') => new RedisStore({ client: client as unknown as RedisClient, prefix, notifications: false }).location;
      expect(at(clients[0]!)).toBe('redis://unix:/tmp/one.sock/0#{jobs}:');
      expect(at(clients[1]!)).not.toBe(at(clients[0]!));
      expect(at(clients[2]!)).toBe('redis://10.0.0.1:6380/2#{jobs}:');
      expect(at(clients[2]!, 'other')).not.toBe(at(clients[2]!));
      expect(at(clients[3]!)).toBeUndefined();
      expect(at(cluster)).toBeUndefined();
    } finally {
      for (const c of [...clients, cluster]) c.disconnect();
    }
  });
});
