/**
 * Reading what a dashboard request asks for: a key, statuses, a limit, a time. Bad input is a
 * 400 that says what to send instead; it never reaches a store. Internal.
 * @module
 */
import type { TrackerDefinition } from '../tracker.js';
import { HttpError } from './http.js';
import type { DashboardTracker } from './types.js';

/** The most items one list request may ask for. */
export const MAX_LIMIT = 500;

/** The longest key text accepted. */
const MAX_KEY_CHARS = 4_096;

const clip = (text: string, n = 100) => (text.length > n ? `${text.slice(0, n)}…` : text);

/** A positive whole number up to `max`; `fallback` when absent. */
export function parseLimit(value: unknown, fallback: number, max = MAX_LIMIT): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = typeof value === 'number' ? value : /^\d{1,15}$/.test(String(value)) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new HttpError(400, `\`limit\` must be a whole number from 1 to ${max}, got \`${clip(String(value), 40)}\`.`);
  return n;
}

/** A comma-separated list of declared statuses, each among `allowed`. */
export function parseStatuses(value: unknown, def: TrackerDefinition, allowed: readonly string[] = def.statuses): string[] {
  const list = String(value ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new HttpError(400, `give a \`status\`: one of ${allowed.join(', ')}.`);
  for (const s of list) {
    if (!def.statuses.includes(s)) throw new HttpError(400, `unknown status \`${clip(s, 60)}\`; this tracker's statuses are ${def.statuses.join(', ')}.`);
    if (!allowed.includes(s)) throw new HttpError(400, `\`${s}\` is not accepted here; use one of ${allowed.join(', ') || '(none in this tracker)'}.`);
  }
  return list;
}

/** An ISO 8601 time, or `undefined` when absent. */
export function parseTime(name: string, value: unknown): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const date = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) throw new HttpError(400, `\`${name}\` must be an ISO 8601 time such as 2030-01-31T09:00:00Z, got \`${clip(String(value), 40)}\`.`);
  return date;
}

/** Key field names learnt from an item, per tracker: the definition does not list them. */
const knownFields = new WeakMap<DashboardTracker, Record<string, unknown>>();

/** Remembers the key fields of an item the dashboard has seen. */
export function learnKey(tracker: DashboardTracker, key: unknown): void {
  if (!knownFields.has(tracker) && key !== null && typeof key === 'object') knownFields.set(tracker, key as Record<string, unknown>);
}

/** JSON has no dates: a key field that is a Date in the items seen comes back as its ISO text. */
function reviveDates(tracker: DashboardTracker, key: Record<string, unknown>): Record<string, unknown> {
  const sample = knownFields.get(tracker);
  if (!sample) return key;
  const out = { ...key };
  for (const [field, value] of Object.entries(key)) {
    if (sample[field] instanceof Date && typeof value === 'string') out[field] = parseTime(field, value);
  }
  return out;
}

/**
 * An item key as typed by a person: a JSON object of the key fields, or, for a tracker whose
 * key has one field, its bare value (`a1`, `42`). The bare form learns the field's name and type
 * from any one item, since the definition does not carry them; the tracker's own schema checks
 * the result either way.
 */
export async function parseKey(tracker: DashboardTracker, value: unknown): Promise<Record<string, unknown>> {
  if (Array.isArray(value)) throw new HttpError(400, 'the key must be an object of the key fields, such as {"id":"a1"}, not a list.');
  if (value !== null && typeof value === 'object') return reviveDates(tracker, value as Record<string, unknown>);
  if (typeof value !== 'string' || value.trim() === '') throw new HttpError(400, 'give a `key`: a JSON object of the key fields, such as {"id":"a1"}.');
  const text = value.trim();
  if (text.length > MAX_KEY_CHARS) throw new HttpError(400, `the key is longer than ${MAX_KEY_CHARS} characters.`);
  if (text.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new HttpError(400, `the key \`${clip(text)}\` is not valid JSON (${(error as Error).message}); give an object such as {"id":"a1"}.`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new HttpError(400, 'the key must be a JSON object of the key fields.');
    return reviveDates(tracker, parsed as Record<string, unknown>);
  }
  let sample = knownFields.get(tracker);
  if (!sample) {
    const [item] = await tracker.find({ limit: 1 });
    if (!item) throw new HttpError(404, `no item with key \`${clip(text)}\`: the tracker is empty.`);
    sample = item.key as Record<string, unknown>;
    knownFields.set(tracker, sample);
  }
  const fields = Object.entries(sample);
  if (fields.length !== 1) {
    throw new HttpError(400, `this tracker's key has ${fields.length} fields (${fields.map(([f]) => f).join(', ')}): give a JSON object of them, such as {${fields.map(([f]) => `"${f}":…`).join(',')}}.`);
  }
  const [field, example] = fields[0]!;
  if (typeof example === 'number') {
    const n = Number(text);
    if (!Number.isFinite(n)) throw new HttpError(400, `the key field \`${field}\` is a number; \`${clip(text)}\` is not.`);
    return { [field]: n };
  }
  if (typeof example === 'boolean') {
    if (text !== 'true' && text !== 'false') throw new HttpError(400, `the key field \`${field}\` is true or false; \`${clip(text)}\` is neither.`);
    return { [field]: text === 'true' };
  }
  if (example instanceof Date) {
    const date = parseTime(field, text);
    return { [field]: date };
  }
  return { [field]: text };
}
