import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { exponentialBackoff, Tracker, type Store } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory.js';
import { MongoStore, type MongoCollection } from '../src/stores/mongodb.js';
import { fileHistory, memoryHistory, readHistory, recordTracker } from './support/history-recorder.mjs';
import { itemModel } from './support/item-model.mjs';
import { pipelineDefinition, random, runClient } from './support/linearizability-client.mjs';
import { checkLinearizable, type CheckResult, type Operation } from './support/linearizability.mjs';
import { CollectionDouble } from './support/mongo-double.js';

const run = promisify(execFile);
const childScript = resolve(import.meta.dirname, 'support/linearizability-child.mjs');
const TTL_MS = 120;
const backoff = exponentialBackoff({ baseMs: 5, maxMs: 40, jitter: true });
const model = itemModel(pipelineDefinition(undefined, { ttlMs: TTL_MS }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = `${process.pid}_${Date.now() % 1e6}`;
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup();
});

/** The last word on a finished run: a reap after every lease has expired, then every item read. */
async function finish(tracker: { reapStale(): Promise<unknown>; get(key: { n: number }): Promise<unknown> }, history: readonly Operation[]) {
  await sleep(TTL_MS + 40);
  await tracker.reapStale();
  const keys = new Set(history.flatMap((op) => ((op.input as { key?: { n: number } }).key ? [(op.input as { key: { n: number } }).key.n] : [])));
  await Promise.all([...keys].map((n) => tracker.get({ n })));
}

/** Checks a store history, and that it holds what makes the check mean something. */
function expectLinearizable(label: string, history: readonly Operation[], toleranceMs = 0): CheckResult {
  const result = checkLinearizable(model, history, { toleranceMs });
  const count = (f: (op: Operation) => boolean) => history.filter(f).length;
  const out = (op: Operation) => op.output as Record<string, any> | undefined;
  const seen = {
    settlesRefused: count((op) => out(op)?.ok === false),
    reapsThatTookItems: count((op) => op.op === 'reapStale' && (out(op)?.reaped?.length ?? 0) > 0),
    claimNextWon: count((op) => op.op === 'claim' && !(op.input as { key?: unknown }).key && Boolean(out(op)?.lease)),
    claimByKeyWon: count((op) => op.op === 'claim' && Boolean((op.input as { key?: unknown }).key) && Boolean(out(op)?.lease)),
    claimByKeyNull: count((op) => op.op === 'claim' && Boolean((op.input as { key?: unknown }).key) && out(op)?.lease === null),
    batchClaims: count((op) => op.op === 'claimBatch' && (out(op)?.leases?.length ?? 0) > 0),
    batchCompletes: count((op) => op.op === 'completeBatch' && (out(op)?.results ?? []).some((r: { ok: boolean } | null) => r?.ok)),
  };
  console.log(
    `[linearizability] ${label}: ${result.operations} operations on ${result.partitions} keys (${result.pending} without an outcome), ` +
      `${result.explored} search states, checked in ${result.ms.toFixed(0)} ms; ${JSON.stringify(seen)}`,
  );
  // the report names the key, the longest linearizable prefix and what could not be placed
  expect(result.report).toBe('');
  expect(result.ok).toBe(true);
  for (const [what, n] of Object.entries(seen)) expect(n, `the history must contain ${what}`).toBeGreaterThan(0);
  return result;
}

/** `clients` recorded clients in this process on one store, 400 random calls each. */
async function inProcess(store: Store, clients: number) {
  const history = memoryHistory();
  const definition = pipelineDefinition(store, { ttlMs: TTL_MS, backoff });
  const trackers = Array.from({ length: clients }, (_, i) => {
    const tracker = new Tracker(definition);
    recordTracker(tracker, history, `c${i}`);
    // every other client claims with a `claimed` listener, through `priorDeadline`
    if (i % 2 === 1) tracker.on('claimed', () => {});
    return tracker;
  });
  await trackers[0]!.init();
  await Promise.all(
    trackers.map((tracker, i) => runClient(tracker, { owner: `c${i}`, seed: i + 1, keys: 24, driftEvery: 25, operations: 400, ttlMs: TTL_MS, stale: i < 2 })),
  );
  await finish(trackers[0]!, history.operations);
  return history.operations;
}

