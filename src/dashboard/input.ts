/**
 * Reading what a dashboard request asks for: a key, statuses, a limit, a time. Bad input is a
 * 400 that says what to send instead; it never reaches a store. Internal.
 * @module
 */
import type { KeyField, KeyFieldType } from '../store.js';
import type { TrackerDefinition } from '../tracker.js';
import { HttpError } from './http.js';
import { parseIsoTime, reviveKeyDates } from './time.js';
import type { DashboardTracker } from './types.js';

/** The most items one list request may ask for. */
export const MAX_LIMIT = 500;

/** The longest key text accepted. */
const MAX_KEY_CHARS = 4_096;

const clip = (text: string, n = 100) => (text.length > n ? `${text.slice(0, n)}…` : text);

/**
 * A request value as a message quotes it. Text is clipped; anything else is named by its kind,
 * never turned into text: a JSON object such as `{"toString":1}` throws when `String()` is called on it.
 */
function quoted(value: unknown, n = 40): string {
  if (typeof value === 'string') return `\`${clip(value, n)}\``;
  if (typeof value === 'number' || typeof value === 'boolean') return `\`${value}\``;
  if (value === null) return '`null`';
  return Array.isArray(value) ? 'a list' : `a value of type ${typeof value}`;
}

/** A positive whole number up to `max`; `fallback` when absent. */
export function parseLimit(value: unknown, fallback: number, max = MAX_LIMIT): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new HttpError(400, `\`limit\` must be a whole number from 1 to ${max}, got ${quoted(value)}.`);
  return n;
}

/** Statuses as text (`a,b`) or, in a JSON body, a list of texts; anything else is refused naming `status`. */
function statusList(value: unknown): string[] {
  const parts = typeof value === 'string' ? value.split(',') : Array.isArray(value) && value.every((s) => typeof s === 'string') ? (value as string[]) : undefined;
  if (!parts) throw new HttpError(400, `\`status\` must be a status name, or several separated by commas, got ${quoted(value)}.`);
  return parts.map((s) => s.trim()).filter(Boolean);
}

/** A comma-separated list (or a JSON list) of declared statuses, each among `allowed`. */
export function parseStatuses(value: unknown, def: TrackerDefinition, allowed: readonly string[] = def.statuses): string[] {
  // a declared status is itself, also one whose name holds a comma (as the CLI reads it)
  const list = value === undefined || value === null ? [] : typeof value === 'string' && def.statuses.includes(value) ? [value] : statusList(value);
  if (list.length === 0) throw new HttpError(400, `give a \`status\`: one of ${allowed.join(', ')}.`);
  for (const s of list) {
    if (!def.statuses.includes(s)) throw new HttpError(400, `unknown status \`${clip(s, 60)}\`; this tracker's statuses are ${def.statuses.join(', ')}.`);
    if (!allowed.includes(s)) throw new HttpError(400, `\`${s}\` is not accepted here; use one of ${allowed.join(', ') || '(none in this tracker)'}.`);
  }
  return list;
}

/**
 * Exactly one declared status among `allowed`, for a purge: `tracker.purge` deletes from one
 * status, and a list is refused rather than purged in its first status only.
 */
export function parseOneStatus(value: unknown, def: TrackerDefinition, allowed: readonly string[] = def.statuses): string {
  const list = parseStatuses(value, def, allowed);
  if (list.length > 1) throw new HttpError(400, `give one \`status\`, got ${list.length} (${clip(list.join(', '))}); send one request per status.`);
  return list[0]!;
}

/** A declared stage's name, or `undefined` when absent. */
export function parseStage(value: unknown, def: TrackerDefinition): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || !def.stages.some((s) => s.name === value)) {
    throw new HttpError(400, `\`stage\` must be one of this tracker's stages (${def.stages.map((s) => s.name).join(', ')}), got ${quoted(value)}.`);
  }
  return value;
}

/** An ISO 8601 time, or `undefined` when absent. */
export function parseTime(name: string, value: unknown): Date | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const date = typeof value === 'string' ? parseIsoTime(value) : undefined;
  if (!date) throw new HttpError(400, `\`${name}\` must be an ISO 8601 time of a day that exists, such as 2030-01-31T09:00:00Z, got ${quoted(value)}.`);
  return date;
}

/** Key field names and types learnt from an item, per tracker whose definition does not list them. */
const knownFields = new WeakMap<DashboardTracker, readonly KeyField[]>();

const typeOf = (value: unknown): KeyFieldType =>
  value instanceof Date ? 'date' : typeof value === 'number' ? 'number' : typeof value === 'boolean' ? 'boolean' : 'string';

/** Remembers the key fields of an item the dashboard has seen (for a tracker without `definition.keyFields`). */
export function learnKey(tracker: DashboardTracker, key: unknown): void {
  if (!knownFields.has(tracker) && key !== null && typeof key === 'object') {
    knownFields.set(tracker, Object.entries(key).map(([name, value]) => ({ name, type: typeOf(value) })));
  }
}

/**
 * The tracker's key fields and their types: `definition.keyFields`, or, for a tracker from a copy
 * of leasehold without it, those of any one item, read once with an indexed `find({ limit: 1 })`
 * unless a list or an item page showed one already (`undefined` when that tracker is empty).
 */
async function keyFields(tracker: DashboardTracker): Promise<readonly KeyField[] | undefined> {
  const declared = (tracker.definition as { keyFields?: unknown }).keyFields;
  if (Array.isArray(declared)) return declared as readonly KeyField[];
  const known = knownFields.get(tracker);
  if (known) return known;
  // an item that fails the schema (left by an older deploy) must not stop acting on the others:
  // without a sample the key is passed on as it is
  const [item] = await tracker.find({ limit: 1 }).catch(() => []);
  if (item) learnKey(tracker, item.key);
  return knownFields.get(tracker);
}

/**
 * JSON has no dates: a key field the tracker stores as a date comes as its ISO text, so that a
 * key can be opened, retried or cancelled on a fresh dashboard.
 */
async function reviveDates(tracker: DashboardTracker, key: Record<string, unknown>): Promise<Record<string, unknown>> {
  // only text can stand for a date: other keys need no lookup
  if (!Object.values(key).some((value) => typeof value === 'string')) return key;
  return reviveKeyDates((await keyFields(tracker)) ?? [], key, parseTime);
}

/**
 * An item key as typed by a person: a JSON object of the key fields, or, for a tracker whose
 * key has one field, its bare value (`a1`, `42`), typed as that field is (see {@link keyFields});
 * the tracker's own schema checks the result either way.
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
  const fields = await keyFields(tracker);
  if (!fields) throw new HttpError(404, `no item with key \`${clip(text)}\`: the tracker is empty.`);
  if (fields.length !== 1) {
    throw new HttpError(400, `this tracker's key has ${fields.length} fields (${fields.map((f) => f.name).join(', ')}): give a JSON object of them, such as {${fields.map((f) => `"${f.name}":…`).join(',')}}.`);
  }
  const { name: field, type } = fields[0]!;
  if (type === 'number') {
    const n = Number(text);
    if (!Number.isFinite(n)) throw new HttpError(400, `the key field \`${field}\` is a number; \`${clip(text)}\` is not.`);
    return { [field]: n };
  }
  if (type === 'boolean') {
    if (text !== 'true' && text !== 'false') throw new HttpError(400, `the key field \`${field}\` is true or false; \`${clip(text)}\` is neither.`);
    return { [field]: text === 'true' };
  }
  if (type === 'date') return { [field]: parseTime(field, text) };
  return { [field]: text };
}
