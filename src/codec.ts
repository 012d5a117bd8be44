import type { z } from 'zod';
import { declaredFields, withUndeclared } from './data-fields.js';
import type { Definition } from './definition.js';
import { ValidationError, type ValidationIssue } from './errors.js';
import type { Change, ItemOutcome, ItemState, KeyValues, StoredItem } from './store.js';
import { isWellFormed, unstorableText } from './transitions.js';
import { MIN_STORE_DATE_MS } from './validate.js';

/** An item as the Tracker returns it: typed key, status and data, with both time views. */
export interface Item<S extends string = string, K = unknown, D = unknown> {
  /** The item key. */
  readonly key: K;
  /** Current status. */
  readonly status: S;
  /** The stage of the latest claim, cancel or park (`null` before any). */
  readonly stage: string | null;
  /** Current data. */
  readonly data: D;
  /** Claims so far in the current stage. */
  readonly attempts: number;
  /** Fencing token of the latest claim (or reap, or cancel). */
  readonly fence: number;
  /** Holder of the current lease; while the item is not active, the last holder (`null` if never claimed). */
  readonly owner: string | null;
  /** When the current lease expires (store clock), while the item is in an active status. */
  readonly leaseExpiresAt: Date | null;
  /** Not claimable before this time (store clock), while the item waits in a stage's `from` status. */
  readonly notBefore: Date | null;
  /** Message of the last failure. */
  readonly lastError: string | null;
  /** When the item was tracked. */
  readonly createdAt: Date;
  /** When the item last changed. */
  readonly updatedAt: Date;
  /** When the item was last claimed. */
  readonly claimedAt: Date | null;
  /** When the item reached a done or failed status. */
  readonly finishedAt: Date | null;
}

/** Data checked and put in the form every store holds, with the value the schema gave. */
export interface EncodedData {
  /** The schema's output: what readers get back. */
  readonly value: unknown;
  /** The storable form sent to the store. */
  readonly stored: unknown;
}

/**
 * The most a key may weigh, in bytes: its text fields as UTF-8, and 8 for each other field.
 * PostgreSQL's unique index holds at most about 2,700 bytes a row, and refused a longer key with
 * an index error where the other stores took it: one limit, on every store, for new items.
 */
export const MAX_KEY_BYTES = 2_000;
/**
 * How deep data may nest (objects and arrays; the data object itself is level 1): a real MongoDB
 * server refuses a document nested deeper than 100 levels, counting its update's own, and past a
 * few thousand levels every check here ran out of stack.
 */
export const MAX_DATA_DEPTH = 64;

const isScalar = (v: unknown): boolean =>
  typeof v === 'string' ||
  typeof v === 'boolean' ||
  (typeof v === 'number' && Number.isFinite(v)) ||
  (v instanceof Date && !Number.isNaN(v.getTime()));

/** An object literal (or one made with `Object.create(null)`): no array, Date or class instance. */
export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

const zodIssues = (error: z.ZodError): ValidationIssue[] => error.issues.map((i) => ({ path: i.path, message: i.message }));

/**
 * Copies a value into leasehold's storable form (what every store keeps and gives back the
 * same): plain objects, arrays, strings, finite numbers (-0 as 0), booleans, `null` and valid Dates.
 * `undefined` object fields are dropped, as JSON does. Anything else is reported by path.
 */