/** `processes` child processes with 2 clients each against one database, then a final reap and reads from here. */
async function acrossProcesses(kind: 'sqlite' | 'postgres' | 'redis', target: string, processes: number) {
  const dir = mkdtempSync(join(tmpdir(), 'leasehold-lin-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const table = `lin_${tag}`;
  const startAt = Date.now() + 1_500;
  const outputs = await Promise.all(
    Array.from({ length: processes }, (_, p) =>
      run(process.execPath, [childScript, kind, target, table, join(dir, `p${p}.jsonl`), `p${p}`, String(p + 1), '2', '300', String(TTL_MS), String(startAt)], {
        timeout: 60_000,
      }),
    ),
  );
  for (const { stdout } of outputs) expect(JSON.parse(stdout.trim().split('\n').at(-1)!).problems).toEqual([]);
  let store: Store;
  if (kind === 'sqlite') {
    const { SqliteStore } = await import('../src/stores/sqlite.js');
    const sqlite = new SqliteStore({ filename: target, table });
    cleanups.push(() => sqlite.close());
    store = sqlite;
  } else if (kind === 'redis') {
    const { Redis } = await import('ioredis');
    const { RedisStore } = await import('../src/stores/redis.js');
    const client = new Redis(target);
    cleanups.push(() => client.quit().then(() => {}));
    store = new RedisStore({ client, prefix: table });
  } else {
    const { default: pg } = await import('pg');
    const { PostgresStore } = await import('../src/stores/postgres.js');
    const pool = new pg.Pool({ connectionString: target, max: 2 });
    cleanups.push(() => pool.end());
    store = new PostgresStore({ pool, table });
  }
  const tracker = new Tracker(pipelineDefinition(store, { ttlMs: TTL_MS, backoff }));
  const sink = fileHistory(join(dir, 'test.jsonl'));
  recordTracker(tracker, sink, 'test');
  await finish(tracker, readHistory(dir));
  sink.close();
  return readHistory(dir);
}

describe('linearizability of recorded histories', () => {
  it('MemoryStore: 6 concurrent clients in this process', async () => {
    const history = await inProcess(new MemoryStore(), 6);
    expectLinearizable('memory', history);

    // the same history with one refused settle doctored into an accepted one is caught, by name
    const victim = history.find((op) => (op.output as { ok?: boolean } | undefined)?.ok === false && op.op !== 'renew')!;
    const doctored = history.map((op) => (op === victim ? { ...op, output: { ok: true } } : op));
    const result = checkLinearizable(model, doctored);
    expect(result.ok).toBe(false);
    expect(result.failures[0]!.unplaced.map((u) => u.step.source.id)).toContain(victim.id);
    expect(result.report).toContain(`op ${victim.id})`);

    // each effect happened inside its call's interval, so widening every interval keeps the history
    // linearizable while giving the search many more orders to try
    const rnd = random(7);
    const wide = history.map((op) => ({ ...op, call: op.call - rnd() * 50, ...(op.ret === undefined ? {} : { ret: op.ret + rnd() * 50 }) }));
    const widened = checkLinearizable(model, wide);
    expect(widened.report).toBe('');
  });

  it('MongoStore over the in-process Collection double (or MONGODB_URI): 6 concurrent clients', async () => {
    const uri = inject('mongoUri');
    let collection: MongoCollection;
    if (uri) {
      const client = await MongoClient.connect(uri);
      cleanups.push(() => client.close());
      collection = client.db('leasehold_test').collection(`lin_${tag}`);
    } else {
      console.log('[linearizability] MongoDB: no server here, so the in-process mingo Collection double stands in (set MONGODB_URI to use a server)');
      collection = new CollectionDouble() as unknown as MongoCollection;
    }
    expectLinearizable(`mongodb (${inject('mongoSource')})`, await inProcess(new MongoStore({ collection }), 6));
  });

  it('SQLite (temp file): 3 processes with 2 clients each', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'leasehold-lin-sqlite-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    // every process stamps calls with the machine's one monotonic clock, so no slack is needed
    expectLinearizable('sqlite', await acrossProcesses('sqlite', join(dir, 'lin.sqlite'), 3));
  });

  it('PostgreSQL (embedded): 3 processes with 2 clients each', async () => {
    expectLinearizable('postgres', await acrossProcesses('postgres', inject('postgresUrl'), 3));
  });

  // without a server the setup's banner says so; this test then reports itself skipped
  it.skipIf(!inject('redisUrl'))(`Redis (${inject('redisSource')}): 3 processes with 2 clients each`, async () => {
    expectLinearizable('redis', await acrossProcesses('redis', inject('redisUrl'), 3), 2);
  });
});

// The checker found this in MongoStore histories: for reapStale, claimBatch and completeBatch the
// store used to run one updateMany/bulkWrite and then read the changed documents back by an op
// stamp. Whatever another client did to those documents between the two commands was reported as
// if this operation had done it, and a document another batch re-stamped in between was not found
// at all. Batches are now one guarded findOneAndUpdate per item, whose answer is what it did. The
// double lets these regression tests run another client's call right after the batch's write.
describe('MongoStore: a batch operation reports what it did, not what happened after it', () => {
  /** A Collection double that runs `between` once, right after the next write, before the store sees its answer. */
  function doubleWithGap() {
    const double = new CollectionDouble();
    let between: (() => Promise<unknown>) | undefined;
    const write =
      <A extends unknown[], R>(f: (...args: A) => Promise<R>) =>
      async (...args: A) => {
        const result = await f(...args);
        const run = between;
        between = undefined;
        if (run) await run();
        return result;
      };
    // every kind of write: a batch put back on updateMany/bulkWrite plus a read-back fails these tests again
    Object.assign(double, {
      findOneAndUpdate: write(double.findOneAndUpdate.bind(double)),
      updateMany: write(double.updateMany.bind(double)),
      bulkWrite: write(double.bulkWrite.bind(double)),
    });
    return { collection: double as unknown as MongoCollection, gap: (f: () => Promise<unknown>) => void (between = f) };
  }

  it('reapStale: the reaped event carries the fence and status the reap left, not a later claim’s', async () => {
    const { collection, gap } = doubleWithGap();
    const definition = pipelineDefinition(new MongoStore({ collection }), { ttlMs: 30, backoff: () => 0 });
    const [reaper, other] = [new Tracker(definition), new Tracker(definition)];
    await reaper.track({ n: 1 });
    expect((await reaper.claim('work', { owner: 'stale', key: { n: 1 } }))?.fence).toBe(1);
    await sleep(60);
    const reaped: Array<{ fence: number; status: string }> = [];
    reaper.on('reaped', (e) => reaped.push({ fence: e.fence, status: e.status }));
    gap(() => other.claim('work', { owner: 'other', key: { n: 1 } }));
    await reaper.reapStale();
    expect((await reaper.get({ n: 1 }))?.fence).toBe(3);
    expect(reaped).toEqual([{ fence: 2, status: 'new' }]);
  });

  it('completeBatch: a complete that was applied is reported ok, even if another batch claims the item at once', async () => {
    const { collection, gap } = doubleWithGap();
    const definition = pipelineDefinition(new MongoStore({ collection }), { ttlMs: 5_000 });
    const [worker, next] = [new Tracker(definition), new Tracker(definition)];
    await worker.track({ n: 1 });
    const [lease] = await worker.claimBatch('work', { owner: 'w', limit: 1 });
    gap(() => next.claimBatch('check', { owner: 'next', limit: 2 }));
    const [result] = await worker.completeBatch([lease!]);
    expect((await worker.get({ n: 1 }))?.status).toBe('checking');
    expect(result!.ok).toBe(true);
  });
});

// ---- the checker must be able to fail ----

const jobModel = itemModel({ initial: 'queued', stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } }, retry: { maxAttempts: 3 } });
const key = { n: 1 };
const lease = (fence: number, attempt = 1) => ({ stage: 'run', key, fence, attempt });
/** An operation that returned. */
const op = (id: string, name: string, input: unknown, output: unknown, call: number, ret: number): Operation => ({
  id,
  process: id.split(':')[0]!,
  op: name,
  input,
  output,
  pending: false,
  call,
  ret,
});
/** An operation of a killed process: no return. */
const killed = (id: string, name: string, input: unknown, call: number): Operation => ({ id, process: id.split(':')[0]!, op: name, input, pending: true, call });
const tracked = op('setup:1', 'track', { key }, { created: true, status: 'queued', fence: 0, attempts: 0 }, 0, 1);
const claimedByA = op('A:1', 'claim', { stage: 'run', key }, { lease: lease(1) }, 2, 3);

