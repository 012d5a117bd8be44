/**
 * The claim family: track (insert-if-absent) and claim (one item by key, the oldest eligible,
 * or a batch). Internal; the Tracker's public methods call these.
 * @module
 */
import { refusedAsNew, type EncodedData, type Item } from '../codec.js';
import { ConfigError, StoreError, ValidationError } from '../errors.js';
import { Lease } from '../lease.js';
import type { NormalizedStage } from '../definition.js';
import { copyKey, guardCondition, type Change, type Condition, type Delay, type KeyValues, type StoredItem } from '../store.js';
import { claimUpdate, clipMessage, exhaustedChange, wellFormed } from '../transitions.js';
import { describe, requireDate, requireDelayMs, requireKnownOptions } from '../validate.js';
import type { AnyLease, Core } from './core.js';

/** Options of `track`: when the item becomes claimable. */
export interface TrackOptions {
  /** Not claimable before this time (store clock). */
  readonly notBefore?: Date;
  /** Not claimable for this many milliseconds (from the store's now). */
  readonly delayMs?: number;
}

/** Options of `reschedule`: when the item becomes claimable, one of the two. */
export type ScheduleOptions =
  | {
      /** Not claimable before this time (store clock). */
      readonly notBefore: Date;
      /** Not with `notBefore`. */
      readonly delayMs?: undefined;
    }
  | {
      /** Not claimable for this many milliseconds (from the store's now). */
      readonly delayMs: number;
      /** Not with `delayMs`. */
      readonly notBefore?: undefined;
    };

const SCHEDULE_OPTIONS = ['notBefore', 'delayMs'];

/** Why a claimed item that does not decode is refused, as the hints of its ValidationError start. */
const STALE_SHAPE = 'What is stored no longer matches the Tracker schema (edited by hand, or written by another version)';

/** Turns `{ notBefore }` / `{ delayMs }` into a store deadline. */
export function scheduleDelay(operation: string, options: TrackOptions | undefined): Delay | undefined {
  requireKnownOptions(operation, options, SCHEDULE_OPTIONS);
  if (!options) return undefined;
  const { notBefore, delayMs } = options;
  if (notBefore !== undefined && delayMs !== undefined) {
    throw new ConfigError(`${operation}.notBefore`, 'give `notBefore` or `delayMs`, not both.');
  }
  if (notBefore !== undefined) return { at: requireDate(`${operation}.notBefore`, notBefore) };
  if (delayMs !== undefined) return { ms: requireDelayMs(`${operation}.delayMs`, delayMs) };
  return undefined;
}

/** Rule 1: insert in `initial` unless the key exists; never changes an existing item. */
export async function track(core: Core, key: unknown, data: unknown, options?: TrackOptions): Promise<{ item: Item; created: boolean }> {
  const deadline = scheduleDelay('track', options);
  let storeKey: KeyValues;
  let encoded: EncodedData;
  try {
    storeKey = core.codec.key('track', key);
    encoded = core.codec.data('track', key, data ?? {});
  } catch (error) {
    // what only a new item may not hold (a key too heavy, data too deep, ...): a key tracked
    // before, by an earlier version, answers as a track of an existing key does (a poller's)
    if (!refusedAsNew(error)) throw error;
    await core.init();
    const [stored] = await core.call('track', key, () => core.store.find({ key: core.codec.key('get', key) }, { limit: 1 }));
    if (!stored) throw error;
    return { item: existing(core, stored), created: false };
  }
  await core.init();
  const result = await core.call('track', key, () =>
    core.store.insert({ key: storeKey, status: core.def.initial, data: encoded.stored, ...(deadline ? { deadline } : {}) }),
  );
  if (result.created) {
    // a scheduled item: workers learn its due time
    if (deadline) core.wakeAt(core.def.initial, result.item);
    else core.wake(core.def.initial);
    return { item: core.codec.item('track', result.item, { data: encoded }), created: true };
  }
  return { item: existing(core, result.item), created: false };
}

