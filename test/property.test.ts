import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeaseLostError, type Store, type StoredItem } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory.js';
import { k, makeTracker } from '../src/testing/definition.js';

const MAX_ATTEMPTS = 3;
const TERMINAL = new Set(['processed', 'skipped', 'failed']);
const ACTIVE = new Set(['downloading', 'processing']);
const ITEMS = 3;

/** One step of a worker: claim (an item or the next one) for a stage, then settle the lease somehow. */
const workerStep = fc.record({
  stage: fc.constantFrom('download' as const, 'process' as const),
  item: fc.option(fc.nat(ITEMS - 1), { nil: null }),
  settle: fc.constantFrom('complete' as const, 'fail' as const, 'release' as const, 'renew' as const, 'abandon' as const),
  batch: fc.boolean(),
  pause: fc.nat(8),
});
/** One step of the world around the workers: time passes, the reaper runs, a poller tracks again. */
const worldStep = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constant('clock' as const), ms: fc.constantFrom(100, 1_000, 5_000, 11_000, 11_000, 60_000) }) },
  { weight: 3, arbitrary: fc.record({ type: fc.constant('reap' as const) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant('track' as const), item: fc.nat(ITEMS - 1) }) },
);

describe('property: random interleavings of workers on the memory store keep every invariant', () => {
  it('only the newest lease of an item can act, fenced settles, no claim before due, no reap of a live lease, no loss, bounded attempts, terminal is final, and everything finishes', async () => {
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
          /** The newest fence the store has handed out (claim, reap) per item. */
          const newest = new Map<string, number>();
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

          /**
           * Time: a write that gives an item a new fence (a claim, a reap) may take it only once it
           * is due: a waiting item once its schedule or backoff has passed, a held one once its
           * lease ran out. `at` is the clock after the write, which the store read no later.
           */
          const judgeTime = (what: string, before: StoredItem[], after: StoredItem[], at: number) => {
            const prior = new Map(before.map((i) => [id(i.key), i]));
            for (const item of after) {
              const was = prior.get(id(item.key));
              if (!was || item.fence <= was.fence || was.deadline.getTime() <= at) continue;
              violations.push(
                `${what} gave ${id(item.key)} fence ${item.fence} (\`${was.status}\` → \`${item.status}\`) ${was.deadline.getTime() - at} ms before it was due (${ACTIVE.has(was.status) ? 'a live lease' : 'a schedule or backoff'})`,
              );
            }
          };

          // every store call waits for the scheduler, then runs alone (the memory store's calls
          // are atomic; the lock keeps the snapshots around a write from seeing another call's
          // writes), and the invariants are checked right after it
          let queue: Promise<unknown> = Promise.resolve();
          const alone = <T,>(fn: () => Promise<T>): Promise<T> => {
            const run = queue.then(fn);
            queue = run.catch(() => undefined);
            return run;
          };
          const store = new Proxy(inner, {
            get(target, prop, receiver) {
              const value = Reflect.get(target, prop, receiver);
              if (typeof value !== 'function' || prop === 'constructor') return value;
              const gate = s.scheduleFunction(async (_label: string) => undefined);
              return async (...args: unknown[]) => {
                await gate(String(prop));
                return alone(async () => {
                  const writes = prop === 'update' || prop === 'updateEach';
                  const before = writes ? await inner.find({}) : [];
                  const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
                  if (writes) judgeTime(String(prop), before, await inner.find({}), now);
                  if (prop === 'insert' && (result as { created: boolean }).created) inserted.add(id((args[0] as { key: unknown }).key));
                  await check(String(prop));
                  return result;
                });
              };
            },
          }) as Store;
          const tracker = makeTracker(store, { maxAttempts: MAX_ATTEMPTS });
          const bump = (key: unknown, fence: number) => newest.set(id(key), Math.max(newest.get(id(key)) ?? 0, fence));
          tracker.on('reaped', (e) => bump(e.key, e.fence));
          /**
           * A lease may act (renew, settle) only while it is the newest grant for its item: once
           * a newer claim or a reap happened, every call of the older lease must be refused. This
           * is "at most one live lease per item", and it trips on a missing fence or status guard.
           */
          const mayAct = (what: string, key: unknown, fence: number) => {
            const latest = newest.get(id(key)) ?? 0;
            if (fence < latest) violations.push(`${what} by a lease with fence ${fence} succeeded after fence ${latest} was granted on ${id(key)}`);
          };

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
                const lease = step.batch && step.item === null
                  ? (await tracker.claimBatch(step.stage, { owner: `w${w}`, limit: 2 }))[0]
                  : await tracker.claim(step.stage, options);
                if (!lease) return;
                bump(lease.key, lease.fence);
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
                if (step.settle === 'renew') {
                  await tracker.renew(lease);
                  mayAct('renew', lease.key, lease.fence);
                }
                if (step.batch && step.settle !== 'release') {
                  const [result] = step.settle === 'fail' ? await tracker.failBatch([{ lease, error: new Error('x') }]) : await tracker.completeBatch([lease]);
                  if (!result!.ok) throw result!.error;
                  // a batch result carries where the item went, not the item: it must have left the active status
                  if (result!.status === lease.item.status) violations.push(`${step.settle} (batch) succeeded but the item is still \`${result!.status}\``);
                } else {
                  const item =
                    step.settle === 'fail' ? await tracker.fail(lease, new Error('x'))
                    : step.settle === 'release' ? await tracker.release(lease)
                    : await tracker.complete(lease);
                  if (item.fence !== lease.fence) violations.push(`${step.settle} succeeded with fence ${lease.fence} but the item holds ${item.fence}`);
                }
                mayAct(step.settle, lease.key, lease.fence);
                record.settled = true;
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

          // liveness: with time passing, a reaper and one honest worker, every item finishes
          const finisher = makeTracker(inner, { maxAttempts: MAX_ATTEMPTS });
          for (let round = 0; round < 20; round++) {
            const left = (await inner.find({})).filter((i) => !TERMINAL.has(i.status));
            if (left.length === 0) break;
            now += 60_000;
            await finisher.reapStale();
            for (const stage of ['download', 'process'] as const) {
              for (let lease = await finisher.claim(stage, { owner: 'finisher' }); lease; lease = await finisher.claim(stage, { owner: 'finisher' })) {
                await finisher.complete(lease);
              }
            }
          }
          const unfinished = (await inner.find({})).filter((i) => !TERMINAL.has(i.status));
          if (unfinished.length) violations.push(`never finished: ${unfinished.map((i) => `${id(i.key)} in ${i.status}`).join(', ')}`);
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
