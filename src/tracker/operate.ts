/**
 * The operate family: what an operator does to items — retry a parked item, cancel one,
 * reschedule one that waits, purge finished ones. Each is one conditional update (or delete),
 * or a bounded batch of them, under the same contract as the hand-offs. Internal.
 * @module
 */
import type { Item } from '../codec.js';
import { requireFinishedStatus, type NormalizedStage } from '../definition.js';
import { ConfigError, ValidationError } from '../errors.js';
import type { Condition, StoredItem } from '../store.js';
import { cancelUpdate, clipMessage, rescheduleUpdate, retryUpdate } from '../transitions.js';
import { requireAgeMs, requireDate, requireKnownOptions, requireLimit, requireNumber } from '../validate.js';
import { scheduleDelay, type TrackOptions } from './claim.js';
import type { Core } from './core.js';

/** Items changed or deleted per store call by the bulk verbs. */
export const OPERATE_BATCH = 500;

/**
 * The item an operator verb changed, decoded. The change is written already: an item whose
 * stored data no longer fits the schema (often why an operator acts on it) throws a
 * `ValidationError` that says so (`applied: true`), not one that reads as "nothing was written".
 */
function changed(core: Core, operation: string, stored: StoredItem): Item {
  try {
    return core.decode(operation, stored);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new ValidationError({
      operation,
      key: error.key,
      what: 'stored item',
      issues: error.issues,
      applied: true,
      hint: `The \`${operation}\` was applied: the item is now \`${stored.status}\`. But what is stored no longer matches the Tracker schema (edited by hand, or written by another version): fix or delete it in the database, or purge it once it is in a failed status.`,
    });
  }
}

/** The stages whose failed status is `status`; `stage` narrows them to one. */
function stagesFailingInto(core: Core, operation: string, stage: string | undefined): NormalizedStage[] {
  if (stage !== undefined) return [core.stage(operation, stage)];
  return [...core.def.stages.values()];
}

/**
 * Operator retry: an item parked in a stage's failed status goes back to that stage's first
 * `from` status with its attempts reset, claimable now. The stage is the one recorded when the
 * item was parked; `stage` narrows it to one. An item a declared stage parked in a status that
 * is no longer its failed one (a redeploy gave the stage a failed status of its own) goes back
 * to that stage too. An item with no stage recorded (parked by an older version, or tracked
 * into an initial status that is a stage's failed one), or with a stage the definition no
 * longer declares (renamed by a redeploy), goes to the stage named, or to the one stage that
 * fails into its status. Returns the item, or `null` when it was not parked.
 */
export async function retry(core: Core, key: unknown, options: { stage?: string } = {}): Promise<Item | null> {
  requireKnownOptions('retry', options, ['stage']);
  const storeKey = core.codec.key('retry', key);
  const stages = stagesFailingInto(core, 'retry', options.stage);
  await core.init();
  const back = (stored: StoredItem) => (core.wake(stored.status), changed(core, 'retry', stored));
  for (const stage of stages) {
    const { cond, change } = retryUpdate(stage, storeKey, parkedIn(core, stage));
    const [stored] = await core.call('retry', key, () => core.store.update(cond, change, { limit: 1 }));
    if (stored) return back(stored);
  }
  // no stage recorded (parked by an older version, or tracked into a gate: an initial status that
  // is a stage's failed one), or one no longer declared (renamed): read it, then retry exactly
  // that version, into the stage named or the one stage whose failed status holds it
  const [now] = await core.call('retry', key, () =>
    core.store.find({ key: storeKey, status: [...new Set(stages.map((s) => s.failed))] }, { limit: 1, returning: 'state' }),
  );
  if (!now || (now.stage !== null && core.def.stages.has(now.stage))) return null;
  const owners = stages.filter((s) => s.failed === now.status);
  if (owners.length !== 1) return null;
  const stage = owners[0]!;
  // a stage no longer declared may have left the item waiting here, not parked, where another
  // stage also claims from or completes into this status: only a status the stage owns says parked
  if (now.stage !== null && !ownsFailedStatus(core, stage)) return null;
  const { change } = retryUpdate(stage, storeKey);
  const [stored] = await core.call('retry', key, () =>
    core.store.update({ key: storeKey, status: [stage.failed], fence: now.fence, ...(now.stage === null ? {} : { stage: now.stage }) }, change, { limit: 1 }),
  );
  return stored ? back(stored) : null;
}

/**
 * Whether `stage`'s failed status is its own: no other stage fails into it, claims from it or
 * completes into it (items another stage released, failed back or completed there are that
 * stage's), so every item there was parked by `stage`, whatever stage it has recorded.
 */
