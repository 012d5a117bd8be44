import { execFileSync, type ExecFileSyncOptions } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';

/**
 * The package as a user gets it: the packed tarball, installed in a fresh consumer project
 * beside its peers. The `exports` map must match the build (every subpath imports from ESM and
 * requires from CJS, with types, also under `moduleResolution: node`), publint and
 * arethetypeswrong find nothing, and the README quick start type-checks and runs each way the
 * README's "Run it" says.
 */
const root = resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown>; devDependencies: Record<string, string> };
const subpaths = Object.keys(pkg.exports).filter((p) => p !== './package.json').map((p) => (p === '.' ? 'leasehold' : `leasehold/${p.slice(2)}`));
const expected: Record<string, string> = {
  leasehold: 'Tracker',
  'leasehold/memory': 'MemoryStore',
  'leasehold/mongodb': 'MongoStore',
  'leasehold/postgres': 'PostgresStore',
  'leasehold/sqlite': 'SqliteStore',
  'leasehold/redis': 'RedisStore',
  'leasehold/dashboard': 'createDashboard',
  'leasehold/otel': 'instrument',
  'leasehold/testing': 'storeContract',
};
/** Subpaths without a `require` condition: vitest, which leasehold/testing runs under, cannot be required. */
const esmOnly = ['leasehold/testing'];
const modules = (...path: string[]) => join(root, 'node_modules', ...path);
/** The file a package's command runs (its `bin` entry), to start it with this Node. */
const bin = (name: string, command = name) => {
  const meta = JSON.parse(readFileSync(modules(name, 'package.json'), 'utf8')) as { bin: string | Record<string, string> };
  return modules(name, typeof meta.bin === 'string' ? meta.bin : meta.bin[command]!);
};
const tsc = modules('typescript', 'bin', 'tsc');

let tarball = '';
let app = '';
const run = (args: string[], options: ExecFileSyncOptions = {}) =>
  execFileSync(process.execPath, args, { cwd: app, encoding: 'utf8', stdio: 'pipe', timeout: 120_000, ...options }) as string;

/** What the quick start prints when it ran to the end: two downloads, then the final counts. */
function expectQuickStartRan(stdout: string) {
  const lines = stdout.trim().split('\n');
  expect(lines.filter((l) => l.startsWith('downloading '))).toHaveLength(2);
  expect(lines.at(-1)).toBe('{ pending: 0, downloading: 0, downloaded: 2, failed: 0 }');
}

const quickStart = () => readFileSync(join(root, 'examples', 'quick-start.ts'), 'utf8');

