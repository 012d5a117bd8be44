/**
 * Errors thrown by leasehold. Losing a race is a result (`null`), never an error;
 * these classes cover misuse, a lost lease and a failing store.
 * @module
 */

/** Describes a key in error messages without dumping large values. */
export function describeKey(key: unknown): string {
  if (key === undefined) return '(no key)';
  try {
    // JSON would show NaN and ±Infinity (often why a key is refused) as null
    const shown = (v: unknown) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'number' && !Number.isFinite(v) ? String(v) : v);
    const text = JSON.stringify(key, (_k, v: unknown) => shown(v)) ?? String(key);
    return text.length > 200 ? `${text.slice(0, 197)}...` : text;
  } catch {
    return String(key);
  }
}

/**
 * Marks leasehold's errors, whichever copy of the package made them (see `Symbol.hasInstance`):
 * the value is the list of leasehold classes the error is an instance of, by kind.
 */
const BRAND = Symbol.for('leasehold.error');

/** Base class of every error leasehold throws; `name` is set on each subclass. */
export class LeaseholdError extends Error {
  /** Always `LeaseholdError`. */
  override name = 'LeaseholdError';

  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    const kinds: string[] = [];
    for (let c: unknown = new.target; typeof c === 'function'; c = Object.getPrototypeOf(c)) {
      const kind = KINDS.get(c);
      if (kind) kinds.push(kind);
    }
    Object.defineProperty(this, BRAND, { value: Object.freeze(kinds) });
  }

  /**
   * `instanceof` also across two copies of leasehold in one process: an application loaded both
   * with `import` (ESM) and with `require` (CommonJS) has two of each class, and an error thrown
   * by one copy (a handler's `NonRetryableError`, a store's `StoreError`, or a subclass of one)
   * must still be one for the other. Another copy's error is recognised by the kinds of
   * leasehold class it was made as.
   */
  static override [Symbol.hasInstance]<T>(this: abstract new (...args: never[]) => T, value: unknown): value is T {
    try {
      if (Function.prototype[Symbol.hasInstance].call(this, value)) return true;
      const kind = KINDS.get(this);
      const kinds = value instanceof Error ? (value as { [BRAND]?: unknown })[BRAND] : undefined;
      return kind !== undefined && Array.isArray(kinds) && Object.isFrozen(kinds) && kinds.includes(kind);
    } catch {
      // a thrown proxy whose traps throw is none of leasehold's errors: the check that meets it
      // (is it a NonRetryableError?) must not throw in its place, and leave its item held
      return false;
    }
  }
}

/** What the store holds for an item at the moment a lease was found lost. */
export interface HeldState {
  /** Current status, or `null` when the item no longer exists. */
  readonly status: string | null;
  /** Current fence, or `null` when the item no longer exists. */
  readonly fence: number | null;
  /** Current owner, if any: the holder while leased, else the last one. */
  readonly owner: string | null;
  /** Whether a lease holds the item now (it is in a stage's active status). */
  readonly leased?: boolean;
}

/**
 * Thrown by `renew`, `complete`, `fail` and `release` when the caller's lease is no
 * longer the one the store holds: it expired and was reaped, another worker claimed the
 * item, or it was already settled. Nothing was changed.
 *
 * @example
 * ```ts
 * try { await tracker.complete(lease); }
 * catch (err) { if (err instanceof LeaseLostError) log.warn(err.message); else throw err; }
 * ```
 */
export class LeaseLostError extends LeaseholdError {
  /** Always `LeaseLostError`. */
  override name = 'LeaseLostError';
  /** The operation that found the lease lost (`complete`, `renew`, ...). */
  readonly operation: string;
  /** The item's key. */
  readonly key: unknown;
  /** The stage the lease was claimed for. */
  readonly stage: string;
  /** The fence the caller's lease carries. */
  readonly expectedFence: number;
  /** The fence the store holds now (`null` if the item is gone). */
  readonly actualFence: number | null;
  /** The status the store holds now (`null` if the item is gone). */
  readonly status: string | null;
  /** The owner the store holds now. */
  readonly actualOwner: string | null;

  /** Why: `settled` when this process already completed, failed or released this lease; else `lost`. */
  readonly reason: 'settled' | 'lost';