function storable(value: unknown, path: PropertyKey[], issues: ValidationIssue[], text: boolean | ReadonlySet<string> = true): unknown {
  // only what is written now (as for text): data an earlier version stored deeper still settles
  if (text !== false && path.length >= MAX_DATA_DEPTH && value !== null && typeof value === 'object' && !(value instanceof Date)) {
    issues.push({ path, message: `${DEPTH_MESSAGE} (objects and arrays), which not every store can keep; flatten it, or store it as a string` });
    return null;
  }
  if (typeof value === 'string') {
    const why = text === true ? unstorableText(value) : undefined;
    if (why !== undefined) issues.push({ path, message: why });
    return value;
  }
  // -0 is stored as 0: JSON (the SQL stores, Redis) has no -0, and every store must give back the same
  if (value === 0) return 0;
  if (value === null || isScalar(value)) return value instanceof Date ? new Date(value.getTime()) : value;
  // by index, so that holes are seen (`.map` skips them, and JSON reads them back as null)
  if (Array.isArray(value)) return Array.from({ length: value.length }, (_, i) => storable(value[i], [...path, i], issues, text === true));
  if (isPlainObject(value)) {
    // the fields kept: `undefined` ones are dropped, as JSON does
    const keys = Object.keys(value).filter((k) => value[k] !== undefined);
    if (keys.length === 1 && keys[0] === '$date') {
      issues.push({ path, message: 'an object whose only field is `$date` is reserved (SQL stores encode dates that way); rename the field' });
    }
    if (typeof value.$ref === 'string' && value.$id !== undefined && value.$id !== null) {
      issues.push({ path, message: 'an object with `$ref` and `$id` fields is read back by MongoDB as a DBRef, not as the object; rename the fields' });
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      // a set of field names: only those fields' text is checked (see `Codec.data`)
      const checked = text === true || (text !== false && text.has(k));
      const why = checked ? unstorableText(k) : undefined;
      // assigning `__proto__` would set the copy's prototype, and the field would be lost
      if (k === '__proto__') issues.push({ path: [...path, k], message: '`__proto__` cannot be a field name (JavaScript objects treat it as their prototype); rename the field' });
      else if (why !== undefined) issues.push({ path: [...path, k], message: `a field name's ${why}` });
      else out[k] = storable(value[k], [...path, k], issues, checked);
    }
    return out;
  }
  const kind = value === undefined ? 'undefined (in an array)' : typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
  issues.push({ path, message: `${kind} cannot be stored and read back; use plain objects, arrays, strings, finite numbers, booleans, null or Dates` });
  return null;
}

const TOO_DEEP = Symbol('too deep');
/**
 * `schema.safeParse(value)`, or {@link TOO_DEEP} where it threw a `RangeError` on a value nested
 * deeper than {@link MAX_DATA_DEPTH} (it ran out of stack). Another `RangeError` (a transform's
 * `Invalid time value`) is thrown as it is.
 */
function parseDeep(schema: z.ZodType, value: unknown): ReturnType<z.ZodType['safeParse']> | typeof TOO_DEEP {
  try {
    return schema.safeParse(value);
  } catch (error) {
    if (error instanceof RangeError && nestedDeeper(value, MAX_DATA_DEPTH)) return TOO_DEEP;
    throw error;
  }
}

/** Whether objects and arrays in `value` nest deeper than `levels` (`value` itself is level 1); without recursion. */
function nestedDeeper(value: unknown, levels: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object' || v instanceof Date) continue;
    if (depth > levels) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * Refusals of what only a new item may not hold (a key too heavy, a NUL, a date before 4714 BC;
 * data nested too deep): `track` of a key that is tracked already writes nothing, so it answers
 * `created: false` where the item exists, as it did before these were refused.
 */
const NEW_ITEM_LIMITS = new WeakSet<ValidationError>();
/** Whether `error` refused only what a new item may not hold (see {@link NEW_ITEM_LIMITS}). */
export const refusedAsNew = (error: unknown): boolean => error instanceof ValidationError && NEW_ITEM_LIMITS.has(error);
const limitRefusal = (error: ValidationError): ValidationError => (NEW_ITEM_LIMITS.add(error), error);
const DEPTH_MESSAGE = `nested deeper than ${MAX_DATA_DEPTH} levels`;

/** Deep equality over the storable form. */
function same(a: unknown, b: unknown): boolean {
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => same(v, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => same(a[k], b[k]));
  }
  // 0 and -0 are one value here: a schema that gives -0 back reads 0 once stored
  return a === b;
}

/** The path of the first place where `a` and `b` differ (in the storable form). */
function difference(a: unknown, b: unknown, path: PropertyKey[] = []): PropertyKey[] | undefined {
  if (same(a, b)) return undefined;
  if (isPlainObject(a) && isPlainObject(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const at = difference(a[k], b[k], [...path, k]);
      if (at) return at;
    }
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    for (let i = 0; i < a.length; i++) {
      const at = difference(a[i], b[i], [...path, i]);
      if (at) return at;
    }
  }
  return path;
}