/** An item `track` found tracked already (nothing written), as `get` reads it, also in a status the definition no longer declares. */
function existing(core: Core, stored: StoredItem): Item {
  try {
    return core.codec.item('track', stored, { undeclared: true });
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    throw new ValidationError({
      operation: 'track',
      key: error.key,
      what: 'stored item',
      issues: error.issues,
      stored: true,
      hint:
        `The item was tracked before (it is \`${stored.status}\`), so nothing was written, but what is stored no longer matches the Tracker schema ` +
        '(written by another version of the definition, or by hand), so it cannot be returned. A caller that only makes sure the key is tracked (a poller) can take this as ' +
        '`created: false` (`error.stored` is true). To read the item, fix its data in the database or make the schema accept it.',
    });
  }
}

export function requireOwner(operation: string, owner: unknown): string {
  if (typeof owner !== 'string' || owner.length === 0 || owner.length > 200) {
    throw new ConfigError(`${operation}.owner`, `expected a non-empty string of at most 200 characters naming the worker, got ${describe(owner)}.`);
  }
  // as every store can keep it (a lone surrogate becomes U+FFFD), so a lease names its owner as
  // the store holds it
  return wellFormed(owner);
}

/**
 * Rule 2: one conditional update claiming up to `limit` items (a given key, or the oldest
 * eligible). Claimed items that cannot be handed to a worker — stored data that no longer
 * fits the schema, or attempts beyond `retry.maxAttempts` — are parked at once, and the others
 * are returned.
 */
export async function claim(core: Core, operation: string, stageName: string, options: { owner: string; key?: unknown }, limit: number): Promise<AnyLease[]> {
  // a misspelt `key` would claim whichever item is oldest
  requireKnownOptions(operation, options, operation === 'claim' ? ['owner', 'key'] : ['owner', 'limit']);
  const stage = core.stage(operation, stageName);
  const owner = requireOwner(operation, options?.owner);
  const key = options.key === undefined ? undefined : core.codec.key(operation, options.key);
  const { cond, change } = claimUpdate(core.def, stage, owner, key);
  await core.init();
  // claim-next that only met items it parked on the way (exhausted, or unreadable) looks again,
  // a few times; then it wakes this process's workers of the stage, so that none of them takes
  // the empty answer for an empty stage (sleeping a poll delay, or resolving a drain)
  for (let round = 0; ; round++) {
    const { leases, parked } = await claimOnce(core, operation, stage, owner, options.key, cond, change, limit);
    if (leases.length > 0 || parked === 0 || key) return leases;
    if (round >= 9) {
      for (const status of stage.from) core.wake(status);
      return leases;
    }
  }
}

