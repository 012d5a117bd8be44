import type { z } from 'zod';
import { exponentialBackoff, type Backoff } from './backoff.js';
import { ConfigError } from './errors.js';
import type { Logger } from './events.js';
import type { KeyFieldType, Store } from './store.js';
import { delayFor, unstorableText, wellFormed } from './transitions.js';
import { describe, requireKnownOptions, requireNumber, requirePositiveInt } from './validate.js';

/** A zod object schema for item keys; every field must be a required scalar. */
export type KeySchema = z.ZodObject<z.core.$ZodShape, z.core.$ZodObjectConfig>;

/**
 * One stage of the state machine: items in a `from` status are claimed into `active`, and
 * settle in a `done` status (success) or go back to `from` / on to `failed`.
 */
export interface StageDefinition<S extends string = string> {
  /** Status(es) an item must have to be claimed for this stage. Retries return to the first. */
  readonly from: S | readonly S[];
  /** Status while a worker holds the lease. Unique to this stage. */
  readonly active: S;
  /** Status(es) `complete` may move to; the first is the default. */
  readonly done: S | readonly S[];
  /** Status an item is parked in when its attempts run out or its error is not retryable. */
  readonly failed: S;
}

/** The stages of a tracker, by name. */
export type StageMap<S extends string = string> = Readonly<Record<string, StageDefinition<S>>>;

/** The union of a stage's `done` statuses. */
export type DoneStatus<D extends StageDefinition> = D['done'] extends readonly (infer X extends string)[] ? X : D['done'] & string;

/** The longest `lease.ttlMs`: a year, in milliseconds. */
const MAX_TTL_MS = 365 * 24 * 60 * 60 * 1000;

/** Lease options. */
export interface LeaseOptions {
  /**
   * How long a claim is held without renewal, in milliseconds, judged by the store's clock; at
   * most a year (31,536,000,000).
   * @default 30000
   */
  readonly ttlMs?: number;
}

/** Retry options. */
export interface RetryOptions {
  /**
   * Claims an item may have before a failure parks it in the stage's failed status.
   * @default 5
   */
  readonly maxAttempts?: number;
  /**
   * Delay before a failed item may be claimed again, by attempt number.
   * @default exponentialBackoff({ baseMs: 1000, maxMs: 300000, jitter: true })
   */
  readonly backoff?: Backoff;
}

/** Everything that defines a {@link Tracker}. */
export interface TrackerOptions<S extends string, K extends KeySchema, D extends z.ZodType, St extends StageMap<S>> {
  /** Where items live: a MemoryStore, MongoStore, PostgresStore or SqliteStore. */
  readonly store: Store;
  /** Every status an item may have. Use `as const` (or a literal array) for typed statuses. */
  readonly statuses: readonly S[];
  /** Status of a newly tracked item. */
  readonly initial: NoInfer<S>;
  /** Schema of the item key; fields must be required strings, numbers, booleans or dates. */
  readonly key: K;
  /**
   * Schema of the item data.
   * @default z.record(z.string(), z.unknown())
   */
  readonly data?: D;
  /** The stages of the state machine. */
  readonly stages: St;
  /** Lease options. */
  readonly lease?: LeaseOptions;
  /** Retry and backoff options. */
  readonly retry?: RetryOptions;
  /**
   * Largest accepted data value, as bytes of JSON.
   * @default 1048576
   */
  readonly maxDataBytes?: number;
  /** A pino-like or console-like logger for transitions and errors. */
  readonly logger?: Logger;
}

/** A stage with its statuses as arrays, checked (what `tracker.definition.stages` lists). */
export interface StageView<S extends string = string> {
  /** The stage name. */
  readonly name: string;
  /** Statuses items are claimed from (retries return to the first). */
  readonly from: readonly S[];
  /** The status while a worker holds the lease. */
  readonly active: S;
  /** Statuses `complete` may move to. */
  readonly done: readonly S[];
  /** Where items are parked. */
  readonly failed: S;
}

/** A checked stage, inside the tracker. */
export type NormalizedStage = StageView;

/** A checked, frozen copy of the definition. */
export interface Definition {
  readonly statuses: readonly string[];
  readonly initial: string;
  readonly stages: ReadonlyMap<string, NormalizedStage>;
  readonly activeStatuses: readonly string[];
  /** Every status some stage claims from. */
  readonly fromStatuses: readonly string[];
  /** Statuses no stage claims from or holds: done for good, or failed (purge may delete these). */
  readonly terminalStatuses: readonly string[];
  readonly keyFields: ReadonlyArray<{ readonly name: string; readonly type: KeyFieldType }>;
  readonly ttlMs: number;
  readonly maxAttempts: number;
  readonly backoff: Backoff;
  readonly maxDataBytes: number;
}

