// Two stages sharing one failed status, keyed by a string `id`: the tracker the CLI tests
// seed from the test process (sources) and load in the `leasehold` child (the build).
import { z } from 'zod';

/**
 * @param {import('../../src/index.js').Store} store
 * @param {{ ttlMs?: number }} [options]
 */
export function cliDefinition(store, options = {}) {
  return {
    store,
    statuses: /** @type {const} */ (['queued', 'fetching', 'fetched', 'processing', 'processed', 'failed']),
    initial: /** @type {const} */ ('queued'),
    key: z.object({ id: z.string() }),
    stages: {
      fetch: { from: /** @type {const} */ ('queued'), active: /** @type {const} */ ('fetching'), done: /** @type {const} */ ('fetched'), failed: /** @type {const} */ ('failed') },
      process: { from: /** @type {const} */ ('fetched'), active: /** @type {const} */ ('processing'), done: /** @type {const} */ ('processed'), failed: /** @type {const} */ ('failed') },
    },
    lease: { ttlMs: options.ttlMs ?? 60_000 },
    retry: { maxAttempts: 5 },
  };
}
