import type { z } from 'zod';
import type { Backoff, Store } from '../../src/index.js';

/** The options of a queued → running → done/failed tracker keyed by `n`. */
export function jobDefinition(
  store: Store,
  options?: { ttlMs?: number; maxAttempts?: number; backoff?: Backoff },
): {
  store: Store;
  statuses: readonly ['queued', 'running', 'done', 'failed'];
  initial: 'queued';
  key: z.ZodObject<{ n: z.ZodNumber }>;
  stages: { run: { from: 'queued'; active: 'running'; done: 'done'; failed: 'failed' } };
  lease: { ttlMs: number };
  retry: { maxAttempts: number; backoff?: Backoff };
};
