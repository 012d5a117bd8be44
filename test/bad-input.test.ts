import { describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ConfigError, exponentialBackoff, StoreError, Tracker, ValidationError, type Store } from '../src/index.js';
import { CollectionDouble } from './support/mongo-double.js';
import { MemoryStore } from '../src/stores/memory.js';
import { MongoStore } from '../src/stores/mongodb.js';
import { PostgresStore } from '../src/stores/postgres.js';
import { SqliteStore } from '../src/stores/sqlite.js';
import { countingStore } from '../src/testing/counting.js';
import { boundedJson } from '../src/transitions.js';

const base = {
  statuses: ['queued', 'running', 'done', 'failed'],
  initial: 'queued',
  key: z.object({ id: z.string() }),
  data: z.object({ note: z.string().optional() }),
  stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } },
} as const;

const make = (overrides: Record<string, unknown> = {}, store: Store = new MemoryStore()) =>
  new Tracker({ ...base, store, ...overrides } as never) as unknown as Tracker<'queued' | 'running' | 'done' | 'failed', typeof base.key, typeof base.data, typeof base.stages>;

describe('a fail with a retry option that is no boolean is refused, and the lease stays held', () => {
  it('`retry: 0` or `\'no\'` is not taken as "retry"', async () => {
    const tracker = make();
    await tracker.track({ id: 'a' });
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    await expect(tracker.fail(lease, new Error('x'), { retry: 0 } as never)).rejects.toThrow(/`fail.retry`: expected `true` or `false` \(or leave it out\), got `0` \(number\); nothing was written/);
    await expect(tracker.failBatch([{ lease, error: new Error('x'), retry: 'no' } as never])).rejects.toThrow(/`failBatch.failures\[0\].retry`: expected `true` or `false`.*got `"no"` \(string\)/);
    expect((await tracker.get({ id: 'a' }))!).toMatchObject({ status: 'running', attempts: 1 });
    expect((await tracker.fail(lease, new Error('x'), { retry: false })).status).toBe('failed');
  });
});

