// Records every call a Tracker makes through its public API, with the time it was called and the
// time it returned, as a history for the linearizability checker. It replaces the methods on the
// one tracker object (not on the class), so calls made by `tracker.work()` are recorded too.
// Plain JavaScript, so that chaos worker processes running on dist/ can use it.
import { AsyncLocalStorage } from 'node:async_hooks';
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Milliseconds comparable across the processes of one machine: the kernel's monotonic clock, which
 * every process reads alike. (`performance.timeOrigin + performance.now()` is not: each process
 * estimates its own time origin from the wall clock at start-up, and two processes were seen to
 * disagree by more than 5 ms, enough to make a correct history look impossible.)
 */
export const now = () => Number(process.hrtime.bigint()) / 1e6;

const plain = (value) => JSON.parse(JSON.stringify(value ?? null));
const leaseOf = (lease) => ({ stage: lease.stage, key: plain(lease.key), fence: lease.fence, attempt: lease.attempt });
const itemOf = (item) => ({ status: item.status, fence: item.fence, attempts: item.attempts });

/** What each recorded method was asked and what it answered, as plain JSON. */
const METHODS = {
  track: {
    input: (key, _data, options) => ({ key: plain(key), delayed: Boolean(options?.notBefore || options?.delayMs) }),
    output: (r) => ({ created: r.created, ...itemOf(r.item) }),
  },
  claim: {
    input: (stage, options) => ({ stage, ...(options?.key === undefined ? {} : { key: plain(options.key) }) }),
    output: (lease) => ({ lease: lease ? leaseOf(lease) : null }),
  },
  claimBatch: {
    input: (stage, options) => ({ stage, limit: options?.limit }),
    output: (leases) => ({ leases: leases.map(leaseOf) }),
  },
  renew: { input: (lease) => ({ lease: leaseOf(lease) }), output: () => ({ ok: true }), lost: true },
  complete: {
    input: (lease, options) => ({ lease: leaseOf(lease), ...(options?.to ? { to: options.to } : {}) }),
    output: (item) => ({ ok: true, status: item.status }),
    lost: true,
  },
  completeBatch: {
    input: (leases, options) => ({ leases: leases.map(leaseOf), ...(options?.to ? { to: options.to } : {}) }),
    // only `ok` and `lease` of each result are used, matched to the leases asked for
    output: (results, [leases]) => ({ results: leases.map((l) => results.find((r) => r.lease === l)).map((r) => (r ? { ok: r.ok } : null)) }),
  },
  fail: {
    input: (lease, error, options) => ({ lease: leaseOf(lease), retry: !(options?.retry === false || error?.name === 'NonRetryableError') }),
    output: (item) => ({ ok: true, status: item.status }),
    lost: true,
  },
  release: {
    input: (lease, options) => ({ lease: leaseOf(lease), delayMs: options?.delayMs ?? 0 }),
    output: (item) => ({ ok: true, status: item.status }),
    lost: true,
  },
  reapStale: { input: () => ({}), output: (r, _args, reaped) => ({ reaped, retried: r.retried, failed: r.failed }) },
  get: { input: (key) => ({ key: plain(key) }), output: (item) => ({ item: item ? itemOf(item) : null }) },
};

/**
 * Records the calls of `tracker` into `sink` under the client name `name`. Returns what the
 * recorder noticed that it could not record (expected to stay empty) and a way to stop.
 * @param {any} tracker
 * @param {import('./history-recorder.d.mts').HistorySink} sink
 * @param {string} name
 * @param {(problem: string) => void} [onProblem] told of each problem as it is noticed (a process
 *   whose recorder cannot be read at the end, such as a chaos worker, sends them on)
 */