  constructor(args: { operation: string; key: unknown; stage: string; expectedFence: number; held: HeldState; settledBy?: 'completed' | 'failed' | 'released' }) {
    const { operation, key, stage, expectedFence, held, settledBy } = args;
    const now =
      held.status === null
        ? 'the item no longer exists'
        : `the store holds status \`${held.status}\` with fence ${held.fence}${held.owner ? `, ${held.leased === false ? 'last held' : 'held'} by \`${held.owner}\`` : ''}`;
    super(
      settledBy
        ? `[leasehold] \`${operation}\` of item ${describeKey(key)} in stage \`${stage}\` refused: this lease (fence ${expectedFence}) was already ${settledBy} by this process, and a lease settles once (${now}). ` +
            'Remove the second call; nothing was changed.'
        : `[leasehold] \`${operation}\` of item ${describeKey(key)} in stage \`${stage}\` refused: the lease with fence ${expectedFence} is no longer held (${now}). ` +
            'Stop working on this item and discard its results; the current holder (or a later claim) owns it now.',
    );
    this.reason = settledBy ? 'settled' : 'lost';
    this.operation = operation;
    this.key = key;
    this.stage = stage;
    this.expectedFence = expectedFence;
    this.actualFence = held.fence;
    this.status = held.status;
    this.actualOwner = held.owner;
  }
}

/** One problem found while validating a key or data value. */
export interface ValidationIssue {
  /** Where in the value the problem is. */
  readonly path: ReadonlyArray<PropertyKey>;
  /** What is wrong. */
  readonly message: string;
}

/** Validation issues in one line: `path: message; path: message` (`(root)` for the value itself). */
export function issuesText(issues: readonly { readonly path: readonly PropertyKey[]; readonly message: string }[]): string {
  return issues.map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`).join('; ');
}

/**
 * Thrown when a key or data value fails its schema (before anything is written), or when
 * an item read back from the store no longer matches its schema.
 */
export class ValidationError extends LeaseholdError {
  /** Always `ValidationError`. */
  override name = 'ValidationError';
  /** The operation that validated (`track`, `complete`, `claim`, `read`, ...). */
  readonly operation: string;
  /** The item's key as given (may itself be the invalid part). */
  readonly key: unknown;
  /** The individual problems. */
  readonly issues: readonly ValidationIssue[];
  /**
   * Whether the operation's change was written before the problem was found: an operator verb
   * (`retry`, `cancel`, `reschedule`) applied to an item whose stored data no longer fits the
   * schema, or a claim that took such an item and parked it in its stage's failed status (fix
   * it, then `retry` it). `false` for every other case, where nothing was written.
   */
  readonly applied: boolean;
  /**
   * Whether the invalid value was read back from the store — an item that no longer fits the
   * schema (changed by a deploy, or written by hand) — rather than given by the caller.
   */
  readonly stored: boolean;

  constructor(args: { operation: string; key: unknown; what: string; issues: readonly ValidationIssue[]; hint?: string; applied?: boolean; stored?: boolean }) {
    const list = issuesText(args.issues);
    super(
      `[leasehold] \`${args.operation}\` of item ${describeKey(args.key)}: invalid ${args.what} (${list}). ` +
        (args.hint ?? `Fix the value to match the schema given to the Tracker${READS.has(args.operation) ? '' : '; nothing was written'}.`),
    );
    this.operation = args.operation;
    this.key = args.key;
    this.issues = args.issues;
    this.applied = args.applied ?? false;
    this.stored = args.stored ?? false;
  }
}

/** Thrown at construction (or call time) for a definition or option that cannot work. */
export class ConfigError extends LeaseholdError {
  /** Always `ConfigError`. */
  override name = 'ConfigError';
  /** The option at fault, such as `lease.ttlMs` or `stages.download.from`. */
  readonly option: string;

  constructor(option: string, message: string) {
    super(`[leasehold] Invalid option \`${option}\`: ${message}`);
    this.option = option;
  }
}

