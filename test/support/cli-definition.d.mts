import type { z } from 'zod';
import type { Store } from '../../src/index.js';

/** The options of the two-stage tracker the CLI tests use, keyed by `id`. */
export function cliDefinition(
  store: Store,
  options?: { ttlMs?: number },
): {
  store: Store;
  statuses: readonly ['queued', 'fetching', 'fetched', 'processing', 'processed', 'failed'];
  initial: 'queued';
  key: z.ZodObject<{ id: z.ZodString }>;
  stages: {
    fetch: { from: 'queued'; active: 'fetching'; done: 'fetched'; failed: 'failed' };
    process: { from: 'fetched'; active: 'processing'; done: 'processed'; failed: 'failed' };
  };
  lease: { ttlMs: number };
  retry: { maxAttempts: number };
};
