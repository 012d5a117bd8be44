// Starts a throw-away redis-server (the system binary) for the tests, the chaos run and the
// benchmark: a free port on 127.0.0.1, a temp dir, no snapshots, and the persistence flags given
// (by default the durable ones RedisStore requires). `stop()` ends it and removes the dir.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The path of the system `redis-server`, or undefined when none is installed. */
export function redisServerBinary() {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/usr/local/bin'])) {
    const file = join(dir, 'redis-server');
    if (dir && existsSync(file)) return file;
  }
  return undefined;
}

/** The flags under which an acknowledged write survives a crash. */
export const DURABLE = ['--appendonly', 'yes', '--appendfsync', 'always'];

/**
 * Starts `binary` and waits until it accepts connections.
 * @param {string} binary
 * @param {string[]} [persistence]
 */
export async function startRedisServer(binary, persistence = DURABLE) {
  const dir = mkdtempSync(join(tmpdir(), 'leasehold-redis-'));
  const port = await freePort();
  const proc = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...persistence], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start within 30 s:\n${output}`)), 30_000);
    const onData = (chunk) => {
      output += chunk.toString();
      if (/Ready to accept connections/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