function ownsFailedStatus(core: Core, stage: NormalizedStage): boolean {
  return [...core.def.stages.values()].every((s) => s === stage || (s.failed !== stage.failed && !s.from.includes(stage.failed) && !s.done.includes(stage.failed)));
}

/**
 * Where an item `stage` parked can be: its failed status, and any status items are only ever
 * parked in (some stage's failed status that no stage claims from or completes into), where an
 * item recorded under `stage` was parked by it when an older definition failed it there.
 */
export function parkedIn(core: Core, stage: NormalizedStage): string[] {
  const all = [...core.def.stages.values()];
  const parkingOnly = all.map((s) => s.failed).filter((status) => all.every((s) => !s.from.includes(status) && !s.done.includes(status)));
  return [...new Set([stage.failed, ...parkingOnly])];
}

/** A stored row's identity as a map key (a ref may be a number, a string or an ObjectId). */
const refKey = (ref: unknown): string => (typeof ref === 'object' && ref !== null ? JSON.stringify(ref) : `${typeof ref}:${String(ref)}`);

/**
 * Operator retry of many parked items, in bounded batches; returns how many items went back.
 * A batch that meets an item this call retried already (a worker whose handler keeps failing
 * parked it again) is the last: the call ends instead of chasing that worker for ever.
 */
export async function retryAll(core: Core, options: { stage?: string; limit?: number } = {}): Promise<number> {
  requireKnownOptions('retryAll', options, ['stage', 'limit']);
  const stages = stagesFailingInto(core, 'retryAll', options.stage);
  const limit = options.limit === undefined ? Number.POSITIVE_INFINITY : requireLimit('retryAll.limit', options.limit);
  await core.init();
  let sent = 0;
  const retried = new Set<string>();
  let again = false;
  for (const stage of stages) {
    const { change } = retryUpdate(stage, undefined);
    for (const cond of retryAllConditions(core, stage)) {
      while (sent < limit && !again) {
        const batch = Math.min(OPERATE_BATCH, limit - sent);
        const rows = await core.call('retryAll', undefined, () => core.store.update(cond, change, { limit: batch, ordered: true, returning: 'state' }));
        sent += rows.length;
        for (const row of rows) {
          const key = refKey(row.ref);
          again ||= retried.has(key);
          retried.add(key);
        }
        if (rows.length > 0) core.wake(rows[0]!.status);
        if (rows.length < batch) break;
      }
      if (again) return retried.size;
    }
  }
  return retried.size;
}

/**
 * What `retryAll` retries into `stage`: the items it parked (its failed status, and statuses
 * only ever parked in, where an older definition failed it). Where the stage owns its failed
 * status, every item there is its own too, also one with no stage recorded (parked by an older
 * version, or tracked into a gate) or under a stage no longer declared, but never one that
 * another declared stage parked (its failed status moved since: that stage's retry takes it). A
 * shared failed status keeps the recorded stage's check (retry those one by one, naming the
 * stage).
 */
function retryAllConditions(core: Core, stage: NormalizedStage): Condition[] {
  const { cond: recorded } = retryUpdate(stage, undefined, parkedIn(core, stage));
  if (!ownsFailedStatus(core, stage)) return [recorded];
  const others = [...core.def.stages.keys()].filter((name) => name !== stage.name);
  const elsewhere = recorded.status.filter((status) => status !== stage.failed);
  return [
    { status: [stage.failed], ...(others.length > 0 ? { notStage: others } : {}) },
    ...(elsewhere.length > 0 ? [{ ...recorded, status: elsewhere }] : []),
  ];
}

/**
 * The stages an item in `status` can be cancelled into: an active status belongs to one
 * stage; a waiting status to the stages that claim from it.
 */
function cancelTargets(core: Core, stage: string | undefined): Array<{ stage: NormalizedStage; statuses: string[] }> {
  const stages = stage === undefined ? [...core.def.stages.values()] : [core.stage('cancel', stage)];
  // one conditional update per stage: its waiting and active statuses; a status claimed from by
  // several stages is cancelled into the first (pass `stage` to choose)
  const taken = new Set<string>();
  return stages.map((st) => {
    const statuses = [...st.from, st.active].filter((s) => !taken.has(s));
    for (const s of statuses) taken.add(s);
    return { stage: st, statuses };
  });
}

/**
 * Operator cancel: an item that is waiting or held (not done, not already failed) goes to its
 * stage's failed status with `lastError = reason`. The fence advances, so a holder's next renew
 * or settle gets `LeaseLostError` and its `lease.signal` aborts at its next heartbeat. Returns
 * the item, or `null` when it was not cancellable.
 */
