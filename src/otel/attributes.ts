/**
 * The span attributes of `leasehold/otel`: a lease's, the messaging operation types, and the
 * helpers that build them. Internal.
 * @module
 */
import type { Attributes } from '@opentelemetry/api';

/** What a span records of the operation's arguments and result. */
export type Describe = (args: unknown[], result: unknown) => Attributes;

/** Span attributes of a lease (the first argument of renew, complete, fail, release). */
export function leaseAttributes(lease: unknown): Attributes {
  const l = lease as { stage?: string; key?: unknown; fence?: number; attempt?: number; owner?: string } | undefined;
  if (!l || typeof l !== 'object') return {};
  return {
    'messaging.destination.name': l.stage,
    'messaging.message.id': keyId(l.key),
    'leasehold.key': keyId(l.key),
    'leasehold.fence': l.fence,
    'leasehold.attempt': l.attempt,
    'leasehold.owner': l.owner,
  };
}

/** Drops attributes without a value (an operation without a stage, a lease without an owner). */
export function defined(attributes: Attributes): Attributes {
  return Object.fromEntries(Object.entries(attributes).filter(([, v]) => v !== undefined && v !== null));
}

/** A key as one attribute value: its JSON (Dates as ISO strings). */
export function keyId(key: unknown): string | undefined {
  if (key === undefined) return undefined;
  try {
    return JSON.stringify(key);
  } catch {
    return String(key);
  }
}

/** `messaging.operation.type` per operation, where the messaging conventions have one. */
export const operationType: Record<string, string | undefined> = {
  claim: 'receive',
  claimBatch: 'receive',
  complete: 'settle',
  completeBatch: 'settle',
  fail: 'settle',
  failBatch: 'settle',
  release: 'settle',
  renew: undefined,
  reapStale: undefined,
};
