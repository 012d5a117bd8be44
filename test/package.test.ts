import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * The `exports` map must match the build: every subpath imports from ESM and requires from
 * CJS, with types, from the packed tarball as a user gets it.
 */
const root = resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown>; dependencies: Record<string, string> };
const subpaths = Object.keys(pkg.exports).filter((p) => p !== './package.json').map((p) => (p === '.' ? 'leasehold' : `leasehold/${p.slice(2)}`));
const expected: Record<string, string> = {
  leasehold: 'Tracker',
  'leasehold/memory': 'MemoryStore',
  'leasehold/mongodb': 'MongoStore',
  'leasehold/postgres': 'PostgresStore',
  'leasehold/sqlite': 'SqliteStore',
  'leasehold/dashboard': 'createDashboard',
};

let app = '';

describe('the packed package', () => {
  beforeAll(() => {
    // dist/ was built by the global setup (test/setup/build.ts)
    const out = mkdtempSync(join(tmpdir(), 'leasehold-pack-'));
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', out], { cwd: root, encoding: 'utf8' })) as Array<{ filename: string }>;
    const filename = packed[0]!.filename;
    app = join(out, 'app');
    const modules = join(app, 'node_modules');
    mkdirSync(join(modules, 'leasehold'), { recursive: true });
    execFileSync('tar', ['-xzf', join(out, filename), '-C', join(modules, 'leasehold'), '--strip-components=1']);
    // a user of a store subpath has its driver (and its types) installed
    for (const dep of [...Object.keys(pkg.dependencies), '@types/node', 'mongodb', 'pg', '@types/pg', 'better-sqlite3', '@types/better-sqlite3']) {
      mkdirSync(join(modules, dep, '..'), { recursive: true });
      symlinkSync(join(root, 'node_modules', dep), join(modules, dep));
    }
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  }, 120_000);

  it('declares every store subpath it builds', () => {
    expect(subpaths).toContain('leasehold');
    expect(subpaths).toContain('leasehold/memory');
    for (const s of subpaths) expect(expected[s], `no expectation for ${s}`).toBeDefined();
  });

  it('imports every subpath from ESM', () => {
    const lines = subpaths.map((s) => `{ const m = await import('${s}'); if (typeof m.${expected[s]} !== 'function') throw new Error('${s}: ${expected[s]} missing'); }`);
    writeFileSync(join(app, 'esm.mjs'), `${lines.join('\n')}\nconsole.log('esm ok');`);
    expect(execFileSync('node', ['esm.mjs'], { cwd: app, encoding: 'utf8' })).toContain('esm ok');
  });

  it('requires every subpath from CJS, sharing one copy of the error classes', () => {
    const lines = subpaths.map((s) => `{ const m = require('${s}'); if (typeof m.${expected[s]} !== 'function') throw new Error('${s}: ${expected[s]} missing'); }`);
    writeFileSync(
      join(app, 'cjs.cjs'),
      `${lines.join('\n')}\nconst a = require('leasehold'); const b = require('leasehold'); if (a.LeaseLostError !== b.LeaseLostError) throw new Error('two copies');\nconsole.log('cjs ok');`,
    );
    expect(execFileSync('node', ['cjs.cjs'], { cwd: app, encoding: 'utf8' })).toContain('cjs ok');
  });

  it('ships types that resolve for ESM and CJS consumers', () => {
    const body = subpaths.map((s, i) => `import { ${expected[s]} as X${i} } from '${s}';\nexport const t${i}: unknown = X${i};`).join('\n');
    writeFileSync(
      join(app, 'types.mts'),
      `${body}\nimport { Tracker, exponentialBackoff } from 'leasehold';\nimport { MemoryStore } from 'leasehold/memory';\nimport { z } from 'zod';\n` +
        `const t = new Tracker({ store: new MemoryStore(), statuses: ['a', 'b', 'c'], initial: 'a', key: z.object({ id: z.string() }), stages: { s: { from: 'a', active: 'b', done: 'c', failed: 'c' } }, retry: { backoff: exponentialBackoff({ baseMs: 1, maxMs: 2 }) } });\n` +
        `// @ts-expect-error -- unknown stage\nvoid t.claim('nope', { owner: 'w' });\n`,
    );
    writeFileSync(join(app, 'types.cts'), `import leasehold = require('leasehold');\nimport memory = require('leasehold/memory');\nexport const x: unknown = [leasehold.Tracker, memory.MemoryStore];\n`);
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node'];
    execFileSync('node', [tsc, ...args, 'types.mts', 'types.cts'], { cwd: app, encoding: 'utf8' });
  });
});