// a backoff that passed the definition's probe and failed later (it reads a setting, say) made
// fail() throw, leaving the lease held; every reap then threw on that item before writing
// anything, so no expired lease of any stage was reaped again
describe('a backoff that fails at run time parks the item, saying why, and the reap goes on', () => {
  it('fail() and reapStale() park the item whose backoff fails and retry the others', async () => {
    let broken = false;
    let now = Date.now();
    const tracker = make(
      { lease: { ttlMs: 1_000 }, retry: { maxAttempts: 5, backoff: (n: number) => (broken && n === 2 ? (undefined as never) : 10) } },
      new MemoryStore({ clock: () => now }),
    );
    for (const id of ['a', 'b', 'c']) await tracker.track({ id });
    const failed: Array<{ key: unknown; willRetry: boolean; error: string }> = [];
    tracker.on('failed', (e) => void failed.push({ key: e.key, willRetry: e.willRetry, error: e.error }));
    // a and b on their second attempt, c on its first
    for (const id of ['a', 'b']) {
      const lease = (await tracker.claim('run', { owner: 'w', key: { id } }))!;
      await tracker.fail(lease, new Error('flaky'));
    }
    now += 1_000;
    broken = true;
    const leases = await Promise.all(['a', 'b', 'c'].map((id) => tracker.claim('run', { owner: 'w', key: { id } })));
    expect(leases.map((l) => l?.attempt)).toEqual([2, 2, 1]);
    const stored = await tracker.fail(leases[0]!, new Error('flaky again'));
    expect(stored.status).toBe('failed');
    expect(stored.lastError).toMatch(/^Error: flaky again \(not retried: ConfigError: .*`retry.backoff\(2\)`: returned `undefined`.*; a backoff must return a delay in milliseconds.*Fix the backoff, then retry the item.\)$/);
    expect(failed.at(-1)).toMatchObject({ key: { id: 'a' }, willRetry: false });
    // b and c are held by a worker that died: the reap parks b and retries c
    now += 5_000;
    expect(await tracker.reapStale()).toEqual({ retried: 1, failed: 1 });
    expect(await tracker.get({ id: 'b' })).toMatchObject({ status: 'failed', lastError: expect.stringMatching(/^lease expired \(not retried: .*`retry.backoff\(2\)`/) });
    expect(await tracker.get({ id: 'c' })).toMatchObject({ status: 'queued', attempts: 1, lastError: 'lease expired' });
  });
});

describe('definitions given back as the tracker shows them are accepted', () => {
  it('stages from `tracker.definition` (they carry their `name`) and `data: null` (no schema)', async () => {
    const first = make();
    const again = make({ stages: Object.fromEntries(first.definition.stages.map((s) => [s.name, s])), data: null });
    expect(again.definition.stages.map((s) => s.name)).toEqual(['run']);
    expect((await again.track({ id: 'a' }, { any: 'json' } as never)).item.data).toEqual({ any: 'json' });
  });
  it('-0 in a key is the key 0 on every path, as the SQL stores read it back', async () => {
    const tracker = make({ key: z.object({ n: z.number() }) });
    const tracked = await tracker.track({ n: -0 } as never);
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    const n = (key: unknown) => (key as { n: number }).n;
    expect([n(tracked.item.key), n(lease.key)].map((v) => Object.is(v, 0))).toEqual([true, true]);
    expect((await tracker.track({ n: 0 } as never)).created).toBe(false);
  });
});

describe('bad definitions are refused at construction, naming the option', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['negative ttl', { lease: { ttlMs: -1 } }, /`lease.ttlMs`.*got `-1`/],
    ['zero ttl', { lease: { ttlMs: 0 } }, /`lease.ttlMs`/],
    ['NaN ttl', { lease: { ttlMs: Number.NaN } }, /`lease.ttlMs`.*NaN/],
    ['Infinity ttl', { lease: { ttlMs: Number.POSITIVE_INFINITY } }, /`lease.ttlMs`.*Infinity/],
    // its deadline would be no valid Date: the memory store reaped the lease at once, SQLite read back Invalid Date
    ['ttl past a year', { lease: { ttlMs: Number.MAX_SAFE_INTEGER } }, /`lease.ttlMs`: expected an integer > 0 and <= 31536000000 \(a year at most: a lease that must practically never expire is a long one/],
    ['maxAttempts 0', { retry: { maxAttempts: 0 } }, /`retry.maxAttempts`/],
    ['maxAttempts NaN', { retry: { maxAttempts: Number.NaN } }, /`retry.maxAttempts`/],
    ['a backoff that returns NaN', { retry: { backoff: () => Number.NaN } }, /`retry.backoff\(1\)`/],
    ['a backoff that turns NaN at a later attempt', { retry: { maxAttempts: 4, backoff: (n: number) => (n < 3 ? 10 : Number.NaN) } }, /`retry.backoff\(3\)`.*NaN/],
    ['key fields that differ only in case', { key: z.object({ id: z.string(), ID: z.string() }) }, /`key.ID`.*letter case/],
    ['a key field name too long for a prefixed column', { key: z.object({ ['k'.repeat(60)]: z.string() }) }, /at most 59 characters/],
    ['a backoff that is not a function', { retry: { backoff: 1000 } }, /`retry.backoff`/],
    ['an undeclared initial status', { initial: 'new' }, /`initial`.*`new` is not one of the declared statuses/],
    ['a stage with an undeclared status', { stages: { run: { from: 'queued', active: 'busy', done: 'done', failed: 'failed' } } }, /`stages.run.active`/],
    ['a key field named with `$`', { key: z.object({ $where: z.string() }) }, /`key.\$where`.*no `\$` or `.`/],
    ['a key field named with `.`', { key: z.object({ 'a.b': z.string() }) }, /`key.a.b`/],
    ['a non-scalar key field', { key: z.object({ id: z.object({ x: z.string() }) }) }, /`key.id`.*required scalars/],
    ['an optional key field', { key: z.object({ id: z.string().optional() }) }, /`key.id`/],
    ['no store', { store: undefined }, /`store`/],
    ['a key field named `__proto__`', { key: z.object({ ['__proto__']: z.string() }) }, /`key.__proto__`.*not `__proto__`/],
    ['a status named `__proto__`', { statuses: ['queued', 'running', 'done', 'failed', '__proto__'] }, /`statuses`.*cannot be a name/],
    ['a status holding a lone surrogate', { statuses: ['queued', 'running', 'done', 'failed', 'bad\uD800'] }, /`statuses`.*well-formed/],
    // PostgreSQL's wake-up notification carries the status, in at most 8,000 bytes: every track failed
    ['a status name of 201 characters', { statuses: ['queued', 'running', 'done', 'failed', 'x'.repeat(201)] }, /`statuses`: a name of 201 characters is too long: names are at most 200 characters/],
    ['a stage name of 201 characters', { stages: { ['s'.repeat(201)]: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } } }, /a name of 201 characters is too long/],
    ['a key literal of mixed types', { key: z.object({ id: z.literal(['a', 1]) }) }, /`key.id`.*all be of one type/],
    ['an initial status no stage claims from', { initial: 'done' }, /`initial`.*`done` is a status no stage claims from or fails into/],
    // the one stage claims from its own active status: the clash is named, not the initial status
    ['a stage that claims from its own active status', { stages: { run: { from: 'running', active: 'running', done: 'done', failed: 'failed' } } }, /`stages.run.active`.*`running` is also used as an initial, from/],
    ['a stage whose failed status it also claims from', { stages: { run: { from: ['queued', 'failed'], active: 'running', done: 'done', failed: 'failed' } } }, /`stages.run.failed`.*claims from/],
    // a misspelt option would be ignored and its default used without a word
    ['a misspelt lease option', { lease: { ttl: 30_000 } }, /`lease.ttl`: no such option; did you mean `lease.ttlMs`\? \(`lease` takes ttlMs\)/],
    ['a misspelt retry option', { retry: { attempts: 3 } }, /`retry.attempts`: no such option; did you mean `retry.maxAttempts`\?/],
    ['a misspelt top-level option', { maxDataByte: 10 }, /`maxDataByte`: no such option; did you mean `maxDataBytes`\? \(the options are store, statuses/],
    ['a misspelt stage field', { stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed', fail: 'failed' } } }, /`stages.run.fail`: no such option; did you mean `stages.run.failed`\?/],
    ['an unknown option with nothing near it', { timeoutMs: 10 }, /`timeoutMs`: no such option \(the options are/],
    ['a lease given as a number', { lease: 60_000 }, /`lease`: expected an object of options \(ttlMs\), got `60000` \(number\)/],
    ['retry given as a number', { retry: 3 }, /`retry`: expected an object of options \(maxAttempts, backoff\), got `3`/],
    ['a stage whose name differs from its key', { stages: { run: { name: 'walk', from: 'queued', active: 'running', done: 'done', failed: 'failed' } } }, /`stages.run.name`: `walk` differs from the stage's key `run`/],
    ['data that is no zod schema', { data: { note: 'text' } }, /`data`: expected a zod schema, such as `z.object\(\{ url: z.string\(\) \}\)`/],
    ['a backoff that throws', { retry: { maxAttempts: 9, backoff: (n: number) => { if (n === 7) throw new Error('boom'); return 10; } } }, /`retry.backoff\(7\)`: threw "Error: boom"; a backoff must return a delay/],
  ];
  for (const [what, overrides, message] of cases) {
    it(what, () => {
      expect(() => make(overrides)).toThrow(ConfigError);
      expect(() => make(overrides)).toThrow(message);
    });
  }
  it('an initial status that is a stage\'s failed status is a gate: items wait until retried', async () => {
    const tracker = make({ statuses: ['queued', 'running', 'done', 'failed', 'held'], initial: 'held', stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'held' } } });
    await tracker.track({ id: 'a' });
    expect(await tracker.claim('run', { owner: 'w' })).toBeNull();
    expect((await tracker.retry({ id: 'a' }, { stage: 'run' }))!.status).toBe('queued');
    expect((await tracker.claim('run', { owner: 'w' }))!.key).toEqual({ id: 'a' });
    // the one stage failing into the gate opens it without being named (the dashboard's retry)
    await tracker.track({ id: 'b' });
    expect((await tracker.retry({ id: 'b' }))!.status).toBe('queued');
    for (const id of ['c', 'd']) await tracker.track({ id });
    expect(await tracker.retryAll()).toBe(2);
    expect((await tracker.stats()).byStatus).toMatchObject({ held: 0, queued: 3 });
  });
  it('a numeric TypeScript enum as a key field is a number column (its reverse mappings are not values)', async () => {
    enum Priority {
      Low,
      High,
    }
    const tracker = make({ key: z.object({ id: z.string(), priority: z.enum(Priority) }) }, new SqliteStore({ filename: ':memory:', table: 'items' }));
    const { item } = await tracker.track({ id: 'x', priority: Priority.High } as never);
    expect(item.key).toEqual({ id: 'x', priority: 1 });
    expect((await tracker.get({ id: 'x', priority: Priority.High } as never))?.key).toEqual({ id: 'x', priority: 1 });
  });
  it('a maxAttempts or concurrency past 2^53 (never sent to a store) is taken, as before limits were bounded', () => {
    for (const maxAttempts of [1e16, 2 ** 60, Number.MAX_VALUE]) expect(() => make({ retry: { maxAttempts, backoff: () => 10 } })).not.toThrow();
  });

  it('a huge maxAttempts ("retry for ever") is accepted at once, and its backoff still checked', () => {
    expect(make({ retry: { maxAttempts: Number.MAX_SAFE_INTEGER, backoff: () => 1_000 } }).definition).toBeDefined();
    expect(() => make({ retry: { maxAttempts: Number.MAX_SAFE_INTEGER, backoff: (n: number) => (n > 1e9 ? Number.NaN : 1) } })).toThrow(/`retry.backoff\(9007199254740991\)`/);
  });
  it('exponentialBackoff rejects nonsense', () => {
    expect(() => exponentialBackoff({ baseMs: -5, maxMs: 10 })).toThrow(/`backoff.baseMs`/);
    expect(() => exponentialBackoff({ baseMs: 10, maxMs: 5 })).toThrow(/`backoff.maxMs`/);
    expect(() => exponentialBackoff({ baseMs: 10, maxMs: Number.POSITIVE_INFINITY })).toThrow(/`backoff.maxMs`/);
    expect(() => exponentialBackoff({ baseMs: 10, maxMs: 100, factor: 0.5 })).toThrow(/`backoff.factor`/);
    expect(() => exponentialBackoff({ baseMs: 10, maxMs: 100, jitter: 'no' } as never)).toThrow(/`backoff.jitter`: expected `true` or `false`, got `"no"` \(string\)/);
    expect(() => exponentialBackoff({ baseMs: 10, maxMs: 100, jiter: true } as never)).toThrow(/`backoff.jiter`: no such option; did you mean `backoff.jitter`\?/);
  });
  it('exponentialBackoff from 0 ms stays 0 after a thousand attempts (0 * Infinity is no delay)', () => {
    const backoff = exponentialBackoff({ baseMs: 0, maxMs: 1_000 });
    expect([1, 1_025, 1_026, 5_000].map(backoff)).toEqual([0, 0, 0, 0]);
    expect(exponentialBackoff({ baseMs: 1, maxMs: 1_000 })(5_000)).toBe(1_000);
  });
});

describe('bad calls get a clear error and write nothing', () => {
  const fresh = async () => {
    const { store, calls } = countingStore(new MemoryStore());
    const tracker = make({}, store);
    await tracker.init();
    await tracker.track({ id: 'a' });
    calls.length = 0;
    return { tracker, calls };
  };

  it('oversize data', async () => {
    const { tracker, calls } = await fresh();
    const error = await tracker.track({ id: 'big' }, { note: 'x'.repeat(2_000_000) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(String(error)).toMatch(/`track` of item \{"id":"big"\}.*exceeds `maxDataBytes`.*Store large payloads elsewhere/);
    expect(calls).toEqual([]);
  });

  it('numbers and instants past what every store holds: a limit past 2^53, a date before 4714 BC, an age past 6,300 years', async () => {
    const { tracker, calls } = await fresh();
    // 1e21 is an integer to JavaScript, and "1e+21" no bigint to SQLite or PostgreSQL: every call failed
    await expect(tracker.find({ limit: 1e21 })).rejects.toThrow(/`find.limit`: expected an integer > 0 and <= 9007199254740991/);
    expect(() => tracker.work('run', async () => {}, { batchSize: 1e21 })).toThrow(/`work.batchSize`: expected an integer/);
    const early = new Date(-8.64e15);
    await expect(tracker.track({ id: 'b' }, {}, { notBefore: early })).rejects.toThrow(/`track.notBefore`: expected a Date no earlier than 4714-11-24 BC/);
    await expect(tracker.reschedule({ id: 'a' }, { notBefore: early })).rejects.toThrow(/`reschedule.notBefore`: expected a Date no earlier than 4714-11-24 BC/);
    await expect(tracker.purge({ status: 'done', finishedBefore: early })).rejects.toThrow(/`purge.finishedBefore`: expected a Date no earlier than 4714-11-24 BC/);
    await expect(tracker.purge({ status: 'done', olderThanMs: 2e14 + 1 })).rejects.toThrow(/`purge.olderThanMs`: expected an integer >= 0 and <= 200000000000000 \(about 6,300 years/);
    expect(calls).toEqual([]);
    // the ends themselves are taken
    expect((await tracker.track({ id: 'b' }, {}, { notBefore: new Date(-210_866_803_200_000) })).created).toBe(true);
    expect(await tracker.purge({ status: 'done', olderThanMs: 2e14 })).toEqual({ deleted: 0 });
  });

  it('an age is bounded by a constant, not by this process\'s clock (a host whose clock has not synced yet reads 1970)', async () => {
    const clock = vi.spyOn(Date, 'now').mockReturnValue(86_400_000);
    try {
      const tracker = make();
      expect(await tracker.purge({ status: 'done', olderThanMs: 7 * 86_400_000 })).toEqual({ deleted: 0 });
      await tracker.work('run', async () => {}, { retention: { status: 'done', olderThanMs: 7 * 86_400_000 } }).stop();
    } finally {
      clock.mockRestore();
    }
  });

  it('an unknown stage', async () => {
    const { tracker, calls } = await fresh();
    await expect(tracker.claim('upload' as never, { owner: 'w' })).rejects.toThrow(/`claim.stage`: `upload` is not a stage of this tracker \(run\)/);
    expect(calls).toEqual([]);
  });

  it('an empty or absurd owner', async () => {
    const { tracker, calls } = await fresh();
    await expect(tracker.claim('run', { owner: '' })).rejects.toThrow(/`claim.owner`/);
    await expect(tracker.claim('run', { owner: 'x'.repeat(500) })).rejects.toThrow(/`claim.owner`/);
    expect(calls).toEqual([]);
  });

  it('a lease that is not a lease', async () => {
    const { tracker, calls } = await fresh();
    const fake = { stage: 'run', key: { id: 'a' }, fence: 1, owner: 'w', attempt: 1 };
    await expect(tracker.complete(fake as never)).rejects.toThrow(/`complete.lease`: expected a Lease/);
    expect(calls).toEqual([]);
  });

  it('a data patch that breaks the schema leaves the lease held and the item unchanged', async () => {
    const { tracker } = await fresh();
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    await expect(tracker.complete(lease, { data: { note: 42 as never } })).rejects.toThrow(/`complete` of item \{"id":"a"\}: invalid data \(note:/);
    expect((await tracker.get({ id: 'a' }))!.status).toBe('running');
    expect((await tracker.complete(lease)).status).toBe('done');
  });
});

describe('table and schema names carrying SQL specials are refused, never pasted', () => {
  const pool = { query: async () => ({ rows: [] }) };
  for (const table of ['items; DROP TABLE users; --', 'a"b', 'items.x', 'x y', '', '1items', 'a'.repeat(64)]) {
    it(`PostgresStore table ${JSON.stringify(table)}`, () => {
      expect(() => new PostgresStore({ pool, table })).toThrow(/\[postgres\].*letters, digits/);
    });
    it(`SqliteStore table ${JSON.stringify(table)}`, () => {
      expect(() => new SqliteStore({ filename: ':memory:', table })).toThrow(/\[sqlite\].*letters, digits/);
    });
  }
  for (const name of ['items$where', '$cmd', 'system.users', '', 'a b', 'x'.repeat(200)]) {
    it(`MongoStore collection name ${JSON.stringify(name)}`, () => {
      const db = { collection: () => { throw new Error('must not be reached'); } };
      expect(() => new MongoStore({ db: db as never, collection: name })).toThrow(/\[mongodb\].*collection name/);
    });
  }
  it('MongoStore with a collection name but no db', () => {
    expect(() => new MongoStore({ collection: 'items' })).toThrow(/`db` is required/);
  });
  it('PostgresStore schema', () => {
    expect(() => new PostgresStore({ pool, table: 'ok', schema: 'public"; --' })).toThrow(/`schema`/);
  });
});

describe('zod 3 schemas get a clear error', () => {
  // the shape of a zod 3 schema: `_def` and no `_zod`
  const zod3 = (type: string) => ({ _def: { typeName: type }, parse: () => ({}), safeParse: () => ({ success: true }) });
  it('a zod 3 key schema', () => {
    expect(() => make({ key: zod3('ZodObject') })).toThrow(/`key`: leasehold needs zod 4 schemas/);
  });
  it('a zod 3 data schema', () => {
    expect(() => make({ data: zod3('ZodObject') })).toThrow(/`data`: leasehold needs zod 4 schemas: install zod 4 \(`npm install zod@\^4`/);
  });
  it('a zod 3 field inside a zod 4 key object', () => {
    expect(() => make({ key: z.object({ id: zod3('ZodString') as never }) })).toThrow(/`key.id`: leasehold needs zod 4/);
  });
});

describe('SqliteStore files', () => {
  it('creates the folder of a filename that does not exist yet', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'leasehold-bad-')), 'nested', 'deeper');
    const store = new SqliteStore({ filename: join(dir, 'items.sqlite'), table: 'items' });
    const tracker = make({}, store);
    await tracker.track({ id: 'a' });
    expect(existsSync(join(dir, 'items.sqlite'))).toBe(true);
    await store.close();
    rmSync(dirname(dirname(dir)), { recursive: true, force: true });
  });
  it('leaves the pragmas of a database the caller opened alone', async () => {
    const db = new Database(':memory:');
    db.pragma('journal_mode = MEMORY');
    db.pragma('busy_timeout = 123');
    await make({}, new SqliteStore({ database: db, table: 'items' })).track({ id: 'a' });
    expect(db.pragma('journal_mode', { simple: true })).toBe('memory');
    expect(db.pragma('busy_timeout', { simple: true })).toBe(123);
    db.close();
  });
  it('every store says the same thing when used before init', async () => {
    const pool = { query: async () => ({ rows: [] }) };
    const stores: Store[] = [new SqliteStore({ filename: ':memory:', table: 'items' }), new PostgresStore({ pool, table: 'items' }), new MongoStore({ collection: new CollectionDouble() as never })];
    for (const store of stores) {
      const error = await store.find({ status: [] }).catch((e: unknown) => e);
      expect(error, store.name).toBeInstanceOf(StoreError);
      expect(String(error)).toMatch(/not initialised; call `tracker.init\(\)` first/);
    }
  });
});

describe('keys and data that a database would change are refused, naming the field', () => {
  it('a key holding a lone surrogate (half an emoji) is refused before anything is written, on every store', async () => {
    for (const store of [new MemoryStore(), new SqliteStore({ filename: ':memory:', table: 'items' })]) {
      const tracker = make({}, store);
      const error = await tracker.track({ id: 'file-\uD83D' }).catch((e: unknown) => e);
      expect(error, store.name).toBeInstanceOf(ValidationError);
      expect(String(error)).toMatch(/`track` of item .*id: key text must be well-formed Unicode/);
      expect((await tracker.stats()).total).toBe(0);
      // a whole emoji is fine
      expect((await tracker.track({ id: 'file-\uD83D\uDE00' })).created).toBe(true);
    }
  });
  it('a key or data holding a NUL character, or data holding a lone surrogate, is refused (PostgreSQL cannot store them)', async () => {
    const tracker = make({ data: z.any() }) as unknown as Tracker<string, typeof base.key, z.ZodAny, typeof base.stages>;
    await expect(tracker.track({ id: 'a\0b' })).rejects.toThrow(/id: key text cannot hold a NUL character/);
    await expect(tracker.track({ id: 'a' }, { raw: 'PK\0\u0003' })).rejects.toThrow(/raw: text cannot hold a NUL character/);
    await expect(tracker.track({ id: 'a' }, { list: ['ok', 'half \uD800'] })).rejects.toThrow(/list\.1: text must be well-formed Unicode/);
    await expect(tracker.track({ id: 'a' }, { ['bad\0name']: 1 })).rejects.toThrow(/a field name's text cannot hold a NUL/);
    expect((await tracker.stats()).total).toBe(0);
    // and on a settle's data
    await tracker.track({ id: 'a' }, { raw: 'fine' });
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    await expect(tracker.complete(lease, { data: { raw: '\0' } })).rejects.toThrow(ValidationError);
    expect((await tracker.complete(lease, { data: { raw: 'still fine' } })).data).toEqual({ raw: 'still fine' });
  });
  it('an item an earlier version stored with a NUL (in data or key) still settles with a data patch and stays reachable', async () => {
    const store = new MemoryStore();
    const tracker = make({ data: z.any() }, store) as unknown as Tracker<string, typeof base.key, z.ZodAny, typeof base.stages>;
    await tracker.init();
    // written as a store kept it before text was checked (memory, SQLite, MongoDB and Redis did)
    await store.insert({ key: { id: 'old\0key' }, status: 'queued', data: { name: 'a\0b' } });
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    // the patch is checked, not the stored fields it merges over
    await expect(tracker.complete(lease, { data: { n: '\0' } })).rejects.toThrow(/n: text cannot hold a NUL/);
    expect((await tracker.complete(lease, { data: { n: 1 } })).data).toEqual({ name: 'a\0b', n: 1 });
    expect((await tracker.get({ id: 'old\0key' }))!.status).toBe('done');
    expect(await tracker.cancel({ id: 'old\0key' })).toBeNull();
  });
  it('data with a `__proto__` field, a `$date` look-alike beside an undefined field, or a hole is refused', async () => {
    const tracker = make({ data: z.any() }) as unknown as Tracker<string, typeof base.key, z.ZodAny, typeof base.stages>;
    await expect(tracker.track({ id: 'a' }, JSON.parse('{"__proto__":{"isAdmin":true},"ok":1}'))).rejects.toThrow(/__proto__: `__proto__` cannot be a field name/);
    await expect(tracker.track({ id: 'b' }, { when: { $date: 'next tuesday', extra: undefined } })).rejects.toThrow(/when: an object whose only field is `\$date` is reserved/);
    // a JSON-Schema-like `{ $ref, $id }` came back from MongoDB as a DBRef, and the item could not be read
    await expect(tracker.track({ id: 'b' }, { schema: { title: 'x', $id: 'urn:a', $ref: '#/defs/b' } })).rejects.toThrow(/schema: an object with `\$ref` and `\$id` fields is read back by MongoDB as a DBRef/);
    // eslint-disable-next-line no-sparse-arrays
    await expect(tracker.track({ id: 'c' }, { list: [1, , 3] })).rejects.toThrow(/list\.1: undefined/);
    expect((await tracker.stats()).total).toBe(0);
  });
  it('a key weighing more than 2,000 bytes is refused on track, on every store, saying what to do; one of 2,000 is taken', async () => {
    const twoFields = make({ key: z.object({ id: z.string(), n: z.number() }) }) as unknown as Tracker<string, z.ZodObject<{ id: z.ZodString; n: z.ZodNumber }>, typeof base.data, typeof base.stages>;
    for (const tracker of [make(), make({}, new SqliteStore({ filename: ':memory:', table: 'items' }))]) {
      // 'é' is two bytes of UTF-8: the weight is in bytes, not characters
      const error = await tracker.track({ id: 'é'.repeat(1_001) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect(String(error)).toMatch(/`track` of item .*the key weighs 2002 bytes .*a key may weigh at most 2000, so that every store can index it\. Key the item by a shorter id/);
      expect((await tracker.stats()).total).toBe(0);
      expect((await tracker.track({ id: 'é'.repeat(1_000) })).created).toBe(true);
      // a read of a long key looks it up (an item an earlier version stored stays reachable)
      expect(await tracker.get({ id: 'x'.repeat(5_000) })).toBeNull();
    }
    // every field counts; a number weighs 8
    await expect(twoFields.track({ id: 'x'.repeat(1_993), n: 1 })).rejects.toThrow(/weighs 2001 bytes/);
    expect((await twoFields.track({ id: 'x'.repeat(1_992), n: 1 })).created).toBe(true);
    // a key an earlier version tracked (no limit then) is tracked already: a poller's track answers so
    const store = new MemoryStore();
    const polled = make({}, store);
    await polled.init();
    await store.insert({ key: { id: 'h'.repeat(3_000) }, status: 'queued', data: {} });
    expect(await polled.track({ id: 'h'.repeat(3_000) })).toMatchObject({ created: false, item: { status: 'queued' } });
    await expect(polled.track({ id: 'g'.repeat(3_000) })).rejects.toThrow(/weighs 3000 bytes/);
    expect((await polled.stats()).total).toBe(1);
  });
  it('data nested deeper than 64 levels is refused naming where, also where the schema itself would run out of stack; what an earlier version stored deeper still settles', async () => {
    const nest = (levels: number): unknown => {
      let value: unknown = 1;
      for (let i = 0; i < levels; i++) value = i % 2 ? [value] : { a: value };
      return value;
    };
    const store = new MemoryStore();
    const tracker = make({ data: z.any() }, store) as unknown as Tracker<string, typeof base.key, z.ZodAny, typeof base.stages>;
    // 64 levels, the data object counted: taken
    expect((await tracker.track({ id: 'ok' }, { d: nest(63) })).created).toBe(true);
    const error = await tracker.track({ id: 'deep' }, { d: nest(64) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(String(error)).toMatch(/d\.0\.a\.0\.a[.\w]*: nested deeper than 64 levels .*flatten it, or store it as a string/);
    expect((error as ValidationError).issues.map((i) => i.path.length)).toEqual([64]);
    // a partner's document 10,000 levels deep: a ValidationError, not a stack overflow
    const deep = JSON.parse(`${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}`) as Record<string, unknown>;
    await expect(tracker.track({ id: 'deeper' }, deep)).rejects.toThrow(/nested deeper than 64 levels/);
    type Json = string | number | { [k: string]: Json };
    const json: z.ZodType<Json> = z.lazy(() => z.union([z.string(), z.number(), z.record(z.string(), json)]));
    const checked = make({ data: z.record(z.string(), json) }) as unknown as Tracker<string, typeof base.key, z.ZodAny, typeof base.stages>;
    const overflow = await checked.track({ id: 'deepest' }, deep).catch((e: unknown) => e);
    expect(overflow).toBeInstanceOf(ValidationError);
    expect(String(overflow)).toMatch(/nested too deeply for the data schema to check .*data may nest 64 levels/);
    expect((await tracker.stats()).total).toBe(1);
    // stored deeper by an earlier version: a patch of other fields still settles it, also one
    // that gives the stored field back unchanged (a handler returning `{ ...lease.item.data, n }`)
    await store.insert({ key: { id: 'old' }, status: 'queued', data: { d: nest(80) } });
    const lease = (await tracker.claim('run', { owner: 'w', key: { id: 'old' } }))!;
    await expect(tracker.complete(lease, { data: { e: nest(70) } })).rejects.toThrow(/e(\.\w+)+: nested deeper than 64 levels/);
    await expect(tracker.complete(lease, { data: { ...lease.item.data, d: nest(81) } })).rejects.toThrow(/nested deeper than 64 levels/);
    expect((await tracker.complete(lease, { data: { ...lease.item.data, n: 1 } })).data).toMatchObject({ n: 1 });
    // and a poller tracking it again with its (deep) data is answered `created: false`
    expect(await tracker.track({ id: 'old' }, { d: nest(80) })).toMatchObject({ created: false, item: { status: 'done' } });
    // a RangeError of the schema's own (a transform's `Invalid time value`) is not taken for depth
    const transformed = make({ data: z.object({ at: z.string().transform((s) => new Date(s).toISOString()) }) });
    await expect(transformed.track({ id: 'x' }, { at: 'not a time' } as never)).rejects.toThrow(/Invalid time value/);
  });
  it('a status named like an Object member is counted as itself', async () => {
    const tracker = make({ statuses: ['queued', 'running', 'done', 'failed', 'constructor'], stages: { run: { from: 'queued', active: 'running', done: ['done', 'constructor'], failed: 'failed' } } });
    await tracker.track({ id: 'a' });
    const stats = await tracker.stats();
    expect(stats.byStatus).toMatchObject({ queued: 1, constructor: 0, done: 0 });
    expect(stats.total).toBe(1);
  });
  it('a key refused on a read says what to fix, and not that nothing was written; on a write it says so', async () => {
    const tracker = make();
    const read = (await tracker.get({ id: 7 } as never).catch((e: unknown) => e)) as Error;
    expect(read.message).toMatch(/`get` of item \{"id":7\}: invalid key .*Fix the value to match the schema given to the Tracker\.$/);
    const write = (await tracker.track({ id: 7 } as never).catch((e: unknown) => e)) as Error;
    expect(write.message).toMatch(/`track` of item .*; nothing was written\.$/);
  });
  it('fail() with a thrown value that cannot be made text records its kind', async () => {
    const tracker = make();
    await tracker.track({ id: 'a' });
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    await tracker.fail(lease, Object.create(null), { retry: false });
    expect((await tracker.get({ id: 'a' }))!.lastError).toBe('[object Object]');
  });
  it('a thrown proxy whose every trap throws fails its attempt (directly and from a handler), and does not leave the item held', async () => {
    const hostile = () =>
      new Proxy({}, { get: () => { throw new Error('trap get'); }, getPrototypeOf: () => { throw new Error('trap proto'); }, has: () => { throw new Error('trap has'); } });
    const tracker = make();
    await tracker.track({ id: 'a' });
    await tracker.fail((await tracker.claim('run', { owner: 'w' }))!, hostile(), { retry: false });
    expect(await tracker.get({ id: 'a' })).toMatchObject({ status: 'failed', lastError: '[a thrown value that cannot be read]' });
    await tracker.track({ id: 'b' });
    const failed = new Promise((resolve) => tracker.on('failed', resolve));
    const worker = tracker.work('run', async () => {
      throw hostile();
    });
    await failed;
    await worker.stop();
    expect(await tracker.get({ id: 'b' })).toMatchObject({ status: 'queued', attempts: 1, lastError: '[a thrown value that cannot be read]' });
  });
  it('fail() with a thrown object that is no Error records its message, or its JSON, not [object Object]', async () => {
    const tracker = make();
    const failWith = async (id: string, thrown: unknown) => {
      await tracker.track({ id });
      await tracker.fail((await tracker.claim('run', { owner: 'w', key: { id } }))!, thrown, { retry: false });
      return (await tracker.get({ id }))!.lastError;
    };
    expect(await failWith('a', { message: 'HTTP 503 from partner', status: 503 })).toBe('HTTP 503 from partner');
    expect(await failWith('b', { name: 'AxiosError', message: 'timeout of 5000ms exceeded' })).toBe('AxiosError: timeout of 5000ms exceeded');
    expect(await failWith('c', { status: 503, body: 'busy' })).toBe('{"status":503,"body":"busy"}');
    // a huge object is cut
    const huge = await failWith('d', { rows: Array.from({ length: 100_000 }, (_, i) => ({ i, text: 'x'.repeat(20) })) });
    expect(huge!.length).toBeLessThanOrEqual(2_000);
    expect(huge).toMatch(/^\{"rows":\[\{"i":0,"text":"x+"\}/);
    // ...before it is written out whole, not after: what is built stays near a message's length
    const spent = 'x'.repeat(1_990); // the budget runs out just before the big array
    for (const big of [
      { rows: new Array(1_000_000).fill(7) },
      { text: 'y'.repeat(1_000_000) },
      Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`k${i}`, i])),
      { a: spent, k: new Array(1_000_000).fill(7) },
      { a: spent, [`k${'e'.repeat(40)}`]: new Array(1_000_000).fill(7) },
    ]) {
      expect(boundedJson(big)!.length).toBeLessThan(4_000);
    }
    // an object with its own toString keeps it
    expect(await failWith('e', { toString: () => 'custom text' })).toBe('custom text');
  });
  it('an Error whose message getter throws is still recorded: the worker fails its item instead of leaving it held', async () => {
    const tracker = make({ retry: { maxAttempts: 1 } });
    await tracker.track({ id: 'a' });
    const broken = new Error('hidden');
    Object.defineProperty(broken, 'message', {
      get() {
        throw new Error('message getter');
      },
    });
    const worker = tracker.work('run', () => Promise.reject(broken), { reapIntervalMs: false });
    try {
      await worker.drain();
      expect(await tracker.get({ id: 'a' })).toMatchObject({ status: 'failed', lastError: '[object Error]' });
    } finally {
      await worker.stop();
    }
  });
  it('SqliteStore: a busy timeout or watch interval past the longest timer is refused; a database with safe integers reads booleans and counts', async () => {
    expect(() => new SqliteStore({ filename: ':memory:', table: 'items', busyTimeoutMs: 3e9 })).toThrow(/`busyTimeoutMs`.*from 0 to 2147483647/);
    expect(() => new SqliteStore({ filename: ':memory:', table: 'items', watchIntervalMs: 3e9 })).toThrow(/`watchIntervalMs`/);
    const db = new Database(':memory:');
    db.defaultSafeIntegers(true);
    const tracker = make({ key: z.object({ id: z.string(), urgent: z.boolean() }) }, new SqliteStore({ database: db, table: 'items' }));
    await tracker.track({ id: 'a', urgent: true } as never);
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    expect(lease.key).toEqual({ id: 'a', urgent: true });
    await tracker.complete(lease);
    expect((await tracker.stats()).byStatus).toMatchObject({ done: 1 });
    db.close();
  });
});

describe('text checks of a data patch merged over stored data', () => {
  it('check what will be stored: a field the schema strips is no problem, a codec output holding NUL is', async () => {
    const store = new MemoryStore();
    const nul = z.codec(z.string(), z.string(), { decode: (s) => s.replace('\0', ''), encode: (s) => `${s}\0` });
    const tracker = make({ data: z.object({ n: z.number().optional(), tag: nul.optional() }) }, store) as unknown as Tracker<string, typeof base.key, z.ZodType<{ n?: number; tag?: string }>, typeof base.stages>;
    await tracker.track({ id: 'a' }, { n: 1 });
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    await expect(tracker.complete(lease, { data: { tag: 'x' } })).rejects.toThrow(/tag: text cannot hold a NUL/);
    // `junk` is stripped by the schema: never stored, so its NUL is fine (as on track)
    expect((await tracker.complete(lease, { data: { n: 2, junk: 'bad\0' } as never })).data).toEqual({ n: 2 });
  });
});