describe('the packed package', () => {
  beforeAll(() => {
    // dist/ was built by the global setup (test/setup/build.ts); --ignore-scripts keeps `prepack`
    // from rebuilding it under the feet of the other test files running now
    const out = mkdtempSync(join(tmpdir(), 'leasehold-pack-'));
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', out], { cwd: root, encoding: 'utf8' })) as Array<{ filename: string }>;
    tarball = join(out, packed[0]!.filename);
    app = join(out, 'app');
    const installed = join(app, 'node_modules', 'leasehold');
    mkdirSync(installed, { recursive: true });
    execFileSync('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
    const link = (from: string, name: string) => {
      mkdirSync(dirname(join(app, 'node_modules', name)), { recursive: true });
      symlinkSync(from, join(app, 'node_modules', name));
    };
    // as npm installs it: the package's own dependencies inside it (were zod one, a project on
    // another zod release would get a second copy there)...
    const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(manifest.dependencies ?? {})) {
      mkdirSync(dirname(join(installed, 'node_modules', dep)), { recursive: true });
      symlinkSync(modules(dep), join(installed, 'node_modules', dep));
    }
    // ...and beside it the project's own: its zod, a different zod 4 minor than leasehold is
    // developed with, the drivers of the stores it uses, the tools of "Run it", vitest (the peer of leasehold/testing) and
    // @opentelemetry/api (the peer of leasehold/otel)
    link(modules('zod-4-1'), 'zod');
    for (const dep of ['@types/node', 'mongodb', 'pg', '@types/pg', 'better-sqlite3', '@types/better-sqlite3', 'typescript', 'ts-node', 'tsx', 'vitest', '@opentelemetry/api']) link(modules(dep), dep);
    // an ESM project, as "Run it" asks for (the quick start uses top-level await)
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    writeFileSync(join(app, 'quick-start.ts'), quickStart());
  }, 120_000);

  it('declares every store subpath it builds', () => {
    expect(subpaths).toContain('leasehold');
    expect(subpaths).toContain('leasehold/memory');
    for (const s of subpaths) expect(expected[s], `no expectation for ${s}`).toBeDefined();
  });

  it('imports every subpath from ESM', () => {
    const lines = subpaths.map((s) => `{ const m = await import('${s}'); if (typeof m.${expected[s]} !== 'function') throw new Error('${s}: ${expected[s]} missing'); }`);
    writeFileSync(join(app, 'esm.mjs'), `${lines.join('\n')}\nconsole.log('esm ok');`);
    expect(run(['esm.mjs'])).toContain('esm ok');
  });

  it('requires every subpath from CJS, sharing one copy of the error classes', () => {
    const lines = subpaths.filter((s) => !esmOnly.includes(s)).map((s) => `{ const m = require('${s}'); if (typeof m.${expected[s]} !== 'function') throw new Error('${s}: ${expected[s]} missing'); }`);
    writeFileSync(
      join(app, 'cjs.cjs'),
      `${lines.join('\n')}\nconst a = require('leasehold'); const b = require('leasehold'); if (a.LeaseLostError !== b.LeaseLostError) throw new Error('two copies');\nconsole.log('cjs ok');`,
    );
    expect(run(['cjs.cjs'])).toContain('cjs ok');
  });

  it('an app that loads leasehold both with import and with require: errors of one copy are instances for the other, and a handler\'s NonRetryableError from the other copy still parks', () => {
    writeFileSync(
      join(app, 'dual.mjs'),
      `import { createRequire } from 'node:module';
import * as esm from 'leasehold';
import { MemoryStore } from 'leasehold/memory';
import { z } from 'zod';
const cjs = createRequire(import.meta.url)('leasehold');
if (esm.LeaseLostError === cjs.LeaseLostError) throw new Error('one copy: the test proves nothing');
const names = ['LeaseholdError', 'LeaseLostError', 'ValidationError', 'ConfigError', 'StoreError', 'NonRetryableError', 'HandlerTimeoutError'];
const make = (m, name) => name === 'StoreError' ? new m.StoreError({ operation: 'claim', store: 'x', cause: new Error('c') }) : name === 'ValidationError' ? new m.ValidationError({ operation: 'track', key: 1, what: 'data', issues: [] }) : name === 'LeaseLostError' ? new m.LeaseLostError({ operation: 'complete', key: 1, stage: 's', expectedFence: 1, held: { status: null, fence: null, owner: null } }) : name === 'ConfigError' ? new m.ConfigError('x', 'y') : name === 'HandlerTimeoutError' ? new m.HandlerTimeoutError(1, 5) : new m[name]('m');
const rows = [];
for (const a of names) for (const b of names) {
  const fromCjs = make(cjs, a);
  const expected = b === 'LeaseholdError' || a === b;
  if ((fromCjs instanceof esm[b]) !== expected || (make(esm, a) instanceof cjs[b]) !== expected) rows.push(a + ' instanceof ' + b);
}
if (new Error('x') instanceof esm.LeaseholdError || { name: 'StoreError' } instanceof esm.StoreError) rows.push('a look-alike');
const tracker = new esm.Tracker({ store: new MemoryStore(), statuses: ['new', 'busy', 'done', 'failed'], initial: 'new', key: z.object({ id: z.string() }), stages: { go: { from: 'new', active: 'busy', done: 'done', failed: 'failed' } } });
await tracker.track({ id: 'a' });
// a subclass of the other copy's class, with a name of its own
class PermanentFailure extends cjs.NonRetryableError { name = 'PermanentFailure'; }
if (!(new PermanentFailure('x') instanceof esm.NonRetryableError) || new PermanentFailure('x') instanceof esm.StoreError) rows.push('a subclass');
const worker = tracker.work('go', () => { throw new PermanentFailure('bad input'); }, { reapIntervalMs: false });
await worker.drain();
await worker.stop();
const item = await tracker.get({ id: 'a' });
console.log(JSON.stringify({ wrong: rows, status: item.status, attempts: item.attempts }));
`,
    );
    expect(JSON.parse(run(['dual.mjs']).trim().split('\n').at(-1)!)).toEqual({ wrong: [], status: 'failed', attempts: 1 });
  });

  it('keeps the class names in CommonJS as in ESM (for stack traces, util.inspect and constructor.name)', () => {
    const names = subpaths.filter((s) => !esmOnly.includes(s)).map((s) => `require('${s}').${expected[s]}.name`);
    const errors = ['LeaseLostError', 'ValidationError', 'NonRetryableError', 'ConfigError', 'StoreError'].map((n) => `require('leasehold').${n}.name`);
    writeFileSync(
      join(app, 'names.cjs'),
      `console.log(JSON.stringify([${[...names, ...errors].join(', ')}]));\n` +
        `console.log(require('node:util').inspect(new (require('leasehold').NonRetryableError)('bad')).split('\\n')[0]);`,
    );
    const [listed, inspected] = run(['names.cjs']).trim().split('\n');
    const wanted = [...subpaths.filter((s) => !esmOnly.includes(s)).map((s) => expected[s]), 'LeaseLostError', 'ValidationError', 'NonRetryableError', 'ConfigError', 'StoreError'];
    expect(JSON.parse(listed!)).toEqual(wanted);
    expect(inspected).toBe('NonRetryableError: bad');
  });

  it('refuses require() of the ESM-only subpaths with a clear error', () => {
    for (const s of esmOnly) {
      writeFileSync(join(app, 'esm-only.cjs'), `try { require('${s}'); console.log('loaded'); } catch (e) { console.log(e.code); }`);
      expect(run(['esm-only.cjs']).trim(), s).toBe('ERR_PACKAGE_PATH_NOT_EXPORTED');
    }
  });

  it('ships no CommonJS build of the ESM-only subpaths (no export reaches it)', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    expect(files).toContain('package/dist/testing.js');
    for (const s of esmOnly) {
      const name = s.slice('leasehold/'.length);
      expect(files.filter((f) => f.startsWith(`package/dist/${name}.`) && /\.(cjs|cjs\.map|d\.cts)$/.test(f)), s).toEqual([]);
    }
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
    run([tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', 'types.mts', 'types.cts']);
  }, 180_000);

  it('ships subpath types that resolve under `moduleResolution: node` too (typesVersions)', () => {
    const body = subpaths.map((s, i) => `import { ${expected[s]} as X${i} } from '${s}';\nexport const t${i}: unknown = X${i};`).join('\n');
    writeFileSync(join(app, 'node10.ts'), body);
    run([tsc, '--noEmit', '--strict', '--module', 'commonjs', '--moduleResolution', 'node10', '--target', 'es2022', '--types', 'node', '--esModuleInterop', '--skipLibCheck', 'node10.ts']);
  }, 180_000);

  it('runs the store contract of leasehold/testing under the project\'s vitest, against leasehold/memory', () => {
    // as a store package would: its own vitest (a peer of leasehold/testing) and its own zod
    const suite = join(app, 'contract');
    mkdirSync(suite);
    writeFileSync(
      join(suite, 'contract.test.mjs'),
      [
        "import { storeContract } from 'leasehold/testing';",
        "import { MemoryStore } from 'leasehold/memory';",
        'const clocks = new WeakMap();',
        'storeContract({',
        "  name: 'packed MemoryStore',",
        '  async create() { const clock = { now: Date.parse("2026-01-01T00:00:00Z") }; const store = new MemoryStore({ clock: () => clock.now }); clocks.set(store, clock); return store; },',
        '  async elapse(store, ms) { clocks.get(store).now += ms; },',
        '});',
      ].join('\n'),
    );
    const report = join(app, 'contract-report.json');
    try {
      run([bin('vitest'), 'run', '--root', suite, '--reporter=json', `--outputFile=${report}`], { timeout: 120_000 });
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      throw new Error(`the contract failed under the consumer's vitest\n${stdout}\n${stderr}`.slice(0, 6_000));
    }
    const result = JSON.parse(readFileSync(report, 'utf8')) as { numTotalTests: number; numPassedTests: number; numFailedTests: number; testResults: Array<{ name: string }> };
    expect(result.testResults.map((r) => r.name)).toEqual([join(suite, 'contract.test.mjs')]);
    expect(result.numFailedTests).toBe(0);
    expect(result.numPassedTests).toBeGreaterThan(50);
  }, 120_000);

  it('passes publint on the tarball (warnings count as errors)', () => {
    const out = run([bin('publint'), 'run', tarball, '--strict']);
    expect(out).toContain('All good!');
  });

  it('passes arethetypeswrong on the tarball, for node10, node16 (CJS and ESM) and bundlers', () => {
    const attw = (...args: string[]) => run([bin('@arethetypeswrong/cli', 'attw'), tarball, '--format', 'ascii', ...args], { env: { ...process.env, NO_COLOR: '1' } });
    const entries = esmOnly.map((s) => `./${s.slice('leasehold/'.length)}`);
    expect(attw('--exclude-entrypoints', ...entries)).toContain('No problems found');
    // the ESM-only subpaths: their ESM and bundler resolutions (attw exits non-zero on a problem)
    const esm = attw('--entrypoints', ...entries, '--profile', 'esm-only');
    for (const s of esmOnly) expect(esm).toContain(`"${s}"`);
    expect(esm.match(/node16 \(from ESM\): 🟢 \(ESM\)/g)).toHaveLength(esmOnly.length);
  }, 180_000);

  it('leaves zod to the project (a peer), so that one copy of its types is checked', () => {
    const manifest = JSON.parse(readFileSync(join(app, 'node_modules', 'leasehold', 'package.json'), 'utf8')) as { dependencies?: object; peerDependencies: Record<string, string> };
    expect(manifest.dependencies ?? {}).not.toHaveProperty('zod');
    expect(manifest.peerDependencies.zod).toBe('^4.0.0');
  });

  it('type-checks the quick start beside another zod 4 minor, within a 1 GiB heap', () => {
    const own = pkg.devDependencies.zod!;
    const theirs = (JSON.parse(readFileSync(join(app, 'node_modules', 'zod', 'package.json'), 'utf8')) as { version: string }).version;
    expect(theirs.split('.').slice(0, 2), `the project's zod (${theirs}) must be another minor than ${own}`).not.toEqual(own.split('.').slice(0, 2));
    try {
      // two copies of zod's types (one inside leasehold) made tsc run out of memory here
      run(['--max-old-space-size=1024', tsc, '--noEmit', '--strict', '--module', 'nodenext', '--target', 'es2022', '--types', 'node', 'quick-start.ts'], { timeout: 240_000 });
    } catch (error) {
      const { stdout, stderr } = error as { stdout?: string; stderr?: string };
      const oom = /heap out of memory|Allocation failed/.test(`${stderr}`);
      throw new Error(`${oom ? 'tsc ran out of memory: is a second copy of zod installed inside leasehold?' : 'tsc failed'}\n${stdout}\n${stderr}`.slice(0, 4_000));
    }
  }, 300_000);

  it('runs the quick start with ts-node (node --loader ts-node/esm)', () => {
    expectQuickStartRan(run(['--loader', 'ts-node/esm', 'quick-start.ts']));
  }, 180_000);

  it('runs the quick start with tsx', () => {
    expectQuickStartRan(run([bin('tsx'), 'quick-start.ts']));
  });

  it('runs the quick start as plain JavaScript (.mjs), copied as it is', () => {
    // "Run it" says the quick start has no type annotations: it runs unchanged as JavaScript
    writeFileSync(join(app, 'quick-start.mjs'), quickStart());
    expectQuickStartRan(run(['quick-start.mjs']));
  });

  it('runs the quick start as CommonJS with require (.cjs)', () => {
    // CommonJS has no top-level await: the statements after the imports go in an async function
    const lines = quickStart().split('\n');
    const imports = lines.filter((l) => l.startsWith('import '));
    expect(imports.length).toBeGreaterThan(0);
    const body = lines.filter((l) => !l.startsWith('import ')).join('\n');
    const wrapped = `${imports.join('\n')}\nvoid (async () => {\n${body}\n})().catch((error) => { console.error(error); process.exitCode = 1; });\n`;
    const js = ts.transpileModule(wrapped, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText;
    expect(js).toContain("require(\"leasehold\")");
    writeFileSync(join(app, 'quick-start.cjs'), js);
    expectQuickStartRan(run(['quick-start.cjs']));
  });
});
