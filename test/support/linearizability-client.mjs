// Random clients for the linearizability tests: each runs a seeded random sequence of every
// tracker operation on a small set of keys, so that clients in one or several processes keep
// meeting on the same items. Plain JavaScript: child processes run it on dist/.
import { z } from 'zod';

/**
 * A two-stage pipeline whose second stage may complete back into the first status, so that
 * items keep circulating: new → working → worked → checking → checked | new, or failed.
 * @param {unknown} store
 * @param {{ ttlMs: number, maxAttempts?: number, backoff?: (attempt: number) => number }} options
 */
export function pipelineDefinition(store, options) {
  return {
    store,
    statuses: /** @type {const} */ (['new', 'working', 'worked', 'checking', 'checked', 'failed']),
    initial: /** @type {const} */ ('new'),
    key: z.object({ n: z.number().int() }),
    stages: {
      work: { from: /** @type {const} */ ('new'), active: /** @type {const} */ ('working'), done: /** @type {const} */ ('worked'), failed: /** @type {const} */ ('failed') },
      check: {
        from: /** @type {const} */ (['worked']),
        active: /** @type {const} */ ('checking'),
        done: /** @type {const} */ (['checked', 'new']),
        failed: /** @type {const} */ ('failed'),
      },
    },
    lease: { ttlMs: options.ttlMs },
    retry: { maxAttempts: options.maxAttempts ?? 3, ...(options.backoff ? { backoff: options.backoff } : {}) },
  };
}

/** A small seeded random generator (mulberry32). */
export function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const lost = (error) => {
  if (error?.name !== 'LeaseLostError') throw error;
};

/**
 * Runs one client: `operations` random calls on `keys` keys at a time (n from `base` to
 * base + keys - 1, where base grows by one every `driftEvery` operations). A `stale` client now and then
 * holds a lease past its ttl, reaps, and only then settles it (a late settle the fence must refuse).
 * @param {any} tracker a tracker built from {@link pipelineDefinition}, recorded
 * @param {{ owner: string, seed: number, keys: number, driftEvery: number, operations: number, ttlMs: number, stale?: boolean }} options
 */
export async function runClient(tracker, options) {
  const rnd = random(options.seed);
  const pick = (list) => list[Math.floor(rnd() * list.length)];
  // the keys in play drift upwards, so that new items keep arriving as others finish
  let base = 0;
  const key = () => ({ n: base + Math.floor(rnd() * options.keys) });
  const stage = () => (rnd() < 0.55 ? 'work' : 'check');
  const owner = options.owner;
  /** @type {any[]} */
  const held = [];
  const take = () => held.splice(Math.floor(rnd() * held.length), 1)[0];
  const to = (lease) => (lease.stage === 'check' ? (rnd() < 0.9 ? 'new' : 'checked') : undefined);
  const settle = async (lease) => {
    const r = rnd();
    if (r < 0.45) await tracker.complete(lease, { to: to(lease) }).catch(lost);
    else if (r < 0.8) await tracker.fail(lease, new Error('boom'), { retry: rnd() < 0.95 }).catch(lost);
    else if (r < 0.9) await tracker.release(lease).catch(lost);
    else await tracker.renew(lease).catch(lost);
  };
  const actions = [
    [8, async () => void (await tracker.track(key()))],
    [14, async () => held.length < 2 && (await tracker.claim(stage(), { owner, key: key() }).then((l) => l && held.push(l)))],
    [8, async () => held.length < 2 && (await tracker.claim(stage(), { owner }).then((l) => l && held.push(l)))],
    [5, async () => held.length < 1 && held.push(...(await tracker.claimBatch(stage(), { owner, limit: 2 + Math.floor(rnd() * 2) })))],
    [6, async () => held.length > 0 && (await tracker.renew(pick(held)).catch(lost))],
    [30, async () => held.length > 0 && (await settle(take()))],
    [
      5,
      async () => {
        if (held.length === 0) return;
        const batch = held.splice(0, 1 + Math.floor(rnd() * held.length));
        // one stage per batch: `to` applies to all of them
        const [first] = batch;
        const same = batch.filter((l) => l.stage === first.stage);
        held.push(...batch.filter((l) => l.stage !== first.stage));
        await tracker.completeBatch(same, { to: to(first) });
      },
    ],
    [10, async () => void (await tracker.get(key()))],
    [4, async () => void (await tracker.reapStale())],
    [
      options.stale ? 3 : 0,
      async () => {
        const lease = await tracker.claim(stage(), { owner });
        if (!lease) return;
        // past the lease: a reaper (this one, or another client's) hands the item on
        await sleep(options.ttlMs + 40);
        await tracker.reapStale();
        await settle(lease);
      },
    ],
  ];
  const total = actions.reduce((a, [w]) => a + w, 0);
  for (let i = 0; i < options.operations; i++) {
    base = Math.floor(i / options.driftEvery);
    let r = rnd() * total;
    const [, action] = actions.find(([w]) => (r -= w) < 0) ?? actions[0];
    await action();
    if (rnd() < 0.3) await sleep(rnd() * 3);
  }
  // whatever is still held is left to expire and be reaped
  return { held: held.length };
}