/** Validates keys and data against the definition, and decodes stored items. */
export class Codec {
  readonly #def: Definition;
  readonly #key: z.ZodType;
  readonly #data: z.ZodType | undefined;
  /** The top-level fields the data schema declares (see {@link declaredFields}). */
  #dataFields: ReadonlySet<string> | undefined | null = null;
  readonly #fieldNames: ReadonlySet<string>;
  readonly #claimable: ReadonlySet<string>;
  readonly #active: ReadonlySet<string>;
  readonly #declared: ReadonlySet<string>;

  constructor(def: Definition, key: z.ZodType, data: z.ZodType | undefined) {
    this.#def = def;
    this.#key = key;
    this.#data = data;
    this.#fieldNames = new Set(def.keyFields.map((f) => f.name));
    this.#claimable = new Set(def.fromStatuses);
    this.#active = new Set(def.activeStatuses);
    this.#declared = new Set(def.statuses);
  }

  /**
   * Checks a key given by a caller: a plain object of declared scalar fields, then its
   * schema. Operator objects such as `{ $ne: null }` never reach a store.
   */
  key(operation: string, key: unknown): KeyValues {
    if (key === null || typeof key !== 'object' || Array.isArray(key) || key instanceof Date) {
      throw new ValidationError({ operation, key, what: 'key', issues: [{ path: [], message: 'expected an object of key fields' }] });
    }
    const issues: ValidationIssue[] = [];
    // issues of what a new item may not hold, of those pushed (see NEW_ITEM_LIMITS)
    let limits = 0;
    for (const [field, value] of Object.entries(key)) {
      if (!this.#fieldNames.has(field)) {
        issues.push({ path: [field], message: `unknown key field (declared: ${[...this.#fieldNames].join(', ')})` });
      } else if (!isScalar(value)) {
        issues.push({ path: [field], message: 'key values must be a string, finite number, boolean or valid Date; objects such as query operators are rejected' });
      } else if (typeof value === 'string') {
        // databases keep text as UTF-8: a lone surrogate would be stored as U+FFFD, so the item's
        // key would no longer be the one its lease names, and two such keys could become one. A
        // NUL (PostgreSQL cannot store it) is refused for new items only: one an earlier version
        // stored elsewhere stays reachable
        const wellFormed = isWellFormed(value);
        const why = operation === 'track' || !wellFormed ? unstorableText(value) : undefined;
        if (why !== undefined) {
          issues.push({ path: [field], message: `key ${why}` });
          if (wellFormed) limits++;
        }
      }
    }
    if (operation === 'track' && issues.length === limits) {
      const bytes = Object.values(key).reduce<number>((n, v) => n + (typeof v === 'string' ? Buffer.byteLength(v) : 8), 0);
      if (bytes > MAX_KEY_BYTES) {
        issues.push({ path: [], message: `the key weighs ${bytes} bytes (text as UTF-8, 8 for each other field); a key may weigh at most ${MAX_KEY_BYTES}, so that every store can index it. Key the item by a shorter id (a hash of the long value, say) and keep the value in its data` });
        limits++;
      }
    }
    if (issues.length) {
      const error = new ValidationError({ operation, key, what: 'key', issues });
      throw issues.length === limits ? limitRefusal(error) : error;
    }
    const parsed = this.#key.safeParse(key);
    if (!parsed.success) throw new ValidationError({ operation, key, what: 'key', issues: zodIssues(parsed.error) });
    const values = parsed.data as Record<string, unknown>;
    // -0 is the key 0 (as JSON and SQL read it back), on every store
    for (const field of Object.keys(values)) if (values[field] === 0) values[field] = 0;
    // a date PostgreSQL's timestamptz cannot hold, refused on every store (as a NUL is) for new items
    const early = operation === 'track' ? Object.keys(values).filter((f) => values[f] instanceof Date && (values[f] as Date).getTime() < MIN_STORE_DATE_MS) : [];
    if (early.length > 0) {
      throw limitRefusal(new ValidationError({ operation, key, what: 'key', issues: early.map((f) => ({ path: [f], message: 'key dates before 4714-11-24 BC cannot be stored (PostgreSQL\'s timestamptz starts there)' })) }));
    }
    return values as KeyValues;
  }

