import { z } from 'zod';
import { Tracker, exponentialBackoff } from 'leasehold';
import { MemoryStore } from 'leasehold/memory';

// A state machine for partner log files: pending → downloading → downloaded (or failed).
const logs = new Tracker({
  store: new MemoryStore(),
  statuses: ['pending', 'downloading', 'downloaded', 'failed'],
  initial: 'pending',
  key: z.object({ logId: z.string(), partnerCode: z.string() }),
  data: z.object({ bytes: z.number().optional() }),
  stages: { download: { from: 'pending', active: 'downloading', done: 'downloaded', failed: 'failed' } },
  lease: { ttlMs: 30_000 },
  retry: { maxAttempts: 5, backoff: exponentialBackoff({ baseMs: 1_000, maxMs: 60_000, jitter: true }) },
});

// A poller may see the same log many times: tracking is idempotent.
for (const logId of ['a', 'b', 'a']) await logs.track({ logId, partnerCode: 'acme' });

// Errors a worker cannot throw to anyone (store down, ...) go here; without a listener or a
// `logger` they are printed to stderr.
logs.on('error', (e) => console.error(`${e.operation} failed:`, e.error));

// Workers claim, renew while working, and complete; a thrown error becomes a retry.
const worker = logs.work('download', async (lease) => {
  console.log(`downloading ${lease.key.logId} with fence ${lease.fence}`);
  return { data: { bytes: 1024 } };
}, { concurrency: 2 });

await worker.drain(); // resolves once everything claimable has been handled
await worker.stop();
console.log((await logs.stats()).byStatus); // { pending: 0, downloading: 0, downloaded: 2, failed: 0 }
