// `npm run chaos`: crash chaos on SQLite and embedded PostgreSQL (and MongoDB when MONGODB_URI is
// set; Redis at REDIS_URL, or a redis-server started for the run when one is installed). Options: --items K (500) --workers P (4). Exits non-zero on any violation.
import { parseArgs } from 'node:util';
import { startEmbeddedPostgres } from '../scripts/embedded-postgres.mjs';
import { redisServerBinary, startRedisServer } from '../scripts/redis-server.mjs';
import { chaosLine, chaosRun } from './harness.mjs';

const { values } = parseArgs({ options: { items: { type: 'string', default: '500' }, workers: { type: 'string', default: '4' } } });
const items = Number(values.items);
const workers = Number(values.workers);
const log = (line) => console.log(line);
const results = [];
const pg = await startEmbeddedPostgres();
const redisBinary = process.env.REDIS_URL ? undefined : redisServerBinary();
const redis = redisBinary ? await startRedisServer(redisBinary) : undefined;
try {
  const runs = [{ kind: 'sqlite' }, { kind: 'postgres', target: pg.url }];
  if (process.env.MONGODB_URI) runs.push({ kind: 'mongodb', target: process.env.MONGODB_URI });
  else console.log('[chaos] MONGODB_URI is not set: MongoDB is not part of this run');
  const redisUrl = process.env.REDIS_URL ?? redis?.url;
  if (redisUrl) runs.push({ kind: 'redis', target: redisUrl });
  else console.log('[chaos] no REDIS_URL and no redis-server installed: Redis is not part of this run');
  for (const run of runs) {
    console.log(`[chaos] ${run.kind}: ${items} items, ${workers} worker processes, SIGKILL every 150-450 ms, SIGSTOP past the lease every 0.7 s`);
    const result = await chaosRun({ ...run, items, workers, killEveryMs: [150, 450], freezeEveryMs: 700, timeoutMs: 120_000, log });
    console.log(`[chaos] ${run.kind}: ${JSON.stringify(result)}`);
    results.push(result);
  }
} finally {
  await pg.stop();
  await redis?.stop();
}
const ok = results.every((r) => r.ok);
if (!ok) console.error('[chaos] VIOLATIONS found: see the results above');
console.log(chaosLine(results));
process.exit(ok ? 0 : 1);
