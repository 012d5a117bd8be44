import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeaseLostError, type Store } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory.js';
import { k, makeTracker } from './conformance/definition.js';

const MAX_ATTEMPTS = 3;
const TERMINAL = new Set(['processed', 'skipped', 'failed']);
const ACTIVE = new Set(['downloading', 'processing']);
const ITEMS = 3;

/** One step of a worker: claim (an item or the next one) for a stage, then settle the lease somehow. */
const workerStep = fc.record({
  stage: fc.constantFrom('download' as const, 'process' as const),
  item: fc.option(fc.nat(ITEMS - 1), { nil: null }),
  settle: fc.constantFrom('complete' as const, 'fail' as const, 'release' as const, 'renew' as const, 'abandon' as const),
  pause: fc.nat(8),
});
/** One step of the world around the workers: time passes, the reaper runs, a poller tracks again. */
const worldStep = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constant('clock' as const), ms: fc.constantFrom(100, 1_000, 5_000, 11_000, 11_000, 60_000) }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant('reap' as const) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('track' as const), item: fc.nat(ITEMS - 1) }) },
);

describe('property: random interleavings of workers on the memory store keep every invariant', () => {
  it('at most one live lease per item, fenced settles, no loss, bounded attempts, terminal is final', async () => {
    let claims = 0;
    let lost = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.array(workerStep, { minLength: 1, maxLength: 8 }), { minLength: 2, maxLength: 4 }),
        fc.array(worldStep, { minLength: 4, maxLength: 30 }),
        async (s, workers, world) => {
          let now = Date.parse('2026-01-01T00:00:00Z');
          const inner = new MemoryStore({ clock: () => now });
          const violations: string[] = [];
          const granted = new Map<string, Set<number>>();
          const held: Array<{ key: unknown; fence: number; settled: boolean }> = [];
          const inserted = new Set<string>();
          const terminal = new Set<string>();
          const id = (key: unknown) => JSON.stringify(key);

          const check = async (step: string) => {
            const items = await inner.find({});
            if (items.length !== inserted.size || items.some((i) => !inserted.has(id(i.key)))) violations.push(`${step}: item lost or re-keyed`);
            for (const item of items) {
              if (item.attempts > MAX_ATTEMPTS) violations.push(`${step}: attempts ${item.attempts} > ${MAX_ATTEMPTS}`);
              if (TERMINAL.has(item.status)) terminal.add(id(item.key));
              const live = held.filter((l) => !l.settled && id(l.key) === id(item.key) && l.fence === item.fence && ACTIVE.has(item.status));
              if (live.length > 1) violations.push(`${step}: ${live.length} live leases on ${id(item.key)}`);
            }
          };

          // every store call waits for the scheduler, and the invariants are checked right after it
          const store = new Proxy(inner, {
            get(target, prop, receiver) {
              const value = Reflect.get(target, prop, receiver);
              if (typeof value !== 'function' || prop === 'constructor') return value;
              const gate = s.scheduleFunction(async (_label: string) => undefined);
              return async (...args: unknown[]) => {
                await gate(String(prop));
                const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
                if (prop === 'insert' && (result as { created: boolean }).created) inserted.add(id((args[0] as { key: unknown }).key));
                await check(String(prop));
                return result;
              };
            },
          }) as Store;
          const tracker = makeTracker(store, { maxAttempts: MAX_ATTEMPTS });

          const guard = async (what: string, fn: () => Promise<unknown>) => {
            try {
              await fn();
            } catch (error) {
              if (error instanceof LeaseLostError) lost++;
              else violations.push(`${what} threw ${String(error)}`);
            }
          };

          const runWorker = async (steps: typeof workers[number], w: number) => {
            for (const step of steps) {
              await guard('worker', async () => {
                const options = step.item === null ? { owner: `w${w}` } : { owner: `w${w}`, key: k(step.item) };
                const lease = await tracker.claim(step.stage, options);
                if (!lease) return;
                claims++;
                if (terminal.has(id(lease.key))) violations.push(`claimed ${id(lease.key)} after it reached a terminal status`);
                const fences = granted.get(id(lease.key)) ?? new Set<number>();
                if (fences.has(lease.fence)) violations.push(`fence ${lease.fence} granted twice on ${id(lease.key)}`);
                granted.set(id(lease.key), fences.add(lease.fence));
                const record = { key: lease.key, fence: lease.fence, settled: false };
                held.push(record);
                // let the world move between claim and settle
                for (let i = 0; i < step.pause; i++) await s.schedule(Promise.resolve());
                if (step.settle === 'abandon') return; // the worker "dies"; only the reaper can free the item
                if (step.settle === 'renew') await tracker.renew(lease);
                const item =
                  step.settle === 'fail' ? await tracker.fail(lease, new Error('x'))
                  : step.settle === 'release' ? await tracker.release(lease)
                  : await tracker.complete(lease);
                record.settled = true;
                if (item.fence !== lease.fence) violations.push(`${step.settle} succeeded with fence ${lease.fence} but the item holds ${item.fence}`);
              });
            }
          };
          const runWorld = async () => {
            for (const step of world) {
              await s.schedule(Promise.resolve());
              if (step.type === 'clock') now += step.ms;
              else if (step.type === 'reap') await guard('reap', () => tracker.reapStale());
              else await guard('track', () => tracker.track(k(step.item)));
            }
          };

          await s.waitFor(Promise.all(Array.from({ length: ITEMS }, (_, n) => tracker.track(k(n)))));
          await s.waitFor(Promise.all([...workers.map(runWorker), runWorld()]));
          await check('end');
          expect(violations).toEqual([]);
        },
      ),
      { numRuns: 400 },
    );
    // the generator must really explore claims and lost leases, or the property proves nothing
    expect(claims).toBeGreaterThan(1_000);
    expect(lost).toBeGreaterThan(50);
  });
});
