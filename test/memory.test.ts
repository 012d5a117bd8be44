import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryStore } from '../src/stores/memory.js';
import { ConfigError, LeaseLostError, Tracker, type Store } from '../src/index.js';
import { jobDefinition } from './support/job-definition.mjs';
import type { StoreHarness } from '../src/testing/harness.js';
import { storeContract } from '../src/testing/suite.js';
import { countingStore } from '../src/testing/counting.js';
import { must } from '../src/testing/definition.js';

const clocks = new WeakMap<Store, { now: number }>();

/**
 * `memory` with some members replaced (a store that behaves otherwise there); the others are
 * its own, methods bound to it.
 */
function withMembers(memory: MemoryStore, members: Partial<Record<keyof Store, unknown>>): Store {
  return new Proxy(memory, {
    get(target, name) {
      if (Object.hasOwn(members, name)) return members[name as keyof Store];
      const value: unknown = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as Store;
}

/** The memory store keeps no raw rows: reaches the internal item the way a hand edit would. */
async function corrupt(store: Store, key: object) {
  const [item] = await store.find({ key: key as never });
  (item as { data: unknown }).data = { bytes: 'not a number' };
  await store.update({ key: key as never, status: [item!.status] }, { status: item!.status, data: { bytes: 'not a number' } }, { limit: 1 });
}

storeContract({
  name: 'MemoryStore',
  // one process, one store object: trackers over the same store race through it
  async peer(store) {
    return store;
  },
  async create() {
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const store = new MemoryStore({ clock: () => clock.now });
    clocks.set(store, clock);
    return store;
  },
  async elapse(store, ms) {
    clocks.get(store)!.now += ms;
  },
  corrupt,
});

// the core's paths for a store that claims and settles one item per call (a store author's
// first version): the same contract, as many calls as items. The harness is a class, as a store
// package may write it: its methods live on the prototype, and its stores in a private field
class UnbatchedHarness implements StoreHarness {
  readonly name = 'MemoryStore without batch capabilities';
  readonly raceRepeats = 20;
  readonly #clocks = new WeakMap<Store, { now: number }>();
  readonly made = new Set<Store>();
  readonly disposed = new Set<Store>();

  async create(): Promise<Store> {
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const memory = new MemoryStore({ clock: () => clock.now });
    const capabilities = Object.freeze({ batchClaim: false, batchSettle: false, priorDeadline: true });
    const store = withMembers(memory, { capabilities });
    this.#clocks.set(store, clock);
    this.made.add(store);
    return store;
  }

  async elapse(store: Store, ms: number): Promise<void> {
    this.#clocks.get(store)!.now += ms;
  }

  async corrupt(store: Store, key: object): Promise<void> {
    await corrupt(store, key);
  }

  async dispose(store: Store): Promise<void> {
    this.disposed.add(store);
  }
}
const unbatched = new UnbatchedHarness();
storeContract(unbatched);
// the suite hands back every store it made once its tests ran (also when `-t` picks a few)
afterAll(() => {
  const kept = [...unbatched.made].filter((store) => !unbatched.disposed.has(store)).length;
  if (kept > 0) throw new Error(`storeContract made ${unbatched.made.size} stores and called dispose for ${unbatched.disposed.size}: ${kept} never handed back`);
});

// a batch claim that failed part-way threw away the leases it had already taken: their items sat
// held by no one until reaped, an attempt spent each
describe('a batch claim that fails part-way hands out the leases it took', () => {
  const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  const definition = (store: Store, maxAttempts = 5) => ({ ...jobDefinition(store, { maxAttempts, backoff: () => 0 }) });
  /** A memory store whose parks (guarded single-item updates read back as state) fail once asked to. */
  const parksFailing = () => {
    const memory = new MemoryStore();
    let failing = false;
    const store = withMembers(memory, {
      update: (cond: never, change: never, options: { ordered?: boolean; returning?: string }) =>
        failing && options?.returning === 'state' && !options.ordered ? Promise.reject(reset()) : memory.update(cond, change, options as never),
    });
    return { store, failParks: () => void (failing = true) };
  };

  it('one claim at a time (a store without batchClaim): the leases before the failure, and the fault reported', async () => {
    const memory = new MemoryStore();
    let claims = 0;
    const store = withMembers(memory, {
      capabilities: Object.freeze({ batchClaim: false, batchSettle: false, priorDeadline: true }),
      update: (cond: never, change: never, options: { ordered?: boolean }) => (options?.ordered && ++claims === 3 ? Promise.reject(reset()) : memory.update(cond, change, options as never)),
    });
    const tracker = new Tracker(definition(store));
    for (let n = 1; n <= 5; n++) await tracker.track({ n });
    const errors: string[] = [];
    tracker.on('error', (e) => void errors.push(`${e.operation}: ${String(e.error)}`));
    const leases = await tracker.claimBatch('run', { owner: 'w', limit: 5 });
    expect(leases.map((l) => l.key.n)).toEqual([1, 2]);
    expect(errors).toEqual([expect.stringMatching(/^claimBatch: StoreError: .*ECONNRESET/)]);
    // nothing claimed yet: the fault is thrown, as before
    claims = 2;
    await expect(tracker.claimBatch('run', { owner: 'w', limit: 5 })).rejects.toThrow(/ECONNRESET/);
  });

  it('in one round trip: an item the claim must park, whose park fails, costs the others nothing', async () => {
    const { store, failParks } = parksFailing();
    const before = new Tracker(definition(store));
    for (let n = 1; n <= 3; n++) await before.track({ n });
    // item 1 has used two attempts; a deploy lowers maxAttempts to 1
    for (let i = 0; i < 2; i++) await before.fail((await before.claim('run', { owner: 'w', key: { n: 1 } }))!, new Error('flaky'));
    const lowered = new Tracker(definition(store, 1));
    const errors: string[] = [];
    lowered.on('error', (e) => void errors.push(`${e.operation}: ${String(e.error)}`));
    failParks();
    const leases = await lowered.claimBatch('run', { owner: 'w', limit: 3 });
    expect(leases.map((l) => l.key.n).sort()).toEqual([2, 3]);
    expect(errors).toEqual([expect.stringMatching(/^claimBatch: StoreError: .*ECONNRESET/)]);
    // the item the park missed is held under its new fence until a reaper takes it
    expect(await lowered.get({ n: 1 })).toMatchObject({ status: 'running', attempts: 3 });
  });

  // parks that failed counted as parked: a claim that took only items to park went round again,
  // up to ten times, taking more items each round, and returned none without a word
  it('a claim whose every item must be parked, and whose parks fail, throws the fault and takes no more', async () => {
    const { store, failParks } = parksFailing();
    const before = new Tracker(definition(store));
    for (let n = 1; n <= 30; n++) await before.track({ n });
    for (let n = 1; n <= 30; n++) await before.fail((await before.claim('run', { owner: 'w', key: { n } }))!, new Error('flaky'));
    const lowered = new Tracker(definition(store, 1));
    lowered.on('error', () => {});
    failParks();
    await expect(lowered.claimBatch('run', { owner: 'w', limit: 2 })).rejects.toThrow(/ECONNRESET/);
    expect((await lowered.stats()).byStatus.running).toBe(2);
  });
});

describe('must (the contract suite\'s check for an item or lease)', () => {
  it('returns what it is given, falsy values too, and names the call that returned nothing', () => {
    expect(must(0, 'stats')).toBe(0);
    expect(must('', 'get')).toBe('');
    expect(() => must(null, 'claim')).toThrow(/`claim` returned null where the contract expects an item or a lease/);
    expect(() => must(undefined, 'get')).toThrow(/`get` returned undefined/);
  });
});

describe('reapStale', () => {
  it('ends when a full batch applies nothing, instead of reading the same items for ever', async () => {
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const memory = new MemoryStore({ clock: () => clock.now });
    let updates = 0;
    // a store whose guards never match these items (a key changed by hand, say): every update
    // returns nothing, and the items stay expired
    const updateEach = async (list: readonly unknown[]) => {
      if (++updates > 20) throw new Error('reapStale kept sending the same batch');
      return list.map(() => null);
    };
    const store = withMembers(memory, { updateEach });
    const tracker = new Tracker(jobDefinition(store, { ttlMs: 1_000 }));
    for (let n = 1; n <= 3; n++) await tracker.track({ n });
    expect(await tracker.claimBatch('run', { owner: 'gone', limit: 3 })).toHaveLength(3);
    clock.now += 5_000;
    expect(await tracker.reapStale({ batchSize: 1 })).toEqual({ retried: 0, failed: 0 });
    expect(updates).toBe(1);
  });
});

describe('batch settles read only where each item is now (SettleOutcome)', () => {
  // a store that answers a batch settle with `ref` and `status` alone, as PostgreSQL does for a
  // completion into a status no stage claims from
  const lean = (memory: MemoryStore) =>
    withMembers(memory, {
      updateEach: async (updates: Parameters<NonNullable<Store['updateEach']>>[0]) =>
        (await memory.updateEach(updates)).map((row) => row && ({ ref: row.ref, status: row.status } as typeof row)),
    });

  it('a completion into a final status needs no deadline back', async () => {
    const tracker = new Tracker(jobDefinition(lean(new MemoryStore())));
    for (let n = 1; n <= 2; n++) await tracker.track({ n });
    const results = await tracker.completeBatch(await tracker.claimBatch('run', { owner: 'w', limit: 2 }));
    expect(results.map((r) => r.ok && [r.status, r.notBefore])).toEqual([['done', null], ['done', null]]);
  });

  it('a store leaving out the deadline of an item waiting for a retry is named as breaking the contract', async () => {
    const tracker = new Tracker(jobDefinition(lean(new MemoryStore())));
    await tracker.track({ n: 1 });
    const leases = await tracker.claimBatch('run', { owner: 'w', limit: 1 });
    await expect(tracker.failBatch(leases.map((lease) => ({ lease, error: new Error('boom') })))).rejects.toThrow(/no deadline for an item in `queued`.*SettleOutcome/);
  });
});

describe('events', () => {
  it('a lease found lost is told once (leaseLost), however many calls on it are refused', async () => {
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const tracker = new Tracker(jobDefinition(new MemoryStore({ clock: () => clock.now }), { ttlMs: 1_000 }));
    const lost: string[] = [];
    tracker.on('leaseLost', (e) => lost.push(e.operation));
    await tracker.track({ n: 1 });
    const lease = (await tracker.claim('run', { owner: 'w' }))!;
    clock.now += 5_000;
    expect((await tracker.reapStale()).retried).toBe(1);
    await expect(tracker.renew(lease)).rejects.toThrow(LeaseLostError);
    await expect(tracker.complete(lease)).rejects.toThrow(LeaseLostError);
    await expect(tracker.release(lease)).rejects.toThrow(LeaseLostError);
    expect(lost).toEqual(['renew']);
  });

  it('an item parked at its claim (attempts exhausted) is told as failed, without a retry', async () => {
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const store = new MemoryStore({ clock: () => clock.now });
    const before = new Tracker(jobDefinition(store, { ttlMs: 1_000, maxAttempts: 5, backoff: () => 0 }));
    await before.track({ n: 1 });
    for (let i = 0; i < 2; i++) await before.fail((await before.claim('run', { owner: 'w' }))!, new Error('boom'));
    // redeployed with fewer attempts than the item has used
    const after = new Tracker(jobDefinition(store, { ttlMs: 1_000, maxAttempts: 1 }));
    const failed: Array<{ willRetry: boolean; status: string; attempt: number; error: string }> = [];
    after.on('failed', (e) => failed.push({ willRetry: e.willRetry, status: e.status, attempt: e.attempt, error: e.error }));
    expect(await after.claim('run', { owner: 'w' })).toBeNull();
    expect(failed).toEqual([{ willRetry: false, status: 'failed', attempt: 3, error: expect.stringMatching(/^attempts exhausted/) }]);
    expect((await after.get({ n: 1 }))!.status).toBe('failed');
  });
});

describe('leases', () => {
  it('a lease is settled only by a tracker on the store it was claimed in', async () => {
    const emails = new Tracker(jobDefinition(new MemoryStore()));
    const invoices = new Tracker(jobDefinition(new MemoryStore()));
    await emails.track({ n: 1 });
    await invoices.track({ n: 1 });
    const email = (await emails.claim('run', { owner: 'w' }))!;
    const invoice = (await invoices.claim('run', { owner: 'w' }))!;
    // same stage, key, ref and fence: without the check, the email item would be completed
    await expect(emails.complete(invoice)).rejects.toThrow(/claimed through a tracker on another store/);
    await expect(emails.completeBatch([invoice])).rejects.toThrow(ConfigError);
    await expect(emails.renew(invoice)).rejects.toThrow(ConfigError);
    expect((await emails.get({ n: 1 }))!.status).toBe('running');
    await emails.complete(email);
    await invoices.complete(invoice);
    expect((await invoices.get({ n: 1 }))!.status).toBe('done');
  });
});

describe('retryAll by stage', () => {
  it('leaves items another stage completed into the same status', async () => {
    const tracker = new Tracker({
      store: new MemoryStore(),
      statuses: ['new', 'fetching', 'fetched', 'reviewing', 'parked', 'rejected'],
      initial: 'new',
      key: z.object({ id: z.string() }),
      stages: {
        fetch: { from: 'new', active: 'fetching', done: 'fetched', failed: 'parked' },
        // a stage whose outcome is the fetch stage's failed status
        review: { from: 'fetched', active: 'reviewing', done: 'parked', failed: 'rejected' },
      },
    });
    await tracker.track({ id: 'broken' });
    await tracker.fail((await tracker.claim('fetch', { owner: 'w', key: { id: 'broken' } }))!, new Error('boom'), { retry: false });
    await tracker.track({ id: 'reviewed' });
    await tracker.complete((await tracker.claim('fetch', { owner: 'w', key: { id: 'reviewed' } }))!);
    await tracker.complete((await tracker.claim('review', { owner: 'w' }))!);
    expect((await tracker.get({ id: 'reviewed' }))!.status).toBe('parked');
    expect(await tracker.retryAll({ stage: 'fetch' })).toBe(1);
    expect((await tracker.get({ id: 'broken' }))!.status).toBe('new');
    expect((await tracker.get({ id: 'reviewed' }))!.status).toBe('parked');
  });
});

describe('retryAll and retry after a redeploy or beside failing workers', () => {
  it('retryAll ends at the batch that meets an item it retried already, which a worker parked again (it never ended)', async () => {
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const store = new MemoryStore({ clock: () => clock.now });
    const tracker = new Tracker(jobDefinition(store, { maxAttempts: 1 }));
    for (let n = 0; n < 501; n++) await tracker.track({ n });
    await tracker.failBatch((await tracker.claimBatch('run', { owner: 'w', limit: 501 })).map((lease) => ({ lease, error: new Error('broken'), retry: false })));
    clock.now += 1_000;
    // a worker whose handler keeps failing parks what each retry batch put back, at once
    const update = store.update.bind(store);
    let batches = 0;
    store.update = async (cond, change, options) => {
      const rows = await update(cond, change, options);
      if (change.status === 'queued' && change.attempts === 'reset') {
        if (++batches > 5) throw new Error('retryAll kept going');
        clock.now += 1_000;
        const leases = await tracker.claimBatch('run', { owner: 'w', limit: rows.length });
        await tracker.failBatch(leases.map((lease) => ({ lease, error: new Error('broken again'), retry: false })));
      }
      return rows;
    };
    expect(await tracker.retryAll()).toBe(501);
    expect(batches).toBe(2);
  });

  it('retry with `stage` takes an item parked under a stage a redeploy renamed; the CLI-facing retry without it, when one stage fails into its status', async () => {
    const store = new MemoryStore();
    const definition = (stage: string) => ({
      store,
      statuses: ['new', 'busy', 'done', 'failed'] as const,
      initial: 'new' as const,
      key: z.object({ id: z.string() }),
      stages: { [stage]: { from: 'new', active: 'busy', done: 'done', failed: 'failed' } } as Record<string, { from: 'new'; active: 'busy'; done: 'done'; failed: 'failed' }>,
      retry: { maxAttempts: 1 },
    });
    const before = new Tracker(definition('dl'));
    for (const id of ['a', 'b']) {
      await before.track({ id });
      await before.fail((await before.claim('dl', { owner: 'w', key: { id } }))!, new Error('boom'));
    }
    const after = new Tracker(definition('download'));
    expect(await after.retry({ id: 'a' }, { stage: 'download' })).toMatchObject({ status: 'new', stage: 'dl' });
    expect(await after.retry({ id: 'b' })).toMatchObject({ status: 'new' });
    expect(await after.retry({ id: 'b' })).toBeNull();
  });

  it('retry leaves an item a renamed stage left waiting in a status that is also another stage\'s failed one', async () => {
    const store = new MemoryStore();
    const definition = (check: string) =>
      new Tracker({
        store,
        statuses: ['new', 'fetching', 'review', 'checking', 'ok', 'rejected'] as const,
        initial: 'new',
        key: z.object({ id: z.string() }),
        stages: {
          fetch: { from: 'new', active: 'fetching', done: 'ok', failed: 'review' },
          [check]: { from: 'review', active: 'checking', done: 'ok', failed: 'rejected' },
        } as Record<string, { from: 'new' | 'review'; active: 'fetching' | 'checking'; done: 'ok'; failed: 'review' | 'rejected' }>,
        retry: { maxAttempts: 3, backoff: () => 0 },
      });
    const before = definition('checkOld');
    await before.track({ id: 'x' });
    await before.fail((await before.claim('fetch', { owner: 'w' }))!, new Error('boom'), { retry: false });
    // the check stage failed it with attempts left: it waits in `review` for that stage again
    await before.fail((await before.claim('checkOld', { owner: 'w' }))!, new Error('flaky'));
    expect(await before.get({ id: 'x' })).toMatchObject({ status: 'review', stage: 'checkOld' });
    const after = definition('check');
    expect(await after.retry({ id: 'x' })).toBeNull();
    expect(await after.get({ id: 'x' })).toMatchObject({ status: 'review', stage: 'checkOld' });
  });

  it('retryAll opens every item of a gate (an initial status that is a failed one), scheduled ones included, whatever their number', async () => {
    const store = new MemoryStore();
    const tracker = new Tracker({ ...jobDefinition(store), initial: 'failed' });
    for (let n = 0; n < 600; n++) await tracker.track({ n }, {}, { delayMs: 3_600_000 });
    expect(await tracker.retryAll()).toBe(600);
    expect((await tracker.stats()).byStatus).toMatchObject({ queued: 600, failed: 0 });
  });
});

describe('cancel beside a worker', () => {
  it('cancels an item that a worker fails back into a status an earlier stage\'s update covered, between cancel\'s updates', async () => {
    const store = new MemoryStore();
    const tracker = new Tracker({
      store,
      statuses: ['pending', 'fast_run', 'slow_run', 'done', 'failed'],
      initial: 'pending',
      key: z.object({ id: z.string() }),
      stages: {
        fast: { from: 'pending', active: 'fast_run', done: 'done', failed: 'failed' },
        slow: { from: 'pending', active: 'slow_run', done: 'done', failed: 'failed' },
      },
      retry: { maxAttempts: 3, backoff: () => 0 },
    });
    await tracker.track({ id: 'x' });
    const lease = (await tracker.claim('slow', { owner: 'w' }))!;
    // the slow stage's worker fails it (retryable) right after cancel's first update missed it
    const update = store.update.bind(store);
    let failed = false;
    store.update = async (cond, change, options) => {
      const rows = await update(cond, change, options);
      if (!failed && String(change.lastError).startsWith('cancelled:')) {
        failed = true;
        await tracker.fail(lease, new Error('flaky'));
      }
      return rows;
    };
    expect(await tracker.cancel({ id: 'x' }, { reason: 'withdrawn' })).toMatchObject({ status: 'failed', lastError: 'cancelled: withdrawn' });
    expect(failed).toBe(true);
  });
});

describe('leasehold/testing helpers', () => {
  it('countingStore counts the calls of a store whose getters read private fields', async () => {
    class PrivateCapabilities extends MemoryStore {
      readonly #caps = Object.freeze({ batchClaim: true, batchSettle: true, priorDeadline: true });
      constructor() {
        super();
        // a getter in place of MemoryStore's field, as a store of one's own may define it
        Object.defineProperty(this, 'capabilities', {
          get(this: PrivateCapabilities) {
            return this.#caps;
          },
        });
      }
    }
    const { store, calls } = countingStore(new PrivateCapabilities());
    const tracker = new Tracker(jobDefinition(store));
    await tracker.track({ n: 1 });
    const [lease] = await tracker.claimBatch('run', { owner: 'w', limit: 2 });
    expect((await tracker.complete(lease!)).status).toBe('done');
    expect(calls).toEqual(['init', 'insert', 'update', 'update']);
  });
});

describe('a store that breaks the contract is named, not trusted', () => {
  it('a claim that gets more items than its limit throws, saying the store returned too many', async () => {
    const memory = new MemoryStore();
    // a store that ignores `limit`
    const store = withMembers(memory, {
      update: (cond: never, change: never, options: { limit?: number } = {}) => memory.update(cond, change, { ...options, limit: undefined }),
    });
    const tracker = new Tracker(jobDefinition(store));
    for (let n = 1; n <= 3; n++) await tracker.track({ n });
    await expect(tracker.claim('run', { owner: 'w' })).rejects.toThrow(/`claim` failed: the store returned 3 claimed items for a limit of 1, a bug in the store/);
  });
});