const asArray = <T>(v: T | readonly T[]): readonly T[] => (Array.isArray(v) ? (v as readonly T[]) : [v as T]);

const ZOD3 =
  "leasehold needs zod 4 schemas: install zod 4 (`npm install zod@^4`, its peer dependency) and import `z` from 'zod'. (zod 3.25's 'zod/v4' runs, but leasehold's types need zod 4's.)";

/** zod 3 schemas have `_def` but no `_zod`: they would be misread field by field. */
function requireZod4(option: string, schema: unknown): void {
  if (schema && typeof schema === 'object' && !('_zod' in schema) && '_def' in schema) throw new ConfigError(option, ZOD3);
}

/** Every option of a tracker, of `lease`, of `retry` and of a stage (a name outside them is a typo, refused); the types keep them complete. */
const TRACKER_OPTIONS = Object.keys({
  store: true,
  statuses: true,
  initial: true,
  key: true,
  data: true,
  stages: true,
  lease: true,
  retry: true,
  maxDataBytes: true,
  logger: true,
} satisfies Record<keyof TrackerOptions<string, KeySchema, z.ZodType, StageMap>, true>);
const LEASE_OPTIONS = Object.keys({ ttlMs: true } satisfies Record<keyof LeaseOptions, true>);
const RETRY_OPTIONS = Object.keys({ maxAttempts: true, backoff: true } satisfies Record<keyof RetryOptions, true>);
const STAGE_OPTIONS = Object.keys({ from: true, active: true, done: true, failed: true, name: true } satisfies Record<keyof StageDefinition | 'name', true>);

/** The values a zod enum accepts: its `options`, else the entries' values. */
function enumValues(schema: unknown, entries: Record<string, unknown> | undefined): unknown[] {
  const options = (schema as { options?: unknown }).options;
  return Array.isArray(options) ? options : Object.values(entries ?? {});
}

/** The one type of a literal's or an enum's values: a column has one type, so mixed ones are refused. */
function oneType(name: string, types: ReadonlyArray<KeyFieldType | undefined>): KeyFieldType | undefined {
  const kinds = new Set(types);
  if (kinds.size > 1) {
    throw new ConfigError(`key.${name}`, `the values of a key field must all be of one type (strings, numbers or booleans), got ${[...kinds].map(String).join(' and ')}; split it into two fields or use one type.`);
  }
  return types[0];
}

function keyFieldType(name: string, schema: unknown): KeyFieldType {
  const def = (schema as { _zod?: { def?: { type?: string; values?: unknown[]; entries?: Record<string, unknown> } } })
    ?._zod?.def;
  const scalar = (v: unknown): KeyFieldType | undefined =>
    typeof v === 'string' ? 'string' : typeof v === 'number' ? 'number' : typeof v === 'boolean' ? 'boolean' : undefined;
  let type: KeyFieldType | undefined;
  switch (def?.type) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'date':
      type = def.type;
      break;
    case 'literal':
      type = oneType(name, (def.values ?? []).map(scalar));
      break;
    case 'enum':
      // the values the schema accepts (a TypeScript numeric enum's entries also map names back)
      type = oneType(name, enumValues(schema, def.entries).map(scalar));
      break;
  }
  if (!type) {
    throw new ConfigError(
      `key.${name}`,
      `key fields must be required scalars (z.string(), z.number(), z.boolean(), z.date(), z.enum() or z.literal()), got \`${def?.type ?? typeof schema}\`. Move other values into \`data\`.`,
    );
  }
  return type;
}

/** The longest status or stage name: PostgreSQL's wake-up notification carries a status, in at most 8,000 bytes. */
const MAX_NAME_LENGTH = 200;

/** A status or stage name: well-formed text (stores keep it as UTF-8), not `__proto__` (it names things in plain objects), at most {@link MAX_NAME_LENGTH} characters. */
function requireName(option: string, name: string): void {
  if (name === '__proto__' || unstorableText(name) !== undefined) throw new ConfigError(option, `\`${wellFormed(name)}\` cannot be a name: use well-formed text other than \`__proto__\`.`);
  if (name.length > MAX_NAME_LENGTH) throw new ConfigError(option, `a name of ${name.length} characters is too long: names are at most ${MAX_NAME_LENGTH} characters.`);
}

