import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, exponentialBackoff, Tracker, ValidationError, type Store } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory.js';
import { MongoStore } from '../src/stores/mongodb.js';
import { PostgresStore } from '../src/stores/postgres.js';
import { SqliteStore } from '../src/stores/sqlite.js';
import { countingStore } from './support/counting.js';

const base = {
  statuses: ['queued', 'running', 'done', 'failed'],
  initial: 'queued',
  key: z.object({ id: z.string() }),
  data: z.object({ note: z.string().optional() }),
  stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } },
} as const;

const make = (overrides: Record<string, unknown> = {}, store: Store = new MemoryStore()) =>
  new Tracker({ ...base, store, ...overrides } as never) as unknown as Tracker<'queued' | 'running' | 'done' | 'failed', typeof base.key, typeof base.data, typeof base.stages>;

describe('bad definitions are refused at construction, naming the option', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['negative ttl', { lease: { ttlMs: -1 } }, /`lease.ttlMs`.*got `-1`/],
    ['zero ttl', { lease: { ttlMs: 0 } }, /`lease.ttlMs`/],
    ['NaN ttl', { lease: { ttlMs: Number.NaN } }, /`lease.ttlMs`.*NaN/],
    ['Infinity ttl', { lease: { ttlMs: Number.POSITIVE_INFINITY } }, /`lease.ttlMs`.*Infinity/],
    ['maxAttempts 0', { retry: { maxAttempts: 0 } }, /`retry.maxAttempts`/],
    ['maxAttempts NaN', { retry: { maxAttempts: Number.NaN } }, /`retry.maxAttempts`/],
    ['a backoff that returns NaN', { retry: { backoff: () => Number.NaN } }, /`retry.backoff\(1\)`/],
    ['a backoff that is not a function', { retry: { backoff: 1000 } }, /`retry.backoff`/],
    ['an undeclared initial status', { initial: 'new' }, /`initial`.*`new` is not one of the declared statuses/],
    ['a stage with an undeclared status', { stages: { run: { from: 'queued', active: 'busy', done: 'done', failed: 'failed' } } }, /`stages.run.active`/],
    ['a key field named with `$`', { key: z.object({ $where: z.string() }) }, /`key.\$where`.*no `\$` or `.`/],
    ['a key field named with `.`', { key: z.object({ 'a.b': z.string() }) }, /`key.a.b`/],
    ['a non-scalar key field', { key: z.object({ id: z.object({ x: z.string() }) }) }, /`key.id`.*required scalars/],
    ['an optional key field', { key: z.object({ id: z.string().optional() }) }, /`key.id`/],
    ['no store', { store: undefined }, /`store`/],
  ];
  for (const [what, overrides, message] of cases) {
    it(what, () => {
      expect(() => make(overrides)).toThrow(ConfigError);
      expect(() => make(overrides)).toThrow(message);
    });
  }
  it('exponentialBackoff rejects nonsense', () => {
    expect(() => exponentialBackoff({ baseMs: -5, maxMs: 10 })).toThrow(/`backoff.baseMs`/);
    expect(() => exponentialBackoff({ baseMs: 10, maxMs: 5 })).toThrow(/`backoff.maxMs`/);
    expect(() => exponentialBackoff({ baseMs: 10, maxMs: Number.POSITIVE_INFINITY })).toThrow(/`backoff.maxMs`/);
    expect(() => exponentialBackoff({ baseMs: 10, maxMs: 100, factor: 0.5 })).toThrow(/`backoff.factor`/);
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

  it('a backoff that turns NaN at a later attempt: fail refuses, nothing written', async () => {
    const tracker = make({ retry: { backoff: (n: number) => (n < 2 ? 10 : Number.NaN) } });
    await tracker.track({ id: 'a' });
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    await tracker.fail(lease, 'first');
    await new Promise((r) => setTimeout(r, 15));
    const second = (await tracker.claim('run', { owner: 'w' }))!;
    await expect(tracker.fail(second, 'second')).rejects.toThrow(/`retry.backoff\(2\)`.*NaN/);
    expect((await tracker.get({ id: 'a' }))!).toMatchObject({ status: 'running', lastError: 'first' });
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
  it('key fields that collide with the store\'s own columns', async () => {
    const tracker = make({ key: z.object({ status: z.string() }) }, new SqliteStore({ filename: ':memory:', table: 'items' }));
    await expect(tracker.init()).rejects.toThrow(/`key.status`.*a column leasehold uses itself/);
  });
});
