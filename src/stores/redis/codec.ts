/**
 * What crosses between {@link RedisStore} and its Lua scripts: conditions and changes as
 * compact JSON (read by `cjson` inside the scripts), keys in one canonical JSON form (the
 * field of the store's id index), and items back from `HMGET` replies. Internal.
 * @module
 */
import { ConfigError } from '../../errors.js';
import { describe } from '../../validate.js';
import type { Change, Condition, KeyField, KeyScalar, KeyValues, StoredItem } from '../../store.js';
import { encodeData, reviveDates } from '../sql/compile.js';
import { wellFormed } from '../../transitions.js';

/**
 * The order of the values in a store's canonical keys: by field name, never by where a field
 * stands in the zod key object, so reordering that object (a harmless refactor on the other
 * stores) still finds the same items. `recorded` is the store's `{p}:keyfields`, the field
 * names in the order its keys are written: the declaration order of the first tracker that
 * initialised the store, which is also how stores written before this record placed them, so
 * their items keep their ids. A recorded list of other fields (the key changed shape) cannot
 * apply: a key holds values without their names, so the store's items could only be read with
 * their values under the wrong fields. Init replaces such a record only in an empty store
 * (`store.items` 0); otherwise this refuses, naming both lists.
 */
export function keyOrder(fields: readonly KeyField[], recorded: readonly string[], store: { readonly store: string; readonly items: number }): KeyField[] {
  const byName = new Map(fields.map((field) => [field.name, field]));
  const same = recorded.length === fields.length && new Set(recorded).size === fields.length && recorded.every((name) => byName.has(name));
  if (same) return recorded.map((name) => byName.get(name)!);
  const list = (names: readonly string[]) => names.map((name) => `\`${name}\``).join(', ');
  throw new ConfigError(
    'key',
    `[redis] the store \`${store.store}\` holds ${store.items} item(s) whose keys are the values of the fields ${list(recorded)} (its \`${store.store}keyfields\`), ` +
      `and this tracker's key has the fields ${list(fields.map(({ name }) => name))}. A Redis key holds the values without their names, so items of one key shape cannot be read as another. ` +
      'Keep the key\'s fields (reordering them is fine), or track the items into a new store (another `prefix`) and retire this one once it drains, or purge this store\'s items first. Nothing was changed.',
  );
}

/**
 * The canonical form of a key: the values in the store's key order (see {@link keyOrder}), dates
 * as epoch milliseconds. Equal keys always give the same text, so it can name the item in the id
 * index.
 */
export function canonicalKey(fields: readonly KeyField[], key: KeyValues): string {
  return JSON.stringify(
    fields.map(({ name, type }) => {
      const value = key[name];
      // the Tracker already rejects non-scalars; a store used directly must not pass anything else either
      const ok = type === 'date' ? value instanceof Date && !Number.isNaN(value.getTime()) : typeof value === type && (type !== 'number' || Number.isFinite(value));
      if (!ok) throw new ConfigError(`key.${name}`, `[redis] expected a ${type} key value, got ${describe(value)}.`);
      return value instanceof Date ? value.getTime() : value;
    }),
  );
}

/** Reads a canonical key back into field values (`fields` in the store's key order). */
function parseKey(fields: readonly KeyField[], text: string): KeyValues {
  const values = JSON.parse(text) as unknown[];
  return Object.fromEntries(fields.map(({ name, type }, i) => [name, (type === 'date' ? new Date(values[i] as number) : values[i]) as KeyScalar]));
}

/** A condition as the scripts read it (see `matches` in scripts.ts). */
export function encodeCondition(fields: readonly KeyField[], cond: Partial<Condition>): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  if (cond.ref !== undefined) c.r = String(cond.ref);
  if (cond.key) c.k = canonicalKey(fields, cond.key);
  // an empty array is written by cjson as `{}`; the scripts treat a missing list as "any"
  // once each: the scripts merge one sorted set per listed status, and a status listed twice
  // would hand out its items twice (and change them twice)
  if (cond.status && cond.status.length > 0) c.s = [...new Set(cond.status)];
  if (cond.notStatus && cond.notStatus.length > 0) c.ns = cond.notStatus;
  if (cond.stage !== undefined) c.g = cond.stage;
  if (cond.notStage && cond.notStage.length > 0) c.ng = cond.notStage;
  if (cond.fence !== undefined) c.f = cond.fence;
  if (cond.deadline === 'passed' || cond.deadline === 'future') c.dp = cond.deadline;
  else if (cond.deadline?.before instanceof Date) c.db = cond.deadline.before.getTime();
  else if (cond.deadline) c.dr = cond.deadline.before.ms; // the scripts add the server's now
  return c;
}

/**
 * A free-text string the scripts decode with `cjson`, well-formed: `JSON.stringify` writes a lone
 * surrogate as `\udXXX`, which cjson refuses, failing the whole script (and with it every
 * settle of a batch). It becomes U+FFFD, as it would in UTF-8 on the other stores.
 */
const cjsonText = (text: string | null): string | null => (text === null ? null : wellFormed(text));

/** A change as the scripts read it (see `apply` in scripts.ts); `null` clears a field. */
export function encodeChange(change: Change): Record<string, unknown> {
  const ch: Record<string, unknown> = {};
  if (change.status !== undefined) ch.s = change.status;
  if (change.stage !== undefined) ch.g = change.stage;
  if (change.owner !== undefined) ch.o = cjsonText(change.owner);
  if (change.bumpFence) ch.bf = true;
  if (change.attempts) ch.a = change.attempts === 'increment' ? 'i' : change.attempts === 'decrement' ? 'd' : 'r';
  if (change.deadline) {
    if ('at' in change.deadline) ch.da = change.deadline.at.getTime();
    else ch.dm = change.deadline.ms;
  }
  if (change.data !== undefined) ch.d = encodeData(change.data);
  if (change.lastError !== undefined) ch.e = cjsonText(change.lastError);
  if (change.finished !== undefined) ch.fi = change.finished;
  return ch;
}

/** Data in the stored form: JSON with dates tagged (the SQL stores' form). */
export { encodeData };

type Field = string | null;
const time = (v: Field | undefined): Date | null => (v === null || v === undefined ? null : new Date(Number(v)));

/**
 * An item from a script's reply: the id, then the fields `k s g a f o dl e c u cl fi`, then
 * `d` when the data was asked for.
 */
export function decodeItem(fields: readonly KeyField[], row: readonly Field[]): StoredItem {
  const [id, k, s, g, a, f, o, dl, e, c, u, cl, fi, d] = row;
  return {
    ref: id,
    key: parseKey(fields, k!),
    status: s!,
    stage: g ?? null,
    data: d === undefined || d === null ? undefined : reviveDates(JSON.parse(d)),
    attempts: Number(a),
    fence: Number(f),
    owner: o ?? null,
    deadline: time(dl)!,
    lastError: e ?? null,
    createdAt: time(c)!,
    updatedAt: time(u)!,
    claimedAt: time(cl),
    finishedAt: time(fi),
  };
}
