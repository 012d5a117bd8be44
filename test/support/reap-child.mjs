// Reaps a SQLite table in a process with a small heap: `node --max-old-space-size=N reap-child.mjs <file> <table>`.
// Prints the reap result as JSON. A reap that loaded every expired row with its data at once would run out of memory.
import { Tracker } from '../../dist/index.js';
import { SqliteStore } from '../../dist/stores/sqlite.js';
import { jobDefinition } from './job-definition.mjs';

const [file, table] = process.argv.slice(2);
const store = new SqliteStore({ filename: file, table });
const tracker = new Tracker(jobDefinition(store, { ttlMs: 1_000, backoff: () => 1_000 }));
const result = await tracker.reapStale();
const { heapUsed } = process.memoryUsage();
await store.close();
process.stdout.write(`${JSON.stringify({ ...result, heapMiB: Math.round(heapUsed / 1048576) })}\n`);