export function recordTracker(tracker, sink, name, onProblem) {
  // calls a recorded call makes itself (completeBatch falling back to complete) are part of it
  const inside = new AsyncLocalStorage();
  const reaps = [];
  const problems = [];
  let seq = 0;
  const unlisten = tracker.on('reaped', (e) => {
    const time = now();
    // the reapStale call the event is emitted in (two may overlap: a worker's reaper and an
    // explicit call); else the one that started first, the earliest moment the item can have been taken
    const running = inside.getStore();
    const reap = typeof running === 'object' ? running : reaps[0];
    if (!reap) {
      const problem = `a reap of ${JSON.stringify(e.key)} outside a recorded reapStale call`;
      problems.push(problem);
      onProblem?.(problem);
      return;
    }
    const entry = { key: plain(e.key), fence: e.fence, status: e.status, time };
    reap.reaped.push(entry);
    sink.reaped(reap.id, entry);
  });
  for (const [method, spec] of Object.entries(METHODS)) {
    const original = tracker[method];
    tracker[method] = function recorded(...args) {
      if (inside.getStore()) return original.apply(tracker, args);
      const id = `${name}:${++seq}`;
      sink.begin({ id, process: name, op: method, input: spec.input(...args), call: now() });
      const reap = method === 'reapStale' ? { id, reaped: [] } : undefined;
      if (reap) reaps.push(reap);
      const done = () => reap && reaps.splice(reaps.indexOf(reap), 1);
      return inside.run(reap ?? true, () => original.apply(tracker, args)).then(
        (result) => {
          const ret = now();
          done();
          sink.end(id, { output: spec.output(result, args, reap?.reaped), ret });
          return result;
        },
        (error) => {
          const ret = now();
          done();
          if (spec.lost && error?.name === 'LeaseLostError') sink.end(id, { output: { ok: false }, ret });
          // anything else (a store error): whether it took effect is unknown
          else sink.end(id, { error: `${error?.name}: ${error?.message}`, ret, ...(reap ? { output: { reaped: reap.reaped } } : {}) });
          throw error;
        },
      );
    };
  }
  return {
    problems,
    stop() {
      unlisten();
      for (const method of Object.keys(METHODS)) delete tracker[method];
    },
  };
}

/** A history kept in this process. */
export function memoryHistory() {
  const operations = [];
  const byId = new Map();
  return {
    operations,
    begin(call) {
      const op = { ...call, pending: true };
      operations.push(op);
      byId.set(call.id, op);
    },
    reaped(id, entry) {
      const op = byId.get(id);
      op.output ??= { reaped: [] };
      if (op.output.reaped !== undefined && !op.output.reaped.includes(entry)) op.output.reaped.push(entry);
    },
    end(id, result) {
      const op = byId.get(id);
      Object.assign(op, result, { pending: result.error !== undefined });
    },
    close() {},
  };
}

/**
 * A history written as JSON lines to `path`, one line per call, return and reaped item, each
 * written before the call goes on: a process killed mid-call leaves its call without a return.
 * @param {string} path
 */
export function fileHistory(path) {
  const fd = openSync(path, 'a');
  const write = (line) => writeSync(fd, `${JSON.stringify(line)}\n`);
  return {
    begin: (call) => write({ t: 'call', ...call }),
    reaped: (id, entry) => write({ t: 'reaped', id, ...entry }),
    end: (id, result) => write({ t: 'ret', id, ...result }),
    close: () => closeSync(fd),
  };
}

/**
 * Reads the histories written by {@link fileHistory}: every `.jsonl` file in a folder, or the
 * given files. A call without a return is pending.
 * @param {string | string[]} where
 */
export function readHistory(where) {
  const files = Array.isArray(where) ? where : readdirSync(where).filter((f) => f.endsWith('.jsonl')).map((f) => join(where, f));
  const ops = new Map();
  for (const file of files) {
    for (const text of readFileSync(file, 'utf8').split('\n')) {
      if (!text) continue;
      let line;
      try {
        line = JSON.parse(text);
      } catch {
        // only a process killed in the middle of a write leaves a torn line, and it was the last
        continue;
      }
      const { t, id, ...rest } = line;
      if (t === 'call') ops.set(id, { id, ...rest, pending: true });
      const op = ops.get(id);
      if (!op) continue;
      if (t === 'reaped') {
        op.reapedSoFar ??= [];
        op.reapedSoFar.push(rest);
      } else if (t === 'ret') {
        Object.assign(op, rest, { pending: rest.error !== undefined });
      }
    }
  }
  return [...ops.values()].map(({ reapedSoFar, ...op }) => (op.output === undefined && reapedSoFar ? { ...op, output: { reaped: reapedSoFar } } : op));
}
