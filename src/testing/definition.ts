import { z } from 'zod';
import { Tracker, type Backoff, type Store } from '../index.js';
import type { StoreHarness } from './harness.js';

/** The statuses of the partner-log state machine the contract suite runs on. */
export const statuses = ['pending', 'downloading', 'downloaded', 'processing', 'processed', 'skipped', 'failed'] as const;

/** Its key: three fields of two types, so that a store's compound unique key is exercised. */
export const keySchema = z.object({ logId: z.string(), partnerCode: z.string(), seq: z.number() });
/** Its data: all optional, so that an item can be tracked with `{}`. */
export const dataSchema = z.object({ path: z.string().optional(), bytes: z.number().optional(), note: z.string().optional() });

/** The lease time-to-live of {@link makeTracker}'s tracker, in ms. */
export const TTL = 10_000;

/** A key of the contract's tracker ({@link StoreHarness.corrupt} gets one). */
// a type, not an interface: only a type literal is assignable to a store's `KeyValues` record
export type ContractKey = {
  /** The log's id. */
  logId: string;
  /** The partner that sent it. */
  partnerCode: string;
  /** Its sequence number. */
  seq: number;
};

/** The partner-log state machine the contract suite runs on (stages `download`, then `process`). */
export function makeTracker(store: Store, options: { maxAttempts?: number; backoff?: Backoff } = {}) {
  return new Tracker({
    store,
    statuses,
    initial: 'pending',
    key: keySchema,
    data: dataSchema,
    stages: {
      download: { from: 'pending', active: 'downloading', done: 'downloaded', failed: 'failed' },
      process: { from: 'downloaded', active: 'processing', done: ['processed', 'skipped'], failed: 'failed' },
    },
    lease: { ttlMs: TTL },
    retry: { maxAttempts: options.maxAttempts ?? 3, backoff: options.backoff ?? ((n) => 1_000 * 2 ** (n - 1)) },
  });
}

/** A fresh store of `harness` and the contract's tracker on it, initialised. */
export async function freshTracker(harness: StoreHarness, options?: Parameters<typeof makeTracker>[1]) {
  const store = await harness.create();
  const tracker = makeTracker(store, options);
  await tracker.init();
  return { store, tracker };
}

/** The tracker {@link makeTracker} returns. */
export type TestTracker = ReturnType<typeof makeTracker>;

/** Key number `n` of the contract's tracker (in partner `partnerCode`). */
export const k = (n: number, partnerCode = 'acme'): ContractKey => ({ logId: `log-${n}`, partnerCode, seq: n });

/**
 * `value`, or a failure naming the call that returned nothing where the contract expects an item
 * or a lease (rather than a `Cannot read properties of null` a line later).
 */
export function must<T>(value: T | null | undefined, call: string): T {
  if (value === null || value === undefined) {
    throw new Error(`[leasehold/testing] \`${call}\` returned ${String(value)} where the contract expects an item or a lease: the store did not find, or did not change, an item it should have (the test's name says which rule).`);
  }
  return value;
}