/** What kind of store failure an error is. */
export type StoreFailure = 'transient' | 'schema' | 'other';

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND',
  'SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_BUSY_RECOVERY', 'SQLITE_PROTOCOL',
  // PostgreSQL: serialization failure, deadlock, lock not available, too many connections, shutdown, cannot connect now
  '40001', '40P01', '55P03', '53300', '57P01', '57P02', '57P03', '57014',
  // PostgreSQL: connection exceptions (class 08: lost, refused, commit outcome unknown), and a
  // read-only transaction: a pool still connected to a primary demoted by a failover
  '08000', '08001', '08003', '08004', '08006', '08007', '25006',
]);
// MongoDB server errors during a failover or shutdown (the driver's own list of retryable codes):
// HostUnreachable, HostNotFound, NetworkTimeout, ShutdownInProgress, PrimarySteppedDown,
// ExceededTimeLimit, SocketException, LegacyNotPrimary, NotWritablePrimary, InterruptedAtShutdown,
// InterruptedDueToReplStateChange, NotPrimaryNoSecondaryOk, NotPrimaryOrSecondary
const MONGO_TRANSIENT_CODES = new Set([6, 7, 89, 91, 189, 262, 9001, 10058, 10107, 11600, 11602, 13435, 13436]);
const TRANSIENT_NAMES = /^(MongoNetworkError|MongoNetworkTimeoutError|MongoServerSelectionError|MongoWriteConcernError|MongoNotConnectedError|MongoPoolClearedError|TimeoutError|AbortError|MaxRetriesPerRequestError)$/;
// Redis replies during a long script, a restart, a failover or a resharding
const REDIS_TRANSIENT = /^(?:BUSY|LOADING|READONLY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN) /;
const TRANSIENT_TEXT = /timeout|timed out|terminated|connection (?:closed|reset|refused|lost|ended)|ECONN|socket hang up|not connected|database is locked|database is busy/i;
// PostgreSQL: undefined column/table, duplicate table, datatype mismatch, wrong object type; SQLite and MongoDB wording
const SCHEMA_CODES = new Set(['42703', '42P01', '42P07', '42804', '42809', '42P16']);
const SCHEMA_TEXT = /no such (?:column|table)|has no column|(?:column|relation) .* does not exist|\b(?:table|relation|index)\b(?: .*)? already exists|there is already an? (?:table|index) named|IndexOptionsConflict|IndexKeySpecsConflict/i;

/** Sorts a driver error: a passing fault (safe to retry), a table that does not fit, or other. */
export function classifyStoreFailure(cause: unknown): StoreFailure {
  const seen = new Set<unknown>();
  for (let e: unknown = cause; e && typeof e === 'object' && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e);
    const err = e as { code?: unknown; name?: unknown; message?: unknown; transient?: unknown; hasErrorLabel?: (l: string) => boolean };
    // a store of one's own marks a passing fault its driver's codes do not tell (see writing-a-store)
    if (err.transient === true) return 'transient';
    const code = String(err.code ?? '');
    const message = String(err.message ?? '');
    if (SCHEMA_CODES.has(code) || SCHEMA_TEXT.test(message)) return 'schema';
    if (TRANSIENT_CODES.has(code) || TRANSIENT_NAMES.test(String(err.name ?? '')) || TRANSIENT_TEXT.test(message) || REDIS_TRANSIENT.test(message)) return 'transient';
    // numeric codes are MongoDB's (PostgreSQL's SQLSTATEs are strings); only a Mongo error is read by them
    if (typeof err.code === 'number' && /^Mongo/.test(String(err.name ?? '')) && MONGO_TRANSIENT_CODES.has(err.code)) return 'transient';
    if (typeof err.hasErrorLabel === 'function' && (err.hasErrorLabel('RetryableWriteError') || err.hasErrorLabel('TransientTransactionError'))) return 'transient';
  }
  return 'other';
}

/** What a failed operation did to the items: a transition, an operator verb, a read, `init`, or a `purge`. */
type OperationKind = 'transition' | 'operate' | 'read' | 'init' | 'purge';

/** Tracker operations that only read (all else but `init` and `purge` is a guarded transition). */
const READS = new Set(['get', 'find', 'stats']);

/** Operator verbs: conditional updates by key or status, not guarded by a lease's fence. */
const OPERATE = new Set(['retry', 'retryAll', 'cancel', 'reschedule']);

const kindOf = (operation: string): OperationKind =>
  operation === 'init' || operation === 'purge' ? operation : READS.has(operation) ? 'read' : OPERATE.has(operation) ? 'operate' : 'transition';

const PASSING = 'A passing fault (connection, timeout, lock contention)';
const ADVICE: Record<'transient' | 'other', Record<OperationKind, string>> = {
  transient: {
    transition: `${PASSING}: the operation did not take effect or its outcome is unknown, and it is safe to retry, as every transition is guarded by status and fence.`,
    operate: `${PASSING}: the operation did not take effect or its outcome is unknown. Look at the item (\`get\`, or \`leasehold show\`) before running it again: a second run acts on whatever matches then (a reschedule moves the time again; a retryAll retries what was parked since).`,
    read: `${PASSING}: a read changes nothing, and it is safe to retry.`,
    init: `${PASSING}: \`init\` creates only what is missing, so it is safe to run again.`,
    purge: `${PASSING}: some finished items may have been deleted; a purge deletes only finished items, so it is safe to run again.`,
  },
  other: {
    transition: 'See the cause; the transition is guarded by status and fence, so a retry can never apply it twice.',
    operate: 'See the cause, and look at the item (or items) before running it again: a single-item verb is one conditional update, applied wholly or not at all; a retryAll keeps the batches that went through.',
    read: 'See the cause; a read changes nothing.',
    init: 'See the cause; `init` creates only what is missing, so run it again once the cause is fixed.',
    purge: 'See the cause; a purge deletes only finished items, so it is safe to run again.',
  },
};
const SCHEMA_ADVICE =
  'The table or collection does not have the shape leasehold expects: it may belong to another program or an older leasehold version. Point the store at a table of its own (the `table`/`collection` option), or migrate it (see the store\'s docs page).';

