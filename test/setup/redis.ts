import type { TestProject } from 'vitest/node';
import { redisServerBinary, startRedisServer } from '../../scripts/redis-server.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A Redis URL, or '' when no server could be had (the Redis tests then report themselves skipped). */
    redisUrl: string;
    redisSource: string;
  }
}

const banner = (line: string) => console.log(`\n${'='.repeat(100)}\n${line}\n${'='.repeat(100)}\n`);

/**
 * Gives the Redis tests a server: `REDIS_URL`, else the system `redis-server` started for this
 * run with `appendonly yes`, `appendfsync always` and no snapshots. Without either, the banner
 * says so and test/redis.test.ts reports itself skipped.
 */
export default async function setup(project: TestProject) {
  if (process.env.REDIS_URL) {
    project.provide('redisUrl', process.env.REDIS_URL);
    project.provide('redisSource', 'REDIS_URL');
    return undefined;
  }
  const binary = redisServerBinary();
  if (!binary) {
    project.provide('redisUrl', '');
    project.provide('redisSource', 'none');
    banner(
      '[leasehold tests] Redis: NO SERVER. REDIS_URL is not set and no `redis-server` is installed.\n' +
        '  The RedisStore tests are SKIPPED. Install it (`apt-get install redis-server`) or set REDIS_URL=redis://... to run them.',
    );
    return undefined;
  }
  const server = await startRedisServer(binary);
  console.log(`[leasehold tests] Redis: ${binary} on 127.0.0.1:${server.port} (appendonly yes, appendfsync always)`);
  project.provide('redisUrl', server.url);
  project.provide('redisSource', `redis-server on port ${server.port}`);
  return () => server.stop();
}
