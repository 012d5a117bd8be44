import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, inject, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '..');

const temps: string[] = [];
const temp = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs the example exactly as the README documents it (npx ts-node), and reads its summary.
 * `--timeout` is a budget of time without progress: a loaded machine only makes it slower.
 */
async function example(store: string) {
  const cwd = temp('leasehold-example-');
  const ts = join(root, 'node_modules', '.bin', 'ts-node');
  const { stdout } = await run(ts, [join(root, 'examples/partner-log/main.ts'), '--store', store, '--logs', '80', '--workers', '3', '--chaos', '--timeout', '120'], {
    cwd,
    timeout: 240_000,
  }).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`the example failed:\n${error.stdout}\n${error.stderr}`);
  });
  const last = stdout.trim().split('\n').at(-1)!;
  const match = last.match(/^partner-log: processed=(\d+) failed=(\d+) duplicates=(\d+) logs=(\d+)$/);
  expect(match, last).not.toBeNull();
  const [processed, failed, duplicates, logs] = match!.slice(1).map(Number);
  return { stdout, processed: processed!, failed: failed!, duplicates: duplicates!, logs: logs! };
}

describe('examples/partner-log end to end, with chaos', () => {
  it('on SQLite: every log processed or failed as the partner broke it, none twice', async () => {
    const result = await example(`sqlite:${join(temp('leasehold-pl-'), 'partner-log.sqlite')}`);
    expect(result).toMatchObject({ logs: 80, duplicates: 0 });
    expect(result.processed + result.failed).toBe(80);
    expect(result.processed).toBeGreaterThan(70);
    expect(result.stdout).toMatch(/worker crashes\s+│\s+[1-9]/);
    frozenAndTakenOver(result.stdout);
  }, 250_000);

  it('on embedded PostgreSQL: the same', async () => {
    const result = await example(inject('postgresUrl'));
    expect(result).toMatchObject({ logs: 80, duplicates: 0 });
    expect(result.processed + result.failed).toBe(80);
    expect(result.processed).toBeGreaterThan(70);
    frozenAndTakenOver(result.stdout);
  }, 250_000);
});

/**
 * The run froze one worker process holding a log's lease until another had processed that log
 * (pause.ts), and the frozen one's leases were refused when it woke.
 */
function frozenAndTakenOver(stdout: string) {
  expect(stdout).toMatch(/PAUSE: worker \d+ woken after [\d.]+ s; meanwhile \S+ was reaped and (processed|failed) under fence \d+/);
  expect(stdout).toMatch(/worker frozen\s+│\s+1, [\d.]+ s \(\S+\)/);
  // it woke and wrote the log's records under its old fence: refused, row by row; and its complete
  expect(stdout).toMatch(/stale writes refused\s+│\s+[1-9]/);
  expect(stdout).toMatch(/leases lost\s+│\s+[1-9]/);
}

describe('examples/partner-log and a SQLite file it does not own', () => {
  it('refuses to start on an existing database and leaves it as it was', async () => {
    const file = join(temp('leasehold-pl-mine-'), 'mine.sqlite');
    const db = new Database(file);
    db.exec("CREATE TABLE mine (id INTEGER PRIMARY KEY, note TEXT); INSERT INTO mine (note) VALUES ('keep me')");
    db.close();

    const ts = join(root, 'node_modules', '.bin', 'ts-node');
    const outcome = await run(ts, [join(root, 'examples/partner-log/main.ts'), '--store', `sqlite:${file}`, '--logs', '5', '--workers', '1', '--timeout', '30'], {
      cwd: temp('leasehold-example-'),
      timeout: 120_000,
    }).then(
      ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code, stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
    );

    expect(outcome.code, outcome.stdout).toBe(1);
    expect(outcome.stderr).toContain(`${file} already exists and is not empty`);
    expect(outcome.stderr).toMatch(/with a new file, or delete .* yourself/);
    const after = new Database(file, { readonly: true });
    try {
      expect(after.prepare('SELECT note FROM mine').all()).toEqual([{ note: 'keep me' }]);
      // nothing of the demo's was written into it either
      const tables = after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
      expect(tables).toEqual([{ name: 'mine' }]);
    } finally {
      after.close();
    }
  }, 130_000);
});