/** Checks a definition and returns a frozen, normalised copy. Throws ConfigError. */
export function normalizeDefinition(options: TrackerOptions<string, KeySchema, z.ZodType, StageMap>): Definition {
  if (!options || typeof options !== 'object') throw new ConfigError('options', 'expected an object.');
  requireKnownOptions('', options, TRACKER_OPTIONS);
  requireKnownOptions('lease', options.lease, LEASE_OPTIONS);
  requireKnownOptions('retry', options.retry, RETRY_OPTIONS);
  const store = options.store as Partial<Store> | undefined;
  if (!store || typeof store.update !== 'function' || typeof store.insert !== 'function') {
    throw new ConfigError('store', 'expected a store such as `new MemoryStore()` or `new SqliteStore({ ... })`.');
  }
  if (!Array.isArray(options.statuses) || options.statuses.length === 0) {
    throw new ConfigError('statuses', 'expected a non-empty array of status names.');
  }
  const statuses = [...options.statuses];
  const known = new Set<string>();
  for (const s of statuses) {
    if (typeof s !== 'string' || s.length === 0) throw new ConfigError('statuses', `expected non-empty strings, got ${describe(s)}.`);
    requireName('statuses', s);
    if (known.has(s)) throw new ConfigError('statuses', `\`${s}\` is listed twice.`);
    known.add(s);
  }
  const check = (option: string, s: unknown): string => {
    if (typeof s !== 'string' || !known.has(s)) {
      throw new ConfigError(option, `\`${String(s)}\` is not one of the declared statuses (${statuses.join(', ')}).`);
    }
    return s;
  };
  const initial = check('initial', options.initial);

  if (!options.stages || typeof options.stages !== 'object' || Object.keys(options.stages).length === 0) {
    throw new ConfigError('stages', 'expected at least one stage, such as `{ process: { from, active, done, failed } }`.');
  }
  const stages = new Map<string, NormalizedStage>();
  const activeOwner = new Map<string, string>();
  const passive = new Set<string>([initial]);
  for (const [name, raw] of Object.entries(options.stages)) {
    const at = `stages.${name}`;
    requireName(at, name);
    if (!raw || typeof raw !== 'object') throw new ConfigError(at, 'expected `{ from, active, done, failed }`.');
    // `name` too: the stages of `tracker.definition` (StageViews) carry it, and may be given back
    requireKnownOptions(at, raw, STAGE_OPTIONS);
    const named = (raw as { name?: unknown }).name;
    if (named !== undefined && named !== name) throw new ConfigError(`${at}.name`, `\`${String(named)}\` differs from the stage's key \`${name}\`; leave \`name\` out (the key names the stage).`);
    // a status listed twice means it once (stores merge one index range per listed status)
    const from = [...new Set(asArray(raw.from).map((s, i) => check(`${at}.from[${i}]`, s)))];
    const done = [...new Set(asArray(raw.done).map((s, i) => check(`${at}.done[${i}]`, s)))];
    if (from.length === 0) throw new ConfigError(`${at}.from`, 'expected at least one status.');
    if (done.length === 0) throw new ConfigError(`${at}.done`, 'expected at least one status.');
    const active = check(`${at}.active`, raw.active);
    const failed = check(`${at}.failed`, raw.failed);
    if (from.includes(failed)) {
      // parking an item would leave it claimable by the same stage: claimed and parked again, forever
      throw new ConfigError(`${at}.failed`, `\`${failed}\` is also a status stage \`${name}\` claims from; a stage's failed status must be one it does not claim from.`);
    }
    if (activeOwner.has(active)) {
      throw new ConfigError(`${at}.active`, `\`${active}\` is already the active status of stage \`${activeOwner.get(active)}\`; each stage needs its own.`);
    }
    activeOwner.set(active, name);
    for (const s of [...from, ...done, failed]) passive.add(s);
    stages.set(name, Object.freeze({ name, from, active, done, failed }));
  }
  // a status both leased and waited in first: it also reads as an initial status no stage claims
  for (const [active, name] of activeOwner) {
    if (passive.has(active)) {
      throw new ConfigError(`stages.${name}.active`, `\`${active}\` is also used as an initial, from, done or failed status; an active status must only mean "leased".`);
    }
  }
  if (![...stages.values()].some((stage) => stage.from.includes(initial) || stage.failed === initial)) {
    // tracked items would sit there for good: no stage claims them, and retry, cancel and
    // reschedule act only on statuses some stage claims from or parks into (an initial status
    // that is a stage's failed one is a gate: `retry` lets an item in)
    throw new ConfigError(
      'initial',
      `\`${initial}\` is a status no stage claims from or fails into, so tracked items could never be claimed, cancelled or retried; list it in a stage's \`from\` (${[...stages.keys()].join(', ')}), or make such a status the initial one.`,
    );
  }

  requireZod4('key', options.key);
  requireZod4('data', options.data);
  // `data: null` is no schema, as an absent one
  if (options.data !== undefined && options.data !== null && typeof (options.data as { safeParse?: unknown }).safeParse !== 'function') {
    throw new ConfigError('data', 'expected a zod schema, such as `z.object({ url: z.string() })` (or leave it out: any JSON object).');
  }
  const shape = (options.key as { shape?: Record<string, unknown> } | undefined)?.shape;
  if (!shape || typeof shape !== 'object' || Object.keys(shape).length === 0) {
    throw new ConfigError('key', 'expected a zod object schema with at least one field, such as `z.object({ id: z.string() })`.');
  }
  const lowered = new Set<string>();
  const keyFields = Object.entries(shape).map(([name, schema]) => {
    // stores keep key fields apart from their own (SQL columns `key_<name>`, MongoDB `key.<name>`),
    // so any name works; 59 characters leave room for the prefix in a 63-character identifier
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,58}$/.test(name) || name === '__proto__') {
      throw new ConfigError(`key.${name}`, 'key field names must be letters, digits and `_` (no `$` or `.`), starting with a letter or `_`, at most 59 characters, and not `__proto__`.');
    }
    if (lowered.has(name.toLowerCase())) {
      throw new ConfigError(`key.${name}`, 'two key fields differ only in letter case; SQL column names do not tell them apart. Rename one.');
    }
    lowered.add(name.toLowerCase());
    requireZod4(`key.${name}`, schema);
    return Object.freeze({ name, type: keyFieldType(name, schema) });
  });

  // a lease length stored with each claim, not a timer: the worker's timers built from it are capped
  const ttlMs = requireNumber('lease.ttlMs', options.lease?.ttlMs ?? 30_000, {
    min: 0,
    max: MAX_TTL_MS,
    integer: true,
    allowZero: false,
    why: 'a year at most: a lease that must practically never expire is a long one, not an endless one, whose deadline would be no valid Date',
  });
  const maxAttempts = requirePositiveInt('retry.maxAttempts', options.retry?.maxAttempts ?? 5);
  const backoff = options.retry?.backoff ?? exponentialBackoff({ baseMs: 1_000, maxMs: 300_000, jitter: true });
  if (typeof backoff !== 'function') throw new ConfigError('retry.backoff', 'expected a function `(attempt) => ms`.');
  // the attempts a failure can follow, so that a bad value fails here and not in a later reap:
  // every one of the first hundred, and the last (a huge maximum means "retry for ever")
  for (let attempt = 1; attempt <= Math.min(maxAttempts, 100); attempt++) delayFor(backoff, attempt);
  if (maxAttempts > 100) delayFor(backoff, maxAttempts);
  const maxDataBytes = requireNumber('maxDataBytes', options.maxDataBytes ?? 1_048_576, { min: 1, integer: true });

  const fromStatuses = [...new Set([...stages.values()].flatMap((st) => st.from))];
  return Object.freeze({
    statuses,
    initial,
    stages,
    activeStatuses: [...activeOwner.keys()],
    fromStatuses,
    terminalStatuses: statuses.filter((st) => st !== initial && !fromStatuses.includes(st) && !activeOwner.has(st)),
    keyFields,
    ttlMs,
    maxAttempts,
    backoff,
    maxDataBytes,
  });
}

/**
 * Checks that `status` is a finished status (one no stage claims from or holds): the only
 * items `purge` and a worker's `retention` may delete. Throws a ConfigError naming `option`.
 */
export function requireFinishedStatus(def: Pick<Definition, 'statuses' | 'terminalStatuses'>, option: string, status: unknown): string {
  if (typeof status === 'string' && def.terminalStatuses.includes(status)) return status;
  const why = !def.statuses.includes(status as string)
    ? 'is not a declared status'
    : 'is not a finished status: items wait in or are held in it (a stage claims from it, it is active, or it is the initial status)';
  throw new ConfigError(option, `\`${String(status)}\` ${why}; only finished items are deleted: ${def.terminalStatuses.join(', ') || '(none in this definition)'}.`);
}
