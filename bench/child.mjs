// One of the worker processes of the multi-process drain: `node child.mjs <url> <table> <workers> <batch> <deadline>`.
import pg from 'pg';
import { PostgresStore } from '../dist/stores/postgres.js';
import { benchTracker, drainLeasehold } from './leasehold.mjs';
import { countingStore } from './lib.mjs';

const [url, table, workers, batch, deadline] = process.argv.slice(2);
const pool = new pg.Pool({ connectionString: url, max: Number(workers) });
const counter = { calls: 0 };
const tracker = benchTracker(countingStore(new PostgresStore({ pool, table }), counter));
await tracker.init();
// timed from here, not from the parent's spawn: starting Node is not part of the drain
const started = performance.now();
const done = await drainLeasehold(tracker, { workers: Number(workers), batch: Number(batch), deadline: Number(deadline) });
const seconds = (performance.now() - started) / 1000;
await pool.end();
process.stdout.write(`${JSON.stringify({ done, calls: counter.calls, seconds })}\n`);
