/**
 * The settle family: renew, complete, fail and release, one at a time or in batches, each
 * guarded by the lease (rule 3). Internal; the Tracker's public methods call these.
 * @module
 */
import type { Item } from '../codec.js';
import { ConfigError, describeKey, LeaseLostError } from '../errors.js';
import { abortLease, type InDoubt, type LeaseState } from '../lease.js';
import type { BatchResult } from '../results.js';
import { guardCondition, type Change, type ItemOutcome, type LeaseGuard, type SettleOutcome } from '../store.js';
import { completionChange, errorMessage, failureChange, releaseChange, willRetry } from '../transitions.js';
import { describe, requireDelayMs, requireKnownOptions } from '../validate.js';
import type { AnyLease, Core } from './core.js';

/** Settles in doubt kept per lease (see `LeaseState.inDoubt`). */
const IN_DOUBT_MAX = 8;

/** The reason a settled lease's signal carries. */
const SETTLED = new Error('[leasehold] lease settled');

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

/** A lease ready to settle: its state, the change, and how to report the outcome. */
interface Prepared {
  readonly lease: AnyLease;
  readonly state: LeaseState;
  /** What the settle does: `completed`, `failed` or `released` (renew: none). */
  readonly by?: InDoubt['by'];
  readonly change: Change;
  /** The decoded data after the change, when the change writes data. */
  readonly data?: { value: unknown };
  /** Reports the outcome (events, wake-ups); reads only where the item is now. */
  readonly done: (stored: SettleOutcome) => void;
}

function guard(core: Core, lease: AnyLease, state: LeaseState): LeaseGuard {
  return { ref: state.ref, key: state.storeKey, status: core.stage('lease', lease.stage).active, fence: lease.fence };
}

/**
 * The item after a settle, rebuilt from the lease's item and the change with the outcome the
 * store reported: nothing is read back or decoded again (key and data were decoded once, at
 * the claim; new data was checked when written).
 */
function settledItem(core: Core, operation: string, lease: AnyLease, written: Pick<Prepared, 'change' | 'data'>, stored: ItemOutcome): Item {
  return core.codec.settled(operation, lease.item, written.change, stored, written.data ? written.data.value : lease.item.data);
}

/**
 * A guarded update found its lease gone: reads what holds the item now. Where an earlier settle
 * of this lease failed without an answer ({@link LeaseState.inDoubt}) and the item is where that
 * settle put it ({@link appliedBy}), that settle applied: it is reported now, and a retry of the
 * same settle (`p`) returns the item's outcome instead of an error. Otherwise the
 * LeaseLostError to throw.
 */
async function lost(core: Core, operation: string, lease: AnyLease, state: LeaseState, p?: Prepared): Promise<LeaseLostError | ItemOutcome> {
  const [now] = await core.call(operation, lease.key, () => core.store.find({ key: state.storeKey }, { limit: 1, returning: 'state' }));
  const earlier = now && !state.recovered && !state.settled ? state.inDoubt?.find((c) => appliedBy(c, lease, state, now)) : undefined;
  if (now && earlier) {
    state.recovered = { applied: earlier, outcome: now };
    state.inDoubt = undefined;
    core.log('warn', lease, `an earlier ${operationOf(earlier.by)} whose answer was lost had applied; the item is in \`${now.status}\``);
    earlier.done(now);
  }
  // the same kind of settle sent again: it applied the first time (found now, or by a renew meanwhile)
  if (state.recovered && p?.by === state.recovered.applied.by) return state.recovered.outcome;
  const settledBy = state.settledBy === 'lost' ? undefined : state.settledBy;
  const error = new LeaseLostError({
    operation,
    key: lease.key,
    stage: lease.stage,
    expectedFence: lease.fence,
    held: { status: now?.status ?? null, fence: now?.fence ?? null, owner: now?.owner ?? null, leased: now ? core.def.activeStatuses.includes(now.status) : false },
    ...(settledBy ? { settledBy } : {}),
  });
  // a renew that fails while this process settles the lease lost nothing: the settle moved it on;
  // a lease found lost before is told once (each later call on it only throws)
  if (!settledBy && state.settledBy !== 'lost' && !(operation === 'renew' && state.settling > 0)) {
    markSettled(state, 'lost', error);
    core.log('warn', lease, error.message);
    core.emitLease('leaseLost', lease, { operation, actualFence: error.actualFence, status: error.status });
  }
  return error;
}

/**
 * Whether the item is where the settle in doubt put it: the same item (a purged key tracked
 * again is another item, whose fence restarts), the same fence (every claim, reap and cancel
 * advances it, so nobody else has moved the item since), and that settle's status, attempts
 * (a complete resets them, a release gives one back) and last error.
 */
