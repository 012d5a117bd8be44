/**
 * Errors thrown by leasehold. Losing a race is a result (`null`), never an error;
 * these classes cover misuse, a lost lease and a failing store.
 * @module
 */

/** Describes a key in error messages without dumping large values. */
export function describeKey(key: unknown): string {
  if (key === undefined) return '(no key)';
  try {
    const text = JSON.stringify(key, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
    return text.length > 200 ? `${text.slice(0, 197)}...` : text;
  } catch {
    return String(key);
  }
}

/** Base class of every error leasehold throws; `name` is set on each subclass. */
export class LeaseholdError extends Error {
  /** Always `LeaseholdError`. */
  override name = 'LeaseholdError';
}

/** What the store holds for an item at the moment a lease was found lost. */
export interface HeldState {
  /** Current status, or `null` when the item no longer exists. */
  readonly status: string | null;
  /** Current fence, or `null` when the item no longer exists. */
  readonly fence: number | null;
  /** Current owner, if any. */
  readonly owner: string | null;
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

  constructor(args: { operation: string; key: unknown; stage: string; expectedFence: number; held: HeldState }) {
    const { operation, key, stage, expectedFence, held } = args;
    const now =
      held.status === null
        ? 'the item no longer exists'
        : `the store holds status \`${held.status}\` with fence ${held.fence}${held.owner ? ` owned by \`${held.owner}\`` : ''}`;
    super(
      `[leasehold] \`${operation}\` of item ${describeKey(key)} in stage \`${stage}\` refused: the lease with fence ${expectedFence} is no longer held (${now}). ` +
        'Stop working on this item and discard its results; the current holder (or a later claim) owns it now.',
    );
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

  constructor(args: { operation: string; key: unknown; what: string; issues: readonly ValidationIssue[]; hint?: string }) {
    const list = args.issues
      .map((i) => `${i.path.length ? i.path.map(String).join('.') : '(root)'}: ${i.message}`)
      .join('; ');
    super(
      `[leasehold] \`${args.operation}\` of item ${describeKey(args.key)}: invalid ${args.what} (${list}). ` +
        (args.hint ?? 'Fix the value to match the schema given to the Tracker; nothing was written.'),
    );
    this.operation = args.operation;
    this.key = args.key;
    this.issues = args.issues;
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

  constructor(args: { operation: string; store: string; key?: unknown; cause: unknown }) {
    const reason = args.cause instanceof Error ? args.cause.message : String(args.cause);
    super(
      `[leasehold] [${args.store}] \`${args.operation}\`${args.key === undefined ? '' : ` of item ${describeKey(args.key)}`} failed: ${reason}. ` +
        'The operation did not take effect or its outcome is unknown; it is safe to retry, as every transition is guarded by status and fence.',
      { cause: args.cause },
    );
    this.operation = args.operation;
    this.store = args.store;
    this.key = args.key;
  }
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