function expectViolation(history: Operation[], offending: string, says: string) {
  const result = checkLinearizable(jobModel, history);
  console.log(`[linearizability] a doctored history, as the checker reports it:\n${result.report}`);
  expect(result.ok).toBe(false);
  expect(result.failures).toHaveLength(1);
  expect(result.failures[0]!.key).toBe('{"n":1}');
  expect(result.failures[0]!.unplaced.map((u) => u.step.source.id)).toEqual([offending]);
  expect(result.failures[0]!.unplaced[0]!.reason).toContain(says);
  expect(result.report).toContain(`op ${offending})`);
  expect(result.report).toContain('longest linearizable prefix');
  return result;
}

describe('the checker reports doctored histories', () => {
  it('a double claim: a second claim wins while the first lease is held', () => {
    const result = expectViolation([tracked, claimedByA, op('B:1', 'claim', { stage: 'run' }, { lease: { ...lease(1), key } }, 4, 5)], 'B:1', 'status running is not a `from` status');
    expect(result.failures[0]!.prefix.map((p) => p.step.source.id)).toEqual(['setup:1', 'A:1']);
  });

  it('a double claim by overlapping calls, each given its own fence', () => {
    const result = checkLinearizable(jobModel, [tracked, op('A:1', 'claim', { stage: 'run', key }, { lease: lease(1) }, 2, 6), op('B:1', 'claim', { stage: 'run', key }, { lease: lease(2) }, 3, 7)]);
    expect(result.ok).toBe(false);
    expect(result.report).toMatch(/op (A|B):1\)/);
  });

  it('a stale complete accepted after the item was reaped and claimed again', () => {
    expectViolation(
      [
        tracked,
        claimedByA,
        op('R:1', 'reapStale', {}, { reaped: [{ key, fence: 2, status: 'queued', time: 11 }] }, 10, 12),
        op('B:1', 'claim', { stage: 'run' }, { lease: lease(3, 2) }, 13, 14),
        op('A:2', 'complete', { lease: lease(1) }, { ok: true, status: 'done' }, 20, 21),
      ],
      'A:2',
      'the lease (fence 1) is not held',
    );
  });

  it('a stale read: get returns the state from before a complete that had returned', () => {
    expectViolation(
      [
        tracked,
        claimedByA,
        op('A:2', 'complete', { lease: lease(1) }, { ok: true, status: 'done' }, 4, 5),
        op('C:1', 'get', { key }, { item: { status: 'running', fence: 1, attempts: 1 } }, 6, 7),
      ],
      'C:1',
      'get returned running fence=1',
    );
  });

  it('a missed reap: the item changed hands with no reap in the history to explain it', () => {
    expectViolation(
      [
        tracked,
        claimedByA,
        // the reaper's record leaves out the item it took
        op('R:1', 'reapStale', {}, { reaped: [] }, 10, 12),
        op('B:1', 'claim', { stage: 'run', key }, { lease: lease(3, 2) }, 13, 14),
      ],
      'B:1',
      'status running is not a `from` status',
    );
  });

  it('a claim by key that returns null while the item is claimable at once', () => {
    expectViolation([tracked, op('B:1', 'claim', { stage: 'run', key }, { lease: null }, 4, 5)], 'B:1', 'claimable at once');
  });
});