async function claimOnce(
  core: Core,
  operation: string,
  stage: NormalizedStage,
  owner: string,
  givenKey: unknown,
  cond: Condition,
  change: Change,
  limit: number,
): Promise<{ leases: AnyLease[]; parked: number }> {
  const sentAt = performance.now();
  // the deadline before the claim (when the item became claimable) costs a little on some
  // stores: asked for only while someone listens for `waitedMs`
  const options = core.events.has('claimed') ? { limit, ordered: true, priorDeadline: true } : { limit, ordered: true };
  const rows = await core.call(operation, givenKey, () => core.store.update(cond, change, options));
  if (rows.length > limit) {
    // a store that ignores `limit` claimed items no one gets a lease for: say so instead of dropping them
    throw new StoreError({
      operation,
      store: core.store.name,
      key: givenKey,
      cause: new Error(`the store returned ${rows.length} claimed items for a limit of ${limit}, a bug in the store (see "Writing a store"); they stay held until reaped`),
      failure: 'other',
    });
  }
  const leases: AnyLease[] = [];
  let invalid: ValidationError | undefined;
  let parked = 0;
  // a park that fails (the store is down) must not cost the batch's other leases, claimed
  // already: the item is left held, under its new fence, until it is reaped; the fault is thrown
  // when the claim hands out no lease (so that it is not taken for an empty stage), else reported
  const failedParks: unknown[] = [];
  const parking = async (stored: StoredItem, change: Change, logged: boolean): Promise<boolean | 'failed'> => {
    try {
      return await park(core, operation, stage, stored, change, logged);
    } catch (error) {
      failedParks.push(error);
      return 'failed';
    }
  };
  for (const stored of rows) {
    if (stored.attempts > core.def.maxAttempts) {
      if ((await parking(stored, exhaustedChange(core.def, stage, stored.attempts), true)) !== 'failed') parked++;
      continue;
    }
    let item: Item;
    try {
      item = core.decode(operation, stored);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      const parkedNow = await parking(stored, {
        status: stage.failed,
        deadline: { ms: 0 },
        lastError: clipMessage(`invalid stored item: ${error.message}`),
        finished: true,
      }, false);
      // the claim wrote (and the park): say where the item is, and that fixing it is not enough
      invalid = new ValidationError({
        operation,
        key: error.key,
        what: 'stored item',
        issues: error.issues,
        applied: true,
        stored: true,
        hint:
          parkedNow === true
            ? `${STALE_SHAPE}, so the claim parked it in \`${stage.failed}\` (an attempt spent). Fix it in the database, then \`retry\` it; or purge it. Other items are unaffected.`
            : `${STALE_SHAPE}. The claim took it, but ${parkedNow === false ? 'it changed before it could be parked' : "parking it failed (the store's error is reported)"}; it is reaped when that lease expires. Fix or delete it in the database; other items are unaffected.`,
      });
      core.reportError(operation, invalid);
      if (parkedNow !== 'failed') parked++;
      continue;
    }
    // the guard's key is the lease's own: a handler may change the Dates in `lease.key`
    const lease = new Lease(stage.name, owner, item, { store: core.store, key: copyKey(stored.key), ref: stored.ref, data: stored.data, sentAt });
    leases.push(lease);
    core.log('debug', lease, 'claimed');
    if (core.events.has('claimed')) {
      core.emitLease('claimed', lease, {
        expiresAt: stored.deadline,
        waitedMs: stored.priorDeadline && stored.claimedAt ? Math.max(0, stored.claimedAt.getTime() - stored.priorDeadline.getTime()) : 0,
      });
    }
  }
  if (failedParks.length > 0 && leases.length === 0) throw failedParks[0];
  for (const error of failedParks) core.reportError(operation, error);
  // a single claim of an invalid item says so; in a batch, one bad item must not cost the others
  if (invalid && rows.length === 1) throw invalid;
  return { leases, parked };
}

/**
 * Parks a just-claimed item its claim cannot hand out, under its new fence (nobody else can hold
 * it), and tells it as a `failed` event (attempt spent, no retry, no time held) so that failure
 * counts and alerts see it; the key is the stored one, as the item may not decode.
 */
async function park(core: Core, operation: string, stage: NormalizedStage, stored: StoredItem, change: Change, logged: boolean): Promise<boolean> {
  const [parked] = await core.call(operation, stored.key, () =>
    core.store.update(guardCondition({ ref: stored.ref, key: stored.key, status: stored.status, fence: stored.fence }), change, { limit: 1, returning: 'state' }),
  );
  if (!parked) return false;
  const base = { stage: stage.name, key: stored.key, owner: stored.owner ?? '', fence: stored.fence, attempt: stored.attempts };
  // an invalid item is reported as an error already (with why); an exhausted one only here
  if (logged) core.logger?.warn?.(base, `[leasehold] ${stage.name}: parked at its claim in \`${stage.failed}\`: ${change.lastError ?? ''}`);
  if (core.events.has('failed')) {
    core.events.emit('failed', { ...base, error: change.lastError ?? '', willRetry: false, nextAttemptAt: null, status: stage.failed, durationMs: 0 });
  }
  return true;
}

/** `claimBatch`: one round trip where the store can, else one claim at a time. */
export async function claimBatch(core: Core, stageName: string, options: { owner: string; limit: number }, limit: number): Promise<AnyLease[]> {
  if (core.store.capabilities.batchClaim || limit === 1) return claim(core, 'claimBatch', stageName, options, limit);
  const leases: AnyLease[] = [];
  for (let i = 0; i < limit; i++) {
    const got = await claim(core, 'claimBatch', stageName, options, 1).catch((error: unknown) => {
      if (error instanceof ValidationError) return null; // parked; go on with the next one
      // the leases claimed so far are handed out (dropped, their items would sit held by no
      // one until reaped, an attempt spent); the fault is reported, and the next claim meets it
      if (leases.length === 0) throw error;
      core.reportError('claimBatch', error);
      return [];
    });
    if (got === null) continue;
    if (got.length === 0) break;
    leases.push(...got);
  }
  return leases;
}
