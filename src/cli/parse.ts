/**
 * Reading operator input: keys as JSON, durations, dates, counts, statuses and stages. Each
 * failure is a usage error (exit 2) that says what to type instead.
 * @module
 */
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

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Parses a duration such as `90s`, `5m`, `2h`, `7d`, `1w` or `1h30m` into milliseconds. */
export function parseDuration(option: string, text: string): number {
  const parts = /^(\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/.test(text) ? [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)] : [];
  const ms = parts.reduce((sum, [, n, unit]) => sum + Number(n) * UNITS[unit!]!, 0);
  if (parts.length === 0 || !Number.isFinite(ms) || ms <= 0) {
    throw usage(`${option} \`${text}\` is not a duration: use a number and a unit (ms, s, m, h, d, w), such as 90s, 5m, 2h or 7d.`);
  }
  return Math.round(ms);
}

/** Parses an ISO 8601 time such as `2030-01-31T09:00:00Z`. */
export function parseTime(option: string, text: string): Date {
  const date = /^\d{4}-\d{2}-\d{2}/.test(text) ? new Date(text) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) throw usage(`${option} \`${text}\` is not a time: use ISO 8601, such as 2030-01-31T09:00:00Z.`);
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

/** Checks a stage name against the tracker's definition. */
export function checkStage(tracker: string, def: TrackerDefinition, stage: string | undefined): string | undefined {
  if (stage === undefined) return undefined;
  const names = def.stages.map((s) => s.name);
  if (!names.includes(stage)) throw usage(`unknown stage \`${stage}\` for tracker \`${tracker}\`; use one of: ${names.join(', ')}.`);
  return stage;
}
