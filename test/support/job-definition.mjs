// The smallest state machine: queued → running → done (or failed), keyed by a number `n`.
// Shared by the race children, the chaos harness, the fault tests and the benchmark, as the
// options of `new Tracker(...)` so that each can use the package build or the sources.
import { z } from 'zod';

/**
 * @param {import('../../src/index.js').Store} store
 * @param {{ ttlMs?: number, maxAttempts?: number, backoff?: (attempt: number) => number }} [options]
 */
export function jobDefinition(store, options = {}) {
  return {
    store,
    statuses: /** @type {const} */ (['queued', 'running', 'done', 'failed']),
    initial: /** @type {const} */ ('queued'),
    key: z.object({ n: z.number().int() }),
    stages: { run: { from: /** @type {const} */ ('queued'), active: /** @type {const} */ ('running'), done: /** @type {const} */ ('done'), failed: /** @type {const} */ ('failed') } },
    lease: { ttlMs: options.ttlMs ?? 60_000 },
    retry: { maxAttempts: options.maxAttempts ?? 5, ...(options.backoff ? { backoff: options.backoff } : {}) },
  };
}
