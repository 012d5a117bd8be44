/**
 * The conditional updates behind each hand-off, as plain data: the Tracker sends them to the
 * store, and nothing here touches a store. `docs/protocol.md` maps each one to the model.
 * @module
 */
import type { Backoff } from './backoff.js';
import type { Definition, NormalizedStage } from './definition.js';
import { ConfigError, NonRetryableError } from './errors.js';
import type { Change, Condition, Delay, KeyValues } from './store.js';
import { describe, MAX_DATE_MS } from './validate.js';

/** Longest `lastError` kept, in UTF-16 code units. */
const MAX_MESSAGE = 2_000;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** A lone surrogate or a NUL character: what {@link wellFormed} replaces. */
const UNSTORABLE = new RegExp(`${LONE_SURROGATE.source}|\\0`, 'g');

/**
 * `text` with each lone surrogate (half a character, which UTF-8 cannot hold) and each NUL
 * character (which PostgreSQL text cannot hold) replaced by U+FFFD, in one pass.
 */
export const wellFormed = (text: string): string => text.replace(UNSTORABLE, '\uFFFD');

/** Whether `text` holds no lone surrogate (what UTF-8, and so every database, keeps as it is). */
export const isWellFormed = (text: string): boolean => text.search(LONE_SURROGATE) === -1;

/**
 * Why `text` cannot be stored as it is by every store, or `undefined`: a lone surrogate (UTF-8
 * cannot hold it; databases keep U+FFFD instead) or a NUL character (PostgreSQL text and jsonb
 * refuse it).
 */
export function unstorableText(text: string): string | undefined {
  if (!isWellFormed(text)) return 'text must be well-formed Unicode (it holds a lone surrogate, such as half of an emoji cut off)';
  if (text.includes('\0')) return 'text cannot hold a NUL character (U+0000), which PostgreSQL cannot store; encode binary content (base64, say)';
  return undefined;
}

/**
 * A message as stored: at most 2,000 code units, never cut inside a character (an emoji at the
 * cut is dropped whole), and well-formed (a lone surrogate, which some stores' JSON parsers
 * refuse, becomes U+FFFD).
 */
export function clipMessage(text: string): string {
  let cut = text.length > MAX_MESSAGE ? text.slice(0, MAX_MESSAGE) : text;
  const last = cut.charCodeAt(cut.length - 1);
  if (cut.length < text.length && last >= 0xd800 && last <= 0xdbff) cut = cut.slice(0, -1);
  return wellFormed(cut);
}

/** The message stored as `lastError`. */
export const errorMessage = (error: unknown): string => clipMessage(describeThrown(error));

/**
 * Any thrown value as text; one that cannot be made text (no prototype, a throwing `toString`) is
 * named by its kind. An object that is no Error but carries a `message` (as many HTTP clients
 * throw) is read like one, and another plain object as its JSON, not as `[object Object]`.
 */
function describeThrown(value: unknown): string {
  try {
    if (value instanceof Error) return `${value.name}: ${value.message}`;
    if (value === null || typeof value !== 'object') return String(value);
    const { message, name } = value as { message?: unknown; name?: unknown };
    if (typeof message === 'string') return typeof name === 'string' && name !== '' ? `${name}: ${message}` : message;
    const text = String(value);
    return text === '[object Object]' ? (boundedJson(value) ?? text) : text;
  } catch {
    // a getter or toString that throws: the value's kind still says something
    try {
      return Object.prototype.toString.call(value);
    } catch {
      // a proxy whose every trap throws: not even its kind can be read
      return '[a thrown value that cannot be read]';
    }
  }
}

/**
 * An object's JSON, cut short near a message's length: an array, an object's fields or a string
 * longer than what is left is cut before it is written, so a huge object costs no more than a
 * small one. `undefined` when it has none or cannot be written (a cycle). Internal; exported for
 * its test.
 */
export function boundedJson(value: object): string | undefined {
  let budget = MAX_MESSAGE;
  try {
    return JSON.stringify(value, (key, v: unknown) => {
      if (budget <= 0) return undefined;
      budget -= key.length + 4;
      if (budget <= 0) return undefined;
      if (typeof v === 'string') {
        const cut = v.length > budget ? v.slice(0, Math.max(0, budget)) : v;
        budget -= cut.length;
        return cut;
      }
      // every element or field takes a few characters at least (`null,`, `"k":0,`)
      const room = Math.max(1, Math.ceil(budget / 4));
      if (Array.isArray(v)) return v.length > room ? v.slice(0, room) : v;
      if (v !== null && typeof v === 'object') {
        const fields = Object.keys(v);
        if (fields.length > room) return Object.fromEntries(fields.slice(0, room).map((f) => [f, (v as Record<string, unknown>)[f]]));
      }
      return v;
    });
  } catch {
    return undefined;
  }
}

/** The `lastError` of a reaped lease. */
export const LEASE_EXPIRED = 'lease expired';

/**
 * Rule 2: status in from and deadline passed (and the key) → active, fence + 1, attempts + 1,
 * lease. Attempts are not part of the condition, so that the `(status, deadline)` index serves
 * it alone; an item whose attempts already reached the maximum (the maximum was lowered by a
 * redeploy) is parked right after its claim by {@link exhaustedChange}.
 */