  /**
   * Checks data against its schema and the size limit, and makes sure that what is stored
   * reads back as the same value on every store (Dates stay Dates). Data that would not is
   * refused here, naming the field, before anything is written.
   */
  /**
   * Checks and encodes data to write. `given`: the object the caller gives now, when `input`
   * merges it over stored data; only the text of its fields is checked for what not every store
   * can keep, so that data an earlier version stored (a NUL on SQLite, say) does not stop every
   * later settle. `base`: the stored data `input` merged `given` over; its fields that the schema
   * does not declare (written by another version of the definition) are kept as they are.
   */
  data(operation: string, key: unknown, input: unknown, given: unknown = input, base?: unknown): EncodedData {
    const fail = (issues: ValidationIssue[], hint?: string) => new ValidationError({ operation, key, what: 'data', issues, hint });
    let value = input;
    if (this.#data) {
      const parsed = parseDeep(this.#data, input);
      if (parsed === TOO_DEEP) throw limitRefusal(fail([{ path: [], message: `nested too deeply for the data schema to check (it ran out of stack); data may nest ${MAX_DATA_DEPTH} levels` }]));
      if (!parsed.success) throw fail(zodIssues(parsed.error));
      value = parsed.data;
    } else if (!isPlainObject(input)) {
      throw fail([{ path: [], message: 'expected an object (declare a `data` schema for other shapes)' }]);
    }
    let encoded = value;
    const schema = this.#data as (z.ZodType & { encode?: (v: unknown) => unknown }) | undefined;
    if (schema && typeof schema.encode === 'function') {
      // codecs (zod >= 4.1) store their input form; a one-way transform cannot encode and is
      // checked by reading back below instead
      try {
        encoded = schema.encode(value);
      } catch {
        encoded = value;
      }
    }
    const issues: ValidationIssue[] = [];
    // merged over stored data: only the fields the caller gives are checked (text, depth), as they
    // will be stored (a field the schema strips is not stored, and a codec's output is what is);
    // one equal to the stored field (a handler returning `{ ...lease.item.data, done: true }`) is
    // not written anew, and not checked either
    const fresh = given === input || !isPlainObject(given) ? true : new Set(Object.keys(given).filter((k) => !(isPlainObject(base) && k in base && same(given[k], base[k]))));
    const stored = storable(encoded, [], issues, fresh);
    if (issues.length) {
      const error = fail(issues);
      throw issues.every((i) => i.message.startsWith(DEPTH_MESSAGE)) ? limitRefusal(error) : error;
    }
    // what readers get back: the stored form as the schema reads it (without one, the stored form)
    let readBack: unknown = stored;
    if (schema) {
      const back = schema.safeParse(stored);
      if (!back.success || !same(back.data, value)) {
        throw fail(
          back.success
            ? [{ path: difference(back.data, value) ?? [], message: 'the value the schema outputs does not parse back to itself' }]
            : zodIssues(back.error),
          'leasehold stores the parsed value and parses it again when reading, so a `.transform()` must give a value its own schema accepts unchanged. Use `z.codec()` (zod 4.1+) for a two-way conversion, or transform after reading; nothing was written.',
        );
      }
      readBack = back.data;
    }
    // fields only another version declares survive this one's writes (a rolling deploy, a rollback)
    const written = isPlainObject(base) && isPlainObject(stored) && isPlainObject(given) ? withUndeclared(base, stored, given, this.#declaredData()) : stored;
    const bytes = Buffer.byteLength(JSON.stringify(written) ?? '');
    if (bytes > this.#def.maxDataBytes) {
      throw fail(
        [{ path: [], message: `${bytes} bytes of JSON exceeds \`maxDataBytes\` (${this.#def.maxDataBytes})` }],
        'Store large payloads elsewhere (a file or blob store) and keep a reference in `data`; nothing was written.',
      );
    }
    return { value: readBack, stored: written };
  }

  /** The data schema's declared fields, read at the first write that needs them (a lazy schema's getter may not run before). */
  #declaredData(): ReadonlySet<string> | undefined {
    if (this.#dataFields === null) this.#dataFields = this.#data ? declaredFields(this.#data) : undefined;
    return this.#dataFields;
  }

  /** Decodes a stored item's key (validated). */
  storedKey(operation: string, stored: ItemState): unknown {
    const key = this.#key.safeParse(stored.key);
    if (!key.success) throw new ValidationError({ operation, key: stored.key, what: 'stored key', issues: zodIssues(key.error), hint: BAD_ROW, stored: true });
    return key.data;
  }

  /** Decodes stored data (validated). */
  storedData(operation: string, stored: ItemState, data: unknown): unknown {
    if (!this.#data) return data;
    const parsed = this.#data.safeParse(data);
    if (!parsed.success) throw new ValidationError({ operation, key: stored.key, what: 'stored data', issues: zodIssues(parsed.error), hint: BAD_ROW, stored: true });
    return parsed.data;
  }

  /**
   * The item after a settle its lease guarded, without reading it back: what the lease's item
   * was, changed by `change`, with the status, fence and times the store reported. Sound
   * because while the lease holds (the guard matched its fence) nothing else wrote the item but
   * renews, which move only the deadline.
   */
  settled(operation: string, before: Item, change: Change, stored: ItemOutcome, data: unknown): Item {
    if (!this.#declared.has(stored.status)) {
      throw new ValidationError({ operation, key: before.key, what: 'stored status', issues: [{ path: ['status'], message: `\`${stored.status}\` is not a declared status` }], hint: BAD_ROW, stored: true });
    }
    const now = stored.updatedAt;
    const a = change.attempts;
    return {
      key: before.key,
      status: stored.status,
      stage: change.stage ?? before.stage,
      data,
      attempts: a === 'reset' ? 0 : a === 'decrement' ? Math.max(before.attempts - 1, 0) : a === 'increment' ? before.attempts + 1 : before.attempts,
      fence: stored.fence,
      owner: change.owner === undefined ? before.owner : change.owner,
      leaseExpiresAt: this.#active.has(stored.status) ? stored.deadline : null,
      notBefore: this.notBefore(stored),
      lastError: change.lastError === undefined ? before.lastError : change.lastError,
      createdAt: before.createdAt,
      updatedAt: now,
      claimedAt: a === 'increment' ? now : before.claimedAt,
      finishedAt: change.finished === true ? now : change.finished === false ? null : before.finishedAt,
    };
  }

  /** When an item in this state can be claimed next: its deadline while it waits in a `from` status. */
  notBefore(stored: { readonly status: string; readonly deadline?: Date | null | undefined }): Date | null {
    return this.#claimable.has(stored.status) ? (stored.deadline ?? null) : null;
  }

  /**
   * {@link notBefore} of what a settle's store call returned: a store must return the deadline
   * of an item waiting in a `from` status (see `SettleOutcome`); one that does not is named.
   */
  settledNotBefore(stored: { readonly status: string; readonly deadline?: Date | undefined }): Date | null {
    if (this.#claimable.has(stored.status) && !stored.deadline) {
      throw new Error(`[leasehold] the store returned no deadline for an item in \`${stored.status}\`, a status a stage claims from (see \`SettleOutcome\`)`);
    }
    return this.notBefore(stored);
  }

  /**
   * Builds an item from stored state, validating key and status; `data` is the decoded data
   * (read from `stored.data` when not given), `key` the decoded key (a settle passes the
   * lease's: a key never changes, so it is decoded once per claim).
   */
  item(operation: string, stored: StoredItem, options: { data?: { value: unknown }; key?: { value: unknown }; undeclared?: boolean } = {}): Item {
    const key = options.key ? options.key.value : this.storedKey(operation, stored);
    if (!options.undeclared && !this.#declared.has(stored.status)) {
      throw new ValidationError({ operation, key: stored.key, what: 'stored status', issues: [{ path: ['status'], message: `\`${stored.status}\` is not a declared status` }], hint: BAD_ROW, stored: true });
    }
    const data = options.data ? options.data.value : this.storedData(operation, stored, stored.data);
    return {
      key,
      status: stored.status,
      stage: stored.stage,
      data,
      attempts: stored.attempts,
      fence: stored.fence,
      owner: stored.owner,
      leaseExpiresAt: this.#active.has(stored.status) ? stored.deadline : null,
      notBefore: this.notBefore(stored),
      lastError: stored.lastError,
      createdAt: stored.createdAt,
      updatedAt: stored.updatedAt,
      claimedAt: stored.claimedAt,
      finishedAt: stored.finishedAt,
    };
  }
}

const BAD_ROW =
  'The stored item no longer matches the Tracker schema (edited by hand, or written by another version). Fix or delete it in the database; other items are unaffected.';