/** What to do about a failed store call, by the kind of failure and of operation. */
function adviceFor(failure: StoreFailure, operation: string): string {
  return failure === 'schema' ? SCHEMA_ADVICE : ADVICE[failure][kindOf(operation)];
}

/** Thrown when the underlying database fails; the driver's error is in `cause`. */
export class StoreError extends LeaseholdError {
  /** Always `StoreError`. */
  override name = 'StoreError';
  /** The tracker or store operation that failed. */
  readonly operation: string;
  /** The store's name (`memory`, `mongodb`, `postgres`, `sqlite`). */
  readonly store: string;
  /** The item key involved, when there is one. */
  readonly key: unknown;
  /** `transient`: a passing fault, safe to retry; `schema`: the table does not fit; `other`. */
  readonly failure: StoreFailure;

  constructor(args: { operation: string; store: string; key?: unknown; cause: unknown; failure?: StoreFailure }) {
    const reason = args.cause instanceof Error ? args.cause.message : String(args.cause);
    // a store that checked the table itself says what it found; else the driver's error tells
    const failure = args.failure ?? classifyStoreFailure(args.cause);
    super(
      `[leasehold] [${args.store}] \`${args.operation}\`${args.key === undefined ? '' : ` of item ${describeKey(args.key)}`} failed: ${reason.replace(/\.$/, '')}. ${adviceFor(failure, args.operation)}`,
      { cause: args.cause },
    );
    this.operation = args.operation;
    this.store = args.store;
    this.key = args.key;
    this.failure = failure;
  }

  /** Whether a retry may succeed (a passing fault). */
  get transient(): boolean {
    return this.failure === 'transient';
  }
}

/** The error every store throws when used before `init()`. */
export function notInitialised(store: string, operation: string): StoreError {
  return new StoreError({ operation, store, cause: new Error('the store is not initialised; call `tracker.init()` first (every Tracker call runs it implicitly)') });
}

/**
 * Throw (or pass to `fail`) to park an item in its stage's failed status at once, without
 * further retries.
 *
 * @example
 * ```ts
 * throw new NonRetryableError('checksum mismatch on a file the partner will never fix');
 * ```
 */
export class NonRetryableError extends LeaseholdError {
  /** Always `NonRetryableError`. */
  override name = 'NonRetryableError';
}

/**
 * The reason `lease.signal` aborts with when a worker's handler runs past the `handlerTimeoutMs`
 * option of `tracker.work()`; the attempt fails with it (retried after backoff while attempts
 * remain).
 *
 * @example
 * ```ts
 * tracker.work('download', async (lease) => {
 *   await fetch(url, { signal: lease.signal }); // rejects with the signal's reason at the timeout
 * }, { handlerTimeoutMs: 60_000 });
 * ```
 */
export class HandlerTimeoutError extends LeaseholdError {
  /** Always `HandlerTimeoutError`. */
  override name = 'HandlerTimeoutError';
  /** The item's key. */
  readonly key: unknown;
  /** The limit that passed, in milliseconds. */
  readonly timeoutMs: number;

  constructor(key: unknown, timeoutMs: number) {
    super(
      `[leasehold] the handler of ${describeKey(key)} did not finish within \`handlerTimeoutMs\` (${timeoutMs} ms): its lease's signal was aborted and the attempt failed. ` +
        'What the handler returns after this is not written; pass `lease.signal` to whatever can hang, so that it ends and frees its slot.',
    );
    this.key = key;
    this.timeoutMs = timeoutMs;
  }
}

/** leasehold's error classes by kind, the same in every copy of the package (see LeaseholdError). */
const KINDS = new Map<unknown, string>([
  [LeaseholdError, 'LeaseholdError'],
  [LeaseLostError, 'LeaseLostError'],
  [ValidationError, 'ValidationError'],
  [ConfigError, 'ConfigError'],
  [StoreError, 'StoreError'],
  [NonRetryableError, 'NonRetryableError'],
  [HandlerTimeoutError, 'HandlerTimeoutError'],
]);
