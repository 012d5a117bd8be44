import type { z } from 'zod';
import type { Definition } from './definition.js';
import { ValidationError, type ValidationIssue } from './errors.js';
import type { KeyValues, StoredItem } from './store.js';

/** An item as the Tracker returns it: typed key, status and data, with both time views. */
export interface Item<S extends string = string, K = unknown, D = unknown> {
  /** The item key. */
  readonly key: K;
  /** Current status. */
  readonly status: S;
  /** Current data. */
  readonly data: D;
  /** Claims so far. */
  readonly attempts: number;
  /** Fencing token of the latest claim (or reap). */
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

const isScalar = (v: unknown): boolean =>
  typeof v === 'string' ||
  typeof v === 'boolean' ||
  (typeof v === 'number' && Number.isFinite(v)) ||
  (v instanceof Date && !Number.isNaN(v.getTime()));

const zodIssues = (error: z.ZodError): ValidationIssue[] =>
  error.issues.map((i) => ({ path: i.path, message: i.message }));

/** Validates keys and data against the definition, and decodes stored items. */
export class Codec {
  readonly #def: Definition;
  readonly #key: z.ZodType;
  readonly #data: z.ZodType | undefined;
  readonly #fieldNames: ReadonlySet<string>;
  readonly #claimable: ReadonlySet<string>;

  constructor(def: Definition, key: z.ZodType, data: z.ZodType | undefined) {
    this.#def = def;
    this.#key = key;
    this.#data = data;
    this.#fieldNames = new Set(def.keyFields.map((f) => f.name));
    this.#claimable = new Set([...def.stages.values()].flatMap((s) => s.from));
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
    for (const [field, value] of Object.entries(key)) {
      if (!this.#fieldNames.has(field)) {
        issues.push({ path: [field], message: `unknown key field (declared: ${[...this.#fieldNames].join(', ')})` });
      } else if (!isScalar(value)) {
        issues.push({ path: [field], message: 'key values must be a string, finite number, boolean or valid Date; objects such as query operators are rejected' });
      }
    }
    if (issues.length) throw new ValidationError({ operation, key, what: 'key', issues });
    const parsed = this.#key.safeParse(key);
    if (!parsed.success) throw new ValidationError({ operation, key, what: 'key', issues: zodIssues(parsed.error) });
    return parsed.data as KeyValues;
  }

  /** Checks data against its schema and the size limit; returns the parsed value. */
  data(operation: string, key: unknown, data: unknown): unknown {
    let value = data;
    if (this.#data) {
      const parsed = this.#data.safeParse(data);
      if (!parsed.success) throw new ValidationError({ operation, key, what: 'data', issues: zodIssues(parsed.error) });
      value = parsed.data;
    } else if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      throw new ValidationError({ operation, key, what: 'data', issues: [{ path: [], message: 'expected an object (declare a `data` schema for other shapes)' }] });
    }
    let bytes: number;
    try {
      bytes = Buffer.byteLength(JSON.stringify(value) ?? '');
    } catch (error) {
      throw new ValidationError({ operation, key, what: 'data', issues: [{ path: [], message: `not serialisable: ${(error as Error).message}` }] });
    }
    if (bytes > this.#def.maxDataBytes) {
      throw new ValidationError({
        operation,
        key,
        what: 'data',
        issues: [{ path: [], message: `${bytes} bytes of JSON exceeds \`maxDataBytes\` (${this.#def.maxDataBytes})` }],
        hint: 'Store large payloads elsewhere (a file or blob store) and keep a reference in `data`; nothing was written.',
      });
    }
    return value;
  }

  /** Decodes a stored item, validating key and data; a bad row names the item. */
  item(operation: string, stored: StoredItem): Item {
    const hint =
      'The stored item no longer matches the Tracker schema (edited by hand, or written by another version). Fix or delete it in the database; other items are unaffected.';
    const key = this.#key.safeParse(stored.key);
    if (!key.success) throw new ValidationError({ operation, key: stored.key, what: 'stored key', issues: zodIssues(key.error), hint });
    let data: unknown = stored.data;
    if (this.#data) {
      const parsed = this.#data.safeParse(stored.data);
      if (!parsed.success) throw new ValidationError({ operation, key: stored.key, what: 'stored data', issues: zodIssues(parsed.error), hint });
      data = parsed.data;
    }
    if (!this.#def.statuses.includes(stored.status)) {
      throw new ValidationError({ operation, key: stored.key, what: 'stored status', issues: [{ path: ['status'], message: `\`${stored.status}\` is not a declared status` }], hint });
    }
    const active = this.#def.activeStatuses.includes(stored.status);
    return {
      key: key.data,
      status: stored.status,
      data,
      attempts: stored.attempts,
      fence: stored.fence,
      owner: stored.owner,
      leaseExpiresAt: active ? stored.deadline : null,
      notBefore: this.#claimable.has(stored.status) ? stored.deadline : null,
      lastError: stored.lastError,
      createdAt: stored.createdAt,
      updatedAt: stored.updatedAt,
      claimedAt: stored.claimedAt,
      finishedAt: stored.finishedAt,
    };
  }
}