describe('the recorder', () => {
  it('leaves a call cut short without a return (pending), keeps what a reap took, and skips a torn last line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'leasehold-lin-rec-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'p.jsonl');
    const sink = fileHistory(file);
    sink.begin({ id: 'p:1', process: 'p', op: 'track', input: { key }, call: 1 });
    sink.end('p:1', { output: { created: true, status: 'queued', fence: 0, attempts: 0 }, ret: 2 });
    sink.begin({ id: 'p:2', process: 'p', op: 'claim', input: { stage: 'run' }, call: 3 });
    sink.begin({ id: 'p:3', process: 'p', op: 'reapStale', input: {}, call: 4 });
    sink.reaped('p:3', { key, fence: 2, status: 'queued', time: 5 });
    sink.close();
    const { appendFileSync } = await import('node:fs');
    appendFileSync(file, '{"t":"ret","id":"p:2","outp');
    const ops = readHistory(dir);
    expect(ops.map((o) => [o.id, o.pending])).toEqual([['p:1', false], ['p:2', true], ['p:3', true]]);
    expect(ops[2]!.output).toEqual({ reaped: [{ key, fence: 2, status: 'queued', time: 5 }] });
    // the pending claim-next explains the fence the reap reports
    expect(checkLinearizable(jobModel, ops).report).toBe('');
  });

  it('records the calls work() makes, and a completeBatch once (not again as the completes it falls back to)', async () => {
    const store = new MemoryStore();
    // a store that cannot settle in batches: completeBatch calls complete once per lease
    Object.defineProperty(store, 'capabilities', { value: { batchClaim: true, batchSettle: false } });
    const tracker = new Tracker(pipelineDefinition(store, { ttlMs: 5_000 }));
    const history = memoryHistory();
    const recording = recordTracker(tracker, history, 'w');
    await Promise.all([0, 1, 2].map((n) => tracker.track({ n })));
    const [a, b] = await tracker.claimBatch('work', { owner: 'w', limit: 2 });
    await tracker.completeBatch([a!, b!]);
    const worker = tracker.work('work', async () => {}, { owner: 'w' });
    while ((await tracker.get({ n: 2 }))?.status !== 'worked') await sleep(5);
    await worker.stop();
    recording.stop();
    expect(history.operations.filter((o) => o.op === 'complete')).toHaveLength(1);
    expect(history.operations.filter((o) => o.op === 'completeBatch')).toHaveLength(1);
    expect(history.operations.some((o) => o.op === 'claimBatch' && o.process === 'w' && (o.output as { leases: unknown[] }).leases.length === 1)).toBe(true);
    expect(recording.problems).toEqual([]);
    expect(checkLinearizable(model, history.operations).report).toBe('');
  });
});