export async function cancel(core: Core, key: unknown, options: { reason?: string; stage?: string } = {}): Promise<Item | null> {
  requireKnownOptions('cancel', options, ['reason', 'stage']);
  const storeKey = core.codec.key('cancel', key);
  const reason = options.reason ?? 'cancelled';
  if (typeof reason !== 'string' || reason.length === 0) throw new ConfigError('cancel.reason', 'expected a non-empty string saying why.');
  await core.init();
  const targets = cancelTargets(core, options.stage).filter((t) => t.statuses.length > 0);
  const cancellable = targets.flatMap((t) => t.statuses);
  const lastError = clipMessage(`cancelled: ${reason}`);
  const updates = targets.map((target) => cancelUpdate(target.stage, target.statuses, storeKey, lastError));
  // one update per stage: between two of them a worker may move the item into a status an earlier
  // one covered (a retryable fail from one stage's active status back to a status another stage
  // claims from): an item found cancellable after all of them missed it is tried again
  for (let pass = 0; pass < CANCEL_PASSES; pass++) {
    for (const { cond, change } of updates) {
      const [stored] = await core.call('cancel', key, () => core.store.update(cond, change, { limit: 1 }));
      if (stored) return changed(core, 'cancel', stored);
    }
    if (targets.length < 2) return null;
    const [now] = await core.call('cancel', key, () => core.store.find({ key: storeKey, status: cancellable }, { limit: 1, returning: 'state' }));
    if (!now) return null;
  }
  return null;
}

/** How many times `cancel` goes over the stages for an item that moves under it. */
const CANCEL_PASSES = 3;

/**
 * Operator reschedule: an item waiting in a `from` status is not claimable before `notBefore`
 * (or for `delayMs`). Returns the item, or `null` when it was not waiting.
 */
export async function reschedule(core: Core, key: unknown, options: TrackOptions): Promise<Item | null> {
  const storeKey = core.codec.key('reschedule', key);
  const deadline = scheduleDelay('reschedule', options);
  if (!deadline) throw new ConfigError('reschedule.notBefore', 'give `notBefore` (a Date) or `delayMs`.');
  await core.init();
  const { cond, change } = rescheduleUpdate(core.def.fromStatuses, storeKey, deadline);
  const [stored] = await core.call('reschedule', key, () => core.store.update(cond, change, { limit: 1 }));
  if (!stored) return null;
  core.wakeAt(stored.status, stored);
  return changed(core, 'reschedule', stored);
}

/** Options of `purge`. */
export interface PurgeOptions<S extends string = string> {
  /** The status to delete from: a done status no stage claims from, or a failed status. */
  readonly status: S;
  /** Only items that finished before this time. */
  readonly finishedBefore?: Date;
  /**
   * Only items that finished more than this many milliseconds ago, by the store's clock (not
   * this process's, which may run ahead of it). Instead of `finishedBefore`.
   */
  readonly olderThanMs?: number;
  /**
   * At most this many items.
   * @default all that match, in batches of 500
   */
  readonly limit?: number;
}

/**
 * Deletes finished items in bounded batches: statuses no stage claims from or holds. An item
 * finishes when it enters such a status, and its deadline then records when, so the
 * `(status, deadline)` index serves the purge.
 */
export async function purge(core: Core, options: PurgeOptions): Promise<{ deleted: number }> {
  // a misspelt `finishedBefore` would delete every item in the status
  requireKnownOptions('purge', options, ['status', 'finishedBefore', 'olderThanMs', 'limit']);
  const status = requireFinishedStatus(core.def, 'purge.status', options?.status);
  const before = options.finishedBefore === undefined ? undefined : requireDate('purge.finishedBefore', options.finishedBefore);
  if (before !== undefined && options.olderThanMs !== undefined) {
    throw new ConfigError('purge.olderThanMs', 'give `finishedBefore` (an instant) or `olderThanMs` (an age by the store\'s clock), not both.');
  }
  const age = options.olderThanMs === undefined ? undefined : requireAgeMs('purge.olderThanMs', options.olderThanMs);
  const limit = options.limit === undefined ? Number.POSITIVE_INFINITY : requireNumber('purge.limit', options.limit, { min: 1, integer: true });
  const deadline = before ? { before } : age !== undefined ? { before: { ms: -age } } : undefined;
  await core.init();
  let deleted = 0;
  while (deleted < limit) {
    const batch = Math.min(OPERATE_BATCH, limit - deleted);
    const n = await core.call('purge', undefined, () => core.store.delete({ status: [status], ...(deadline ? { deadline } : {}) }, { limit: batch }));
    deleted += n;
    if (n < batch) break;
  }
  return { deleted };
}
