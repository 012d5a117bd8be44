/** The partner-log tracker: statuses, key, data, stages, and the store chosen on the command line. */
import { exponentialBackoff, Tracker, type Store } from 'leasehold';
import { MemoryStore } from 'leasehold/memory';
import { MongoStore } from 'leasehold/mongodb';
import { PostgresStore } from 'leasehold/postgres';
import { SqliteStore } from 'leasehold/sqlite';
import { z } from 'zod';
import { openResults, type Results } from './results';

export const statuses = ['pending', 'downloading', 'downloaded', 'processing', 'processed', 'failed'] as const;

export function makeTracker(store: Store) {
  return new Tracker({
    store,
    statuses,
    initial: 'pending',
    key: z.object({ logId: z.string(), partnerCode: z.string(), aircraftId: z.string(), customerId: z.string() }),
    data: z.object({
      size: z.number(),
      checksum: z.string(),
      localFilePath: z.string().optional(),
      records: z.number().optional(),
    }),
    stages: {
      download: { from: 'pending', active: 'downloading', done: 'downloaded', failed: 'failed' },
      process: { from: 'downloaded', active: 'processing', done: 'processed', failed: 'failed' },
    },
    // short leases so that a killed worker's logs come back quickly in the demo
    lease: { ttlMs: 2_000 },
    retry: { maxAttempts: 8, backoff: exponentialBackoff({ baseMs: 100, maxMs: 2_000, jitter: true }) },
  });
}

export type PartnerLogs = ReturnType<typeof makeTracker>;

export interface Opened {
  kind: 'memory' | 'sqlite' | 'postgres' | 'mongodb';
  tracker: PartnerLogs;
  results: Results;
  close(): Promise<void>;
}

const TABLE = 'partner_log_trackers';

/** Opens `memory`, `sqlite:PATH`, `postgres://…` or `mongodb://…`. */
export async function open(spec: string): Promise<Opened> {
  if (spec === 'memory') {
    const results = await openResults({ kind: 'memory' });
    return { kind: 'memory', tracker: makeTracker(new MemoryStore()), results, close: async () => {} };
  }
  if (spec.startsWith('sqlite:')) {
    const filename = spec.slice('sqlite:'.length);
    const store = new SqliteStore({ filename, table: TABLE });
    const results = await openResults({ kind: 'sqlite', filename });
    return { kind: 'sqlite', tracker: makeTracker(store), results, close: async () => (await store.close(), await results.close()) };
  }
  if (/^postgres(ql)?:\/\//.test(spec)) {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: spec, max: 6 });
    // an idle connection the server closes is replaced on the next query; without a listener pg would crash the process
    pool.on('error', () => {});
    const results = await openResults({ kind: 'postgres', pool });
    return { kind: 'postgres', tracker: makeTracker(new PostgresStore({ pool, table: TABLE })), results, close: () => pool.end() };
  }
  if (/^mongodb(\+srv)?:\/\//.test(spec)) {
    const { MongoClient } = await import('mongodb');
    const client = await MongoClient.connect(spec);
    const db = client.db();
    const results = await openResults({ kind: 'mongodb', db });
    return { kind: 'mongodb', tracker: makeTracker(new MongoStore({ collection: db.collection(TABLE) })), results, close: () => client.close() };
  }
  throw new Error(`--store must be memory, sqlite:PATH, postgres://… or mongodb://…, got \`${spec}\``);
}