describe('the checker gives up loudly', () => {
  it('a search that runs out of budget is a failure, never a pass', () => {
    const result = checkLinearizable(jobModel, [tracked, claimedByA], { budget: 1 });
    expect(result.ok).toBe(false);
    expect(result.failures[0]!.gaveUp).toBe(true);
    expect(result.report).toContain('NOT CHECKED: key {"n":1}');
  });
});

describe('the checker accepts what an unknown outcome allows', () => {
  const reapedAt = (fence: number, t: number) => op('R:1', 'reapStale', {}, { reaped: [{ key, fence, status: 'queued', time: t }] }, t - 1, t + 1);

  it('a killed process’s claim-next may have taken the item (the fence gap a reap reveals)', () => {
    const history = [tracked, killed('A:1', 'claim', { stage: 'run' }, 2), reapedAt(2, 10), op('B:1', 'claim', { stage: 'run', key }, { lease: null }, 12, 13)];
    expect(checkLinearizable(jobModel, history).report).toBe('');
    // without the pending claim nothing explains the reap
    expect(checkLinearizable(jobModel, history.filter((o) => o.id !== 'A:1')).ok).toBe(false);
  });

  it('a killed process’s complete may have taken effect, or not', () => {
    const get = (status: string) => op('C:1', 'get', { key }, { item: { status, fence: 1, attempts: status === 'done' ? 0 : 1 } }, 20, 21);
    const killedComplete = killed('A:2', 'complete', { lease: lease(1) }, 5);
    expect(checkLinearizable(jobModel, [tracked, claimedByA, killedComplete, get('done')]).ok).toBe(true);
    expect(checkLinearizable(jobModel, [tracked, claimedByA, killedComplete, get('running')]).ok).toBe(true);
    // but only after it was called
    const early = op('C:0', 'get', { key }, { item: { status: 'done', fence: 1, attempts: 0 } }, 3.5, 4);
    expect(checkLinearizable(jobModel, [tracked, claimedByA, killedComplete, early]).ok).toBe(false);
  });

  it('a claim by key may return null while a backoff may still be running', () => {
    const history = [
      tracked,
      claimedByA,
      op('A:2', 'fail', { lease: lease(1), retry: true }, { ok: true, status: 'queued' }, 4, 5),
      op('B:1', 'claim', { stage: 'run', key }, { lease: null }, 6, 7),
      op('B:2', 'claim', { stage: 'run', key }, { lease: lease(2, 2) }, 8, 9),
    ];
    expect(checkLinearizable(jobModel, history).report).toBe('');
  });
});
