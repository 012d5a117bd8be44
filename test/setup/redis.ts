import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A Redis URL, or '' when no server could be had (the Redis tests then report themselves skipped). */
    redisUrl: string;
    redisSource: string;
  }
}

const banner = (line: string) => console.log(`\n${'='.repeat(100)}\n${line}\n${'='.repeat(100)}\n`);

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** The system `redis-server`, if installed. */
export function redisServerBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/usr/local/bin', '/usr/sbin'])) {
    const file = join(dir, 'redis-server');
    if (dir && existsSync(file)) return file;
  }
  return undefined;
}

/** A started redis-server in a temp dir; `stop()` ends it and removes the dir. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Starts the system `redis-server` on a free port with the given persistence flags
 * (default: the durable ones the store requires), and waits until it accepts connections.
 */
export async function startRedisServer(binary: string, persistence = ['--appendonly', 'yes', '--appendfsync', 'always']): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'leasehold-redis-'));
  const port = await freePort();
  const proc: ChildProcess = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...persistence], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within 30 s:\n${output}`)), 30_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/Ready to accept connections/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
  proc.stdout!.resume();
  proc.stderr!.resume();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

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
