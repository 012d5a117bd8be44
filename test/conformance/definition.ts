import { z } from 'zod';
import { Tracker, type Backoff, type Store } from '../../src/index.js';

export const statuses = ['pending', 'downloading', 'downloaded', 'processing', 'processed', 'skipped', 'failed'] as const;

export const keySchema = z.object({ logId: z.string(), partnerCode: z.string(), seq: z.number() });
export const dataSchema = z.object({ path: z.string().optional(), bytes: z.number().optional(), note: z.string().optional() });

export const TTL = 10_000;

/** The partner-log state machine the contract suite runs on. */
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

export type TestTracker = ReturnType<typeof makeTracker>;

export const k = (n: number, partnerCode = 'acme') => ({ logId: `log-${n}`, partnerCode, seq: n });