export function claimUpdate(def: Definition, stage: NormalizedStage, owner: string, key: KeyValues | undefined): { cond: Condition; change: Change } {
  return {
    cond: { status: stage.from, deadline: 'passed', ...(key ? { key } : {}) },
    change: { status: stage.active, stage: stage.name, owner, bumpFence: true, attempts: 'increment', deadline: { ms: def.ttlMs }, finished: false },
  };
}

/** A claimed item whose attempts exceed `retry.maxAttempts` is parked at once. */
export function exhaustedChange(def: Definition, stage: NormalizedStage, attempts: number): Change {
  return {
    status: stage.failed,
    deadline: { ms: 0 },
    finished: true,
    lastError: `attempts exhausted: the item had ${attempts - 1} attempt(s) in stage \`${stage.name}\` and \`retry.maxAttempts\` is ${def.maxAttempts} (lowered since it last failed?); parked without running. Use \`retry(key)\` to give it ${def.maxAttempts} new attempts.`,
  };
}

/** Active → a done status, with the new data (storable form) when there is a patch. */
export function completionChange(to: string, data: unknown): Change {
  let base = COMPLETIONS.get(to);
  if (!base) {
    // one frozen change per done status: a batch's completions share it, so a store sees one
    // shape without comparing (see `statementsOf`), and nothing is made per item
    base = Object.freeze({ status: to, deadline: Object.freeze({ ms: 0 }), attempts: 'reset', finished: true } as const);
    if (COMPLETIONS.size < 1_000) COMPLETIONS.set(to, base);
  }
  return data === undefined ? base : { ...base, data };
}
const COMPLETIONS = new Map<string, Change>();

/** Whether a failure goes back for another attempt. */
export function willRetry(def: Definition, attempt: number, error: unknown, retry: boolean | undefined): boolean {
  return retry !== false && !(error instanceof NonRetryableError) && attempt < def.maxAttempts;
}

/**
 * Rule 4: back to the first `from` after backoff while attempts remain, else the failed status.
 * A reap (rule 5) is the same with `lastError` "lease expired" and the fence advanced.
 */
export function failureChange(def: Definition, stage: NormalizedStage, attempt: number, lastError: string, retry: boolean, reaped = false): { change: Change; retry: boolean } {
  let ms: number | undefined;
  if (retry) {
    // a backoff that fails at run time (it passed the definition's probe) parks the item, saying
    // why: throwing here would leave the lease held, and then fail every reap that meets it
    try {
      ms = delayFor(def.backoff, attempt);
    } catch (error) {
      lastError = clipMessage(`${lastError} (not retried: ${errorMessage(error)} Fix the backoff, then retry the item.)`);
    }
  }
  const change: Change = ms !== undefined
    ? { status: stage.from[0]!, deadline: { ms }, lastError }
    : { status: stage.failed, deadline: { ms: 0 }, lastError, finished: true };
  return { change: reaped ? { ...change, bumpFence: true } : change, retry: ms !== undefined };
}

/**
 * Calls a backoff for `attempt` and insists on a usable delay in milliseconds; a throw or
 * another value is a ConfigError naming the backoff and the attempt.
 */
export function delayFor(backoff: Backoff, attempt: number): number {
  const option = `retry.backoff(${attempt})`;
  let ms: unknown;
  try {
    ms = backoff(attempt);
  } catch (error) {
    throw Object.assign(new ConfigError(option, `threw ${JSON.stringify(errorMessage(error))}; a backoff must return a delay in milliseconds for every attempt.`), { cause: error });
  }
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > MAX_DATE_MS - Date.now()) {
    throw new ConfigError(option, `returned ${describe(ms)}; a backoff must return a delay in milliseconds for every attempt: a finite number >= 0 whose deadline is a valid Date (before the year 275760).`);
  }
  return ms;
}

/** Gives a lease back without counting the attempt. */
export function releaseChange(stage: NormalizedStage, ms: number): Change {
  return { status: stage.from[0]!, deadline: { ms }, attempts: 'decrement' };
}

/**
 * Operator retry: the stage's failed status (recorded stage) → its first `from`, attempts 0,
 * claimable now; `lastError` is kept so that the history stays visible.
 */
export function retryUpdate(stage: NormalizedStage, key: KeyValues | undefined, parkedIn: readonly string[] = [stage.failed]): { cond: Condition; change: Change } {
  return {
    cond: { status: parkedIn, stage: stage.name, ...(key ? { key } : {}) },
    change: { status: stage.from[0]!, attempts: 'reset', deadline: { ms: 0 }, finished: false },
  };
}

/**
 * Operator cancel: an item waiting in or holding one of `statuses` → the stage's failed status,
 * with the reason as `lastError`. The fence advances, so an active holder's next renew or
 * settle is refused.
 */
export function cancelUpdate(stage: NormalizedStage, statuses: readonly string[], key: KeyValues, reason: string): { cond: Condition; change: Change } {
  return {
    cond: { key, status: statuses },
    change: { status: stage.failed, stage: stage.name, bumpFence: true, deadline: { ms: 0 }, lastError: reason, finished: true },
  };
}

/** Operator reschedule: an item waiting in a `from` status is not claimable before `at`. */
export function rescheduleUpdate(fromStatuses: readonly string[], key: KeyValues, deadline: Delay): { cond: Condition; change: Change } {
  return { cond: { key, status: fromStatuses }, change: { deadline } };
}
