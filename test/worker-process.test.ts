import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { Tracker } from '../src/index.js';
import { PostgresStore } from '../src/stores/postgres.js';
import { SqliteStore } from '../src/stores/sqlite.js';
import { jobDefinition } from './support/job-definition.mjs';

const child = resolve(import.meta.dirname, 'support/worker-child.mjs');
const dir = mkdtempSync(join(tmpdir(), 'leasehold-worker-proc-'));
const pools: pg.Pool[] = [];
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  rmSync(dir, { recursive: true, force: true });
});

/** Starts a worker child; `lines` collects what it prints. */
function start(mode: string, kind: string, target: string, table: string): { proc: ChildProcess; lines: string[]; exited: Promise<{ code: number | null; signal: string | null }> } {
  const proc = spawn(process.execPath, [child, mode, kind, target, table], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LEASE_TTL_MS: '1000' } });
  const lines: string[] = [];
  let buffer = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
  });
  proc.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const exited = new Promise<{ code: number | null; signal: string | null }>((res) => proc.on('exit', (code, signal) => res({ code, signal })));
  return { proc, lines, exited };
}

/** Waits for a condition, failing with `what` after a generous budget (progress, not speed, is tested). */
async function until(what: string, cond: () => boolean | Promise<boolean>, budgetMs = 60_000): Promise<void> {
  const end = Date.now() + budgetMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const stores = [
  ['sqlite', () => join(dir, 'worker.sqlite'), (target: string, table: string) => new SqliteStore({ filename: target, table })],
  [
    'postgres',
    () => inject('postgresUrl'),
    (target: string, table: string) => {
      const pool = new pg.Pool({ connectionString: target, max: 2 });
      pools.push(pool);
      return new PostgresStore({ pool, table });
    },
  ],
] as const;

describe.each(stores)('worker processes on %s', (kind, target, make) => {
  it('kill -9 mid-handler: a second process running work() with default options completes the item (reaping is on by default)', async () => {
    const table = `killed_${kind}_${process.pid}`;
    const tracker = new Tracker(jobDefinition(make(target(), table), { ttlMs: 1_000 }));
    await tracker.track({ n: 1 });
    const doomed = start('hang', kind, target(), table);
    await until('the first worker to start its handler', () => doomed.lines.some((l) => l.startsWith('started 1')));
    doomed.proc.kill('SIGKILL');
    await doomed.exited;
    const survivor = start('defaults', kind, target(), table);
    try {
      await until('the item to be completed by the second process', async () => (await tracker.get({ n: 1 }))?.status === 'done');
      const item = (await tracker.get({ n: 1 }))!;
      // the reap advanced the fence (2) and the survivor's claim advanced it again (3)
      expect(item).toMatchObject({ status: 'done', fence: 3, lastError: 'lease expired' });
      expect(survivor.lines).toContain('completing 1 fence=3');
    } finally {
      survivor.proc.kill('SIGTERM');
      await survivor.exited;
    }
  }, 90_000);

  it('stop() leaves nothing running: a process whose handler never settles exits by itself after stop()', async () => {
    const table = `stopping_${kind}_${process.pid}`;
    const tracker = new Tracker(jobDefinition(make(target(), table), { ttlMs: 1_000 }));
    await tracker.track({ n: 1 });
    const proc = start('stop', kind, target(), table);
    const exit = await Promise.race([proc.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000))]);
    if (exit === 'hung') proc.proc.kill('SIGKILL');
    expect(exit).toEqual({ code: 0, signal: null });
    // stop() released the lease it could not finish
    expect(proc.lines).toContain('stopped; item queued attempts=0');
  }, 90_000);
});