function appliedBy(earlier: InDoubt, lease: AnyLease, state: LeaseState, now: ItemOutcome & { attempts: number; lastError: string | null }): boolean {
  const { status, attempts, lastError } = earlier.change;
  const expected = attempts === 'reset' ? 0 : attempts === 'decrement' ? Math.max(0, lease.attempt - 1) : lease.attempt;
  return (
    sameRef(now.ref, state.ref) &&
    now.fence === lease.fence &&
    now.status === status &&
    now.attempts === expected &&
    (lastError === undefined || now.lastError === lastError)
  );
}

/**
 * Whether two refs name the same row: a store's ref is a number, a string, a bigint or an object
 * with `equals` (a MongoDB ObjectId); another object is compared by its JSON, never by
 * `String()` (which makes every plain object `[object Object]`). Internal; exported for its test.
 */
export function sameRef(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) return (typeof a !== 'object' || a === null) && (typeof b !== 'object' || b === null) && String(a) === String(b);
  const equals = (a as { equals?: unknown }).equals;
  if (typeof equals === 'function') return equals.call(a, b) === true;
  return JSON.stringify(a) === JSON.stringify(b);
}

const operationOf = (by: InDoubt['by']): string => ({ completed: 'complete', failed: 'fail', released: 'release' })[by];

/** Marks a lease settled and aborts its signal: with `SETTLED`, or for a lost lease with why. */
function markSettled(state: LeaseState, by: NonNullable<LeaseState['settledBy']>, reason: unknown = SETTLED): void {
  state.settled = true;
  state.settledBy ??= by;
  abortLease(state, reason);
}

/**
 * Runs a settle's store call with its leases counted as settling (see `LeaseState.settling`).
 * A call that fails leaves each settle in doubt: it may have applied (see `lost`).
 */
async function settling<T>(prepared: readonly Prepared[], run: () => Promise<T>): Promise<T> {
  for (const p of prepared) p.state.settling++;
  try {
    return await run();
  } catch (error) {
    for (const p of prepared) {
      if (!p.by) continue;
      const candidates = (p.state.inDoubt ??= []);
      // bounded: a caller resending without end keeps the latest few
      if (candidates.length === IN_DOUBT_MAX) candidates.shift();
      candidates.push({ by: p.by, change: p.change, ...(p.data ? { data: p.data } : {}), done: p.done });
    }
    throw error;
  } finally {
    for (const p of prepared) p.state.settling--;
  }
}

/** Runs one guarded update; a lease no longer held throws LeaseLostError and changes nothing. */
async function guarded(core: Core, operation: string, p: Prepared): Promise<ItemOutcome> {
  // claimed through another store object over the same items: this one may not be initialised
  if (p.state.store !== core.store) await core.init();
  const update = () =>
    core.call(operation, p.lease.key, () => core.store.update(guardCondition(guard(core, p.lease, p.state)), p.change, { limit: 1, returning: 'state', outcomeOnly: true }));
  const [stored] = await (operation === 'renew' ? update() : settling([p], update));
  if (stored) {
    p.done(stored);
    return stored;
  }
  const now = await lost(core, operation, p.lease, p.state, p);
  if (now instanceof LeaseLostError) throw now;
  return now;
}

/** Rule 3: extends the lease by the ttl (store clock). */
export async function renew(core: Core, lease: AnyLease): Promise<void> {
  const state = core.leaseState('renew', lease);
  const stage = core.stage('renew', lease.stage);
  const sentAt = performance.now();
  const stored = await guarded(core, 'renew', { lease, state, change: { status: stage.active, deadline: { ms: core.def.ttlMs } }, done: () => {} });
  state.expiresAt = stored.deadline;
  state.provenAt = Math.max(state.provenAt, sentAt);
  if (core.events.has('renewed')) core.emitLease('renewed', lease, { expiresAt: stored.deadline });
}

/** Prepares a completion: checks `to`, merges and checks a data patch. Throws before any write. */
export function prepareComplete(core: Core, operation: string, lease: AnyLease, options: { to?: unknown; data?: unknown }): Prepared {
  const state = core.leaseState(operation, lease);
  const stage = core.stage(operation, lease.stage);
  requireKnownOptions(operation, options, ['to', 'data']);
  const to = options?.to ?? stage.done[0]!;
  if (typeof to !== 'string' || !stage.done.includes(to)) {
    throw new ConfigError(`${operation}.to`, `\`${String(to)}\` is not a done status of stage \`${stage.name}\` (${stage.done.join(', ')}); nothing was written to item ${describeKey(lease.key)}.`);
  }
  let data: { value: unknown; stored: unknown } | undefined;
  if (options?.data !== undefined) {
    // the lease holds the item exclusively, so the data it claimed is the stored data; the patch
    // merges over its stored form, which is valid schema input
    const merges = isPlainObject(state.storedData) && isPlainObject(options.data);
    const merged = merges ? { ...(state.storedData as object), ...(options.data as object) } : options.data;
    data = core.codec.data(operation, lease.key, merged, options.data, merges ? state.storedData : undefined);
  }
  return {
    lease,
    state,
    by: 'completed',
    change: completionChange(to, data?.stored),
    ...(data ? { data } : {}),
    done: (stored) => {
      markSettled(state, 'completed');
      core.wake(stored.status);
      core.log('debug', lease, `completed into \`${stored.status}\``);
      if (core.events.has('completed')) {
        core.emitLease('completed', lease, { status: stored.status, durationMs: performance.now() - state.startedAt });
      }
    },
  };
}

