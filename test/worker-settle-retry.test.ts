import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { StoreError, Tracker } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory.js';
import { sameRef } from '../src/tracker/settle.js';

/**
 * A memory store whose writes can fail as a dropped connection does (`ECONNRESET`, transient):
 * `plan` says, write by write, whether the next `update` is applied and then fails (`applied`),
 * fails without reaching the store (`refused`; `slow-refused` after 300 ms), or goes through (`ok`,
 * and once the plan is used up). `sends` counts the writes the plan was asked about.
 */
function flaky(plan: Array<'applied' | 'refused' | 'slow-refused' | 'ok'>, match: (change: { status?: string }) => boolean) {
  const memory = new MemoryStore();
  let sends = 0;
  const reset = () => Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  const store = new Proxy(memory, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function' || prop === 'constructor') return value;
      if (prop !== 'update') return value.bind(target);
      return async (cond: unknown, change: { status?: string }, options: unknown) => {
        const mode = match(change) ? (sends++, plan.shift()) : 'ok';
        if (mode === 'slow-refused') await new Promise((r) => setTimeout(r, 300));
        if (mode === 'refused' || mode === 'slow-refused') throw reset();
        const result = await memory.update(cond as never, change as never, options as never);
        if (mode === 'applied') throw reset();
        return result;
      };
    },
  });
  const seen = { warn: [] as string[], errors: [] as unknown[], events: [] as string[] };
  const tracker = new Tracker({
    store,
    logger: { warn: (_: object, message: string) => void seen.warn.push(message) },
    statuses: ['queued', 'running', 'done', 'failed'],
    initial: 'queued',
    key: z.object({ id: z.number() }),
    stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } },
    lease: { ttlMs: 10_000 },
    retry: { maxAttempts: 3, backoff: () => 0 },
  });
  tracker.on('error', (e) => void seen.errors.push(e.error));
  for (const name of ['completed', 'failed', 'leaseLost'] as const) tracker.on(name, () => void seen.events.push(name));
  return { tracker, seen, sends: () => sends };
}

const until = async (cond: () => boolean | Promise<boolean>, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

const toDone = (change: { status?: string }) => change.status === 'done';

describe('a worker sends a complete or fail again after a transient store fault', () => {
  it('a complete whose answer was lost but that applied: sent again, taken as done, reported once, no error and no lost lease', async () => {
    const { tracker, seen } = flaky(['applied'], toDone);
    await tracker.track({ id: 1 });
    const worker = tracker.work('run', () => {});
    await until(async () => seen.events.length > 0 && (await tracker.get({ id: 1 }))!.status === 'done');
    await worker.stop();
    expect(seen.events).toEqual(['completed']);
    expect(seen.errors).toEqual([]);
    expect(seen.warn.some((m) => /complete failed \(StoreError: .*ECONNRESET.*\); sending it again in 100 ms/.test(m))).toBe(true);
    expect(seen.warn.some((m) => /an earlier complete whose answer was lost had applied/.test(m))).toBe(true);
    expect(worker.processed).toBe(1);
  });

  it('a complete refused twice goes through on the third send: the item is done, not left to the reaper', async () => {
    const { tracker, seen } = flaky(['refused', 'refused'], toDone);
    await tracker.track({ id: 1 });
    const worker = tracker.work('run', () => {});
    await until(async () => (await tracker.get({ id: 1 }))!.status === 'done');
    await worker.stop();
    expect(seen.events).toEqual(['completed']);
    expect(seen.errors).toEqual([]);
    expect(seen.warn.filter((m) => /complete failed/.test(m))).toHaveLength(2);
  });

  it('a fail whose answer was lost is sent again and taken as applied: one attempt counted, one `failed` event', async () => {
    const { tracker, seen } = flaky(['applied'], (c) => c.status === 'queued');
    await tracker.track({ id: 1 });
    let runs = 0;
    const worker = tracker.work('run', () => {
      if (++runs === 1) throw new Error('boom');
    });
    await until(async () => (await tracker.get({ id: 1 }))!.status === 'done');
    await worker.stop();
    expect(runs).toBe(2);
    expect(seen.events).toEqual(['failed', 'completed']);
    expect(seen.errors).toEqual([]);
  });

  it('gives up after three more sends and reports the fault once; the lease is left to expire', async () => {
    const { tracker, seen } = flaky(['refused', 'refused', 'refused', 'refused'], toDone);
    await tracker.track({ id: 1 });
    const worker = tracker.work('run', () => {});
    await until(() => seen.errors.length > 0);
    await worker.stop();
    expect(seen.errors).toHaveLength(1);
    expect(seen.errors[0]).toBeInstanceOf(StoreError);
    expect(seen.warn.filter((m) => /complete failed/.test(m))).toHaveLength(3);
    expect((await tracker.get({ id: 1 }))!.status).toBe('running');
    expect(seen.events).toEqual([]);
  });

  it('stop() at its timeout ends the wait between sends: the complete is sent once more at once, not released', async () => {
    const { tracker, seen, sends } = flaky(['refused', 'refused'], toDone);
    await tracker.track({ id: 1 });
    const worker = tracker.work('run', () => {});
    await until(() => seen.warn.filter((m) => /complete failed/.test(m)).length === 2);
    // now waiting 500 ms before the third send; the store works again
    await worker.stop({ timeoutMs: 50 });
    expect((await tracker.get({ id: 1 }))!.status).toBe('done');
    expect(sends()).toBe(3);
    expect(seen.events).toEqual(['completed']);
    expect(seen.errors).toEqual([]);
  });

  it('nothing is sent after stop() resolved: a send under way at the timeout that fails is the last, and is reported', async () => {
    const { tracker, seen, sends } = flaky(['slow-refused'], toDone);
    await tracker.track({ id: 1 });
    const worker = tracker.work('run', () => {});
    await until(() => sends() === 1);
    await worker.stop({ timeoutMs: 50 });
    await until(() => seen.errors.length === 1);
    await new Promise((r) => setTimeout(r, 700));
    expect(sends()).toBe(1);
    expect(seen.errors[0]).toBeInstanceOf(StoreError);
    expect((await tracker.get({ id: 1 }))!.status).toBe('running');
  });
});

describe('telling whether an item found after a lost answer is the lease\'s own row', () => {
  it('compares refs by value, an ObjectId-like ref by equals(), and never two plain objects by String()', () => {
    expect(sameRef(5, 5)).toBe(true);
    expect(sameRef('5', 5)).toBe(true);
    expect(sameRef(5n, '5')).toBe(true);
    expect(sameRef('5', '6')).toBe(false);
    const oid = (hex: string) => ({ hex, equals: (o: unknown) => (o as { hex?: string }).hex === hex });
    expect(sameRef(oid('ab'), oid('ab'))).toBe(true);
    expect(sameRef(oid('ab'), oid('cd'))).toBe(false);
    expect(sameRef({ shard: 1, id: 7 }, { shard: 1, id: 7 })).toBe(true);
    expect(sameRef({ shard: 1, id: 7 }, { shard: 2, id: 7 })).toBe(false);
    expect(sameRef({ id: 7 }, '[object Object]')).toBe(false);
  });
});
