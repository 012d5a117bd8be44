/**
 * The conditional updates behind each hand-off, as plain data: the Tracker sends them to the
 * store, and nothing here touches a store.
 * @module
 */
import { delayFor } from './backoff.js';
import type { Codec } from './codec.js';
import type { Definition, NormalizedStage } from './definition.js';
import { ConfigError, NonRetryableError } from './errors.js';
import type { Lease } from './lease.js';
import type { Change, Condition, KeyValues } from './store.js';

type AnyLease = Lease<string, unknown, unknown, string>;

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

/** The message stored as `lastError`. */
export const errorMessage = (error: unknown): string =>
  (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, 2_000);

/** Rule 2: status in from, deadline passed, attempts left (and the key) → active, fence + 1, attempts + 1, lease. */
export function claimUpdate(def: Definition, stage: NormalizedStage, owner: string, key: KeyValues | undefined): { cond: Condition; change: Change } {
  return {
    cond: { status: stage.from, deadline: 'passed', attempts: { lt: def.maxAttempts }, ...(key ? { key } : {}) },
    change: { status: stage.active, owner, bumpFence: true, attempts: 'increment', deadline: { ms: def.ttlMs }, finished: false },
  };
}

/** Active → a done status (`to`, default the first), merging a data patch over the lease's data. */
export function completionChange(codec: Codec, stage: NormalizedStage, operation: string, lease: AnyLease, options: { to?: string; data?: unknown }): Change {
  const to = options?.to ?? stage.done[0]!;
  if (!stage.done.includes(to)) {
    throw new ConfigError(`${operation}.to`, `\`${String(to)}\` is not a done status of stage \`${stage.name}\` (${stage.done.join(', ')}); nothing was written.`);
  }
  const base: Change = { status: to, deadline: { ms: 0 }, attempts: 'reset', finished: true };
  if (options?.data === undefined) return base;
  // the lease holds the item exclusively, so its data is the stored data
  const current = lease.item.data;
  const merged = isPlainObject(current) && isPlainObject(options.data) ? { ...current, ...options.data } : options.data;
  return { ...base, data: codec.data(operation, lease.key, merged) };
}

/** Rule 4: back to the first `from` after backoff while attempts remain, else the failed status. */
export function failureChange(def: Definition, stage: NormalizedStage, lease: AnyLease, error: unknown, options: { retry?: boolean }) {
  const willRetry = options.retry !== false && !(error instanceof NonRetryableError) && lease.attempt < def.maxAttempts;
  const lastError = errorMessage(error);
  const change: Change = willRetry
    ? { status: stage.from[0]!, deadline: { ms: delayFor(def.backoff, lease.attempt) }, lastError }
    : { status: stage.failed, deadline: { ms: 0 }, lastError, finished: true };
  return { change, willRetry, lastError };
}

/** Rule 5: expired leases of a stage, as two bulk updates (attempts left / none left); the fence advances. */
export function reapUpdates(def: Definition, stage: NormalizedStage) {
  const max = def.maxAttempts;
  const msByAttempts = Array.from({ length: max }, (_, a) => (a === 0 ? 0 : delayFor(def.backoff, a)));
  const expired = { status: [stage.active], deadline: 'passed' } as const;
  return {
    retry: {
      cond: { ...expired, attempts: { lt: max } } as Condition,
      change: { status: stage.from[0]!, bumpFence: true, deadline: { msByAttempts }, lastError: 'lease expired' } as Change,
    },
    park: {
      cond: { ...expired, attempts: { gte: max } } as Condition,
      change: { status: stage.failed, bumpFence: true, deadline: { ms: 0 }, lastError: 'lease expired', finished: true } as Change,
    },
  };
}