/**
 * Prepares a failure: retry after backoff, or park (rule 4). `at` names the options in errors
 * (a `failBatch` entry by its position).
 */
export function prepareFail(core: Core, operation: string, lease: AnyLease, error: unknown, options: { retry?: boolean } = {}, at = operation): Prepared {
  const state = core.leaseState(operation, lease);
  const stage = core.stage(operation, lease.stage);
  requireKnownOptions(at, options, ['retry']);
  // `retry: 0` or `'no'` would be taken as "retry": refused instead
  if (options.retry !== undefined && typeof options.retry !== 'boolean') {
    throw new ConfigError(`${at}.retry`, `expected \`true\` or \`false\` (or leave it out), got ${describe(options.retry)}; nothing was written.`);
  }
  const failure = failureChange(core.def, stage, lease.attempt, errorMessage(error), willRetry(core.def, lease.attempt, error, options.retry));
  const { retry } = failure;
  const lastError = failure.change.lastError!;
  return {
    lease,
    state,
    by: 'failed',
    change: failure.change,
    done: (stored) => {
      markSettled(state, 'failed');
      if (retry) core.wakeAt(stored.status, stored);
      core.log('warn', lease, `failed${retry ? ', will retry' : ', parked'}: ${lastError}`);
      core.emitLease('failed', lease, {
        error: lastError,
        willRetry: retry,
        nextAttemptAt: retry ? core.codec.settledNotBefore(stored) : null,
        status: stored.status,
        durationMs: performance.now() - state.startedAt,
      });
    },
  };
}

/** Prepares a release: back to the first `from` without counting the attempt. */
export function prepareRelease(core: Core, lease: AnyLease, options: { delayMs?: number } = {}): Prepared {
  const state = core.leaseState('release', lease);
  const stage = core.stage('release', lease.stage);
  requireKnownOptions('release', options, ['delayMs']);
  const ms = options.delayMs === undefined ? 0 : requireDelayMs('release.delayMs', options.delayMs);
  return {
    lease,
    state,
    by: 'released',
    change: releaseChange(stage, ms),
    done: (stored) => {
      markSettled(state, 'released');
      if (ms === 0) core.wake(stored.status);
      else core.wakeAt(stored.status, stored);
      core.log('debug', lease, `released into \`${stored.status}\`${ms === 0 ? '' : `, claimable in ${ms} ms`}`);
      core.emitLease('released', lease, { durationMs: performance.now() - state.startedAt });
    },
  };
}

/** Settles one prepared lease; returns the item as it is now. */
export async function settle(core: Core, operation: string, p: Prepared): Promise<Item> {
  const stored = await guarded(core, operation, p);
  // once a lease has `recovered`, a settle of it returns only as the resend of the attempt that
  // applied: the item is what that attempt wrote
  return settledItem(core, operation, p.lease, p.state.recovered?.applied ?? p, stored);
}

/**
 * Settles prepared leases with one `updateEach` where the store can batch, else one guarded
 * update each. A lost lease is reported in its result, never dropped. Each result says where
 * the item is now (status, and when it can be claimed next) and nothing more, so that the store
 * may send back only that and nothing is decoded per item.
 */
export async function settleBatch(core: Core, operation: string, prepared: readonly Prepared[]): Promise<Array<BatchResult<AnyLease>>> {
  if (prepared.some((p) => p.state.store !== core.store)) await core.init();
  const updates = prepared.map((p) => ({ guard: guard(core, p.lease, p.state), change: p.change }));
  const rows = await settling(prepared, () => core.updateEach(operation, updates, true));
  const results: Array<BatchResult<AnyLease> | Promise<BatchResult<AnyLease>>> = prepared.map((p, i) => {
    const stored = rows[i];
    const ok = (outcome: SettleOutcome) => ({ ok: true as const, lease: p.lease, status: outcome.status, notBefore: core.codec.settledNotBefore(outcome) });
    if (!stored) return lost(core, operation, p.lease, p.state, p).then((now) => (now instanceof LeaseLostError ? { ok: false as const, lease: p.lease, error: now } : ok(now)));
    p.done(stored);
    return ok(stored);
  });
  // a lost lease costs one read to report what holds the item now; settled ones cost nothing more
  return rows.includes(null) ? Promise.all(results) : (results as Array<BatchResult<AnyLease>>);
}
