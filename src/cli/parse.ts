/**
 * Reading operator input: keys as JSON, durations, dates, counts, statuses and stages. Each
 * failure is a usage error (exit 2) that says what to type instead.
 * @module
 */
import { parseIsoTime, reviveKeyDates } from '../dashboard/time.js';
import { MAX_DATE_MS } from '../validate.js';
import type { TrackerDefinition } from '../tracker.js';
import { usage } from './errors.js';

/** Parses a key given as JSON, such as `'{"logId":"a1"}'`. */
export function parseKey(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw usage(`the key \`${text}\` is not valid JSON (${why}); give the key object in single quotes, such as '{"id":"a1"}'.`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw usage(`the key \`${text}\` must be a JSON object of the key fields, such as '{"id":"a1"}'.`);
  }
  return value as Record<string, unknown>;
}

/**
 * The key with its date fields made Dates: JSON has none, so a date key field is given as ISO
 * text (`{"day":"2026-03-01T00:00:00Z"}`). A tracker of an older leasehold, whose definition
 * does not list its key fields, gets the key as given.
 */
export function keyOf(def: Pick<TrackerDefinition, 'keyFields'>, key: Record<string, unknown>): Record<string, unknown> {
  return reviveKeyDates(def.keyFields ?? [], key, (name, text) => parseTime(`key field \`${name}\``, text));
}

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * Parses a duration such as `90s`, `5m`, `2h`, `7d`, `1w` or `1h30m` into milliseconds. It must
 * reach no further from now than a Date can (`--in` adds it to now, `--older-than` takes it
 * away): a longer one would be an invalid time in the store, so it is refused before anything
 * is written.
 */
export function parseDuration(option: string, text: string): number {
  const parts = /^(\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/.test(text) ? [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)] : [];
  const ms = Math.round(parts.reduce((sum, [, n, unit]) => sum + Number(n) * UNITS[unit!]!, 0));
  if (parts.length === 0 || !Number.isFinite(ms) || ms <= 0) {
    throw usage(`${option} \`${text}\` is not a duration: use a number and a unit (ms, s, m, h, d, w), such as 90s, 5m, 2h or 7d.`);
  }
  if (ms > MAX_DATE_MS - Date.now()) {
    throw usage(`${option} \`${text}\` is too long: a time that far from now is past the last date there is (year 275760); use a shorter duration, such as 52w.`);
  }
  return ms;
}

/** Parses an ISO 8601 time such as `2030-01-31T09:00:00Z`, of a day and time that exist. */
export function parseTime(option: string, text: string): Date {
  const date = parseIsoTime(text);
  if (!date) throw usage(`${option} \`${text}\` is not a time: use ISO 8601 with a day and time that exist, such as 2030-01-31T09:00:00Z.`);
  return date;
}

/** Parses a positive integer count. */
export function parseCount(option: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n < 1) throw usage(`${option} \`${text}\` must be a positive whole number, such as 100.`);
  return n;
}

/**
 * Checks a status against the tracker's definition: it must be declared and among `allowed`
 * (all declared statuses by default); `notAllowed` says why a declared one is refused.
 */
export function checkStatus(tracker: string, def: TrackerDefinition, status: string, allowed: readonly string[] = def.statuses, notAllowed = 'is not accepted here'): string {
  if (!def.statuses.includes(status)) throw usage(`unknown status \`${status}\` for tracker \`${tracker}\`; use one of: ${allowed.join(', ') || '(none)'}.`);
  if (!allowed.includes(status)) throw usage(`\`${status}\` ${notAllowed}; use one of: ${allowed.join(', ') || '(none in tracker `' + tracker + '`)'}.`);
  return status;
}

/**
 * Parses `--status a,b` into declared statuses, checked as {@link checkStatus} does. An option
 * given with nothing in it (`--status ''`, `--status ,`) is a usage error: it must never widen
 * into every status.
 */
export function parseStatuses(tracker: string, def: TrackerDefinition, option: string, text: string, allowed: readonly string[] = def.statuses, notAllowed?: string): [string, ...string[]] {
  // a declared status is itself, even one whose name holds a comma
  const statuses = def.statuses.includes(text) ? [text] : text.split(',').map((s) => s.trim()).filter(Boolean);
  if (statuses.length === 0) throw usage(`${option} \`${text}\` names no status; give one or more separated by commas, from: ${allowed.join(', ') || '(none)'}.`);
  for (const s of statuses) checkStatus(tracker, def, s, allowed, notAllowed);
  return statuses as [string, ...string[]];
}

/** Checks a stage name against the tracker's definition. */
export function checkStage(tracker: string, def: TrackerDefinition, stage: string | undefined): string | undefined {
  if (stage === undefined) return undefined;
  const names = def.stages.map((s) => s.name);
  if (!names.includes(stage)) throw usage(`unknown stage \`${stage}\` for tracker \`${tracker}\`; use one of: ${names.join(', ')}.`);
  return stage;
}
