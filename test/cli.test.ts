import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { clip, displayWidth, timeText } from '../src/cli/format.js';
import { inBatches } from '../src/cli/batches.js';
import { parseDuration, parseStatuses, parseTime } from '../src/cli/parse.js';
import { LeaseLostError, NonRetryableError, Tracker, type Store } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory.js';
import { PostgresStore } from '../src/stores/postgres.js';
import { SqliteStore } from '../src/stores/sqlite.js';
import { cliDefinition } from './support/cli-definition.mjs';
import { statusFor } from './support/dashboard.js';

/**
 * The `leasehold` command line as users run it: the built dist/cli.js in a child process, in a
 * directory holding a leasehold.config.*, against a real SQLite file and PostgreSQL. The test
 * process seeds items through the sources and checks what each command changed.
 */
const root = resolve(import.meta.dirname, '..');
const cliPath = join(root, 'dist', 'cli.js');
const dist = (path: string) => pathToFileURL(join(root, 'dist', path)).href;
const definitionUrl = pathToFileURL(join(root, 'test', 'support', 'cli-definition.mjs')).href;
const run = `${process.pid}_${Date.now() % 1e6}`;
const tmp = mkdtempSync(join(tmpdir(), 'leasehold-cli-'));

// colour and debug settings of the outer shell must not leak into the children's output
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !['FORCE_COLOR', 'NO_COLOR', 'LEASEHOLD_DEBUG', 'LEASEHOLD_STORE'].includes(k)));

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node dist/cli.js ...args` in `cwd`; stdin is a pipe, not a terminal. */
function cli(cwd: string, args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Ran> {
  return new Promise((done) => {
    execFile(process.execPath, [cliPath, ...args], { cwd, env: { ...env, ...extraEnv }, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

/** Runs and expects `code`, showing stderr when it differs. */
async function expectCode(cwd: string, args: readonly string[], code: number, extraEnv?: NodeJS.ProcessEnv): Promise<Ran> {
  const ran = await cli(cwd, args, extraEnv);
  expect(ran.code, `leasehold ${args.join(' ')}\nstdout: ${ran.stdout}\nstderr: ${ran.stderr}`).toBe(code);
  return ran;
}

const json = <T>(ran: Ran): T => JSON.parse(ran.stdout) as T;

/** A directory with one config file in it. */
function configDir(name: string, file: string, text: string): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, file), text);
  return dir;
}

const sqliteConfig = (filename: string, table: string) => `
import { Tracker } from '${dist('index.js')}';
import { SqliteStore } from '${dist('stores/sqlite.js')}';
import { cliDefinition } from '${definitionUrl}';
const store = new SqliteStore({ filename: ${JSON.stringify(filename)}, table: ${JSON.stringify(table)} });
export const trackers = { jobs: new Tracker(cliDefinition(store)) };
export async function close() { await store.close(); }
`;

/** A SQLite config whose one tracker is the CLI definition with `options` (source text using `z`) over it. */
const sqliteConfigWith = (filename: string, table: string, name: string, options: string) => `
import { createRequire } from 'node:module';
import { Tracker } from '${dist('index.js')}';
import { SqliteStore } from '${dist('stores/sqlite.js')}';
import { cliDefinition } from '${definitionUrl}';
const { z } = createRequire(${JSON.stringify(join(root, 'package.json'))})('zod');
const store = new SqliteStore({ filename: ${JSON.stringify(filename)}, table: ${JSON.stringify(table)} });
export const trackers = { ${name}: new Tracker({ ...cliDefinition(store), ${options} }) };
export async function close() { await store.close(); }
`;

const postgresConfig = (url: string, table: string) => `
import { createRequire } from 'node:module';
import { Tracker } from '${dist('index.js')}';
import { PostgresStore } from '${dist('stores/postgres.js')}';
import { cliDefinition } from '${definitionUrl}';
const pg = createRequire(${JSON.stringify(join(root, 'package.json'))})('pg');
const pool = new pg.Pool({ connectionString: ${JSON.stringify(url)}, max: 2 });
const store = new PostgresStore({ pool, table: ${JSON.stringify(table)} });
export default { trackers: { jobs: new Tracker(cliDefinition(store)) }, close: () => pool.end() };
`;

interface Harness {
  readonly name: string;
  /** The store for the test process, and the config text for the child. */
  open(): Promise<{ store: Store; config: string; close(): Promise<void> }>;
}

const pools: pg.Pool[] = [];
afterAll(async () => {
  await Promise.all(pools.map((p) => p.end()));
  rmSync(tmp, { recursive: true, force: true });
});

const harnesses: Harness[] = [
  {
    name: 'SQLite file',
    async open() {
      const filename = join(tmp, 'cli.sqlite');
      const store = new SqliteStore({ filename, table: 'cli_jobs' });
      return { store, config: sqliteConfig(filename, 'cli_jobs'), close: () => store.close() };
    },
  },
  {
    name: `PostgreSQL (${inject('postgresSource')})`,
    async open() {
      const url = inject('postgresUrl');
      const pool = new pg.Pool({ connectionString: url, max: 4 });
      pools.push(pool);
      const table = `cli_jobs_${run}`;
      return { store: new PostgresStore({ pool, table }), config: postgresConfig(url, table), close: async () => {} };
    },
  },
];

const makeJobs = (store: Store, options?: { ttlMs?: number }) => new Tracker(cliDefinition(store, options));
type Jobs = ReturnType<typeof makeJobs>;

for (const harness of harnesses) {
  describe(`leasehold CLI on ${harness.name}`, () => {
    let dir = '';
    let jobs: Jobs;
    let held: Awaited<ReturnType<Jobs['claim']>>;
    let closeStore: () => Promise<void> = async () => {};

    beforeAll(async () => {
      const opened = await harness.open();
      closeStore = opened.close;
      dir = configDir(harness.name.startsWith('SQLite') ? 'sqlite' : 'postgres', 'leasehold.config.mjs', opened.config);
      jobs = makeJobs(opened.store);
      const owner = 'seed';
      for (const id of ['f1', 'f2', 'f3']) {
        await jobs.track({ id });
        await jobs.fail((await jobs.claim('fetch', { owner, key: { id } }))!, new Error(`boom ${id}`), { retry: false });
      }
      for (const id of ['d1', 'd2']) {
        await jobs.track({ id });
        await jobs.complete((await jobs.claim('fetch', { owner, key: { id } }))!);
        await jobs.complete((await jobs.claim('process', { owner, key: { id } }))!);
      }
      await jobs.track({ id: 'w1' });
      await jobs.track({ id: 'h1' });
      held = await jobs.claim('fetch', { owner: 'holder', key: { id: 'h1' } });
      // a lease of 1 ms (store clock) that its holder never renews: the reaper's work
      await jobs.track({ id: 'x1' });
      const shortLived = makeJobs(opened.store, { ttlMs: 1 });
      await shortLived.claim('fetch', { owner: 'dead', key: { id: 'x1' } });
      while ((await jobs.stats()).expiredLeases < 1) await new Promise((r) => setTimeout(r, 5));
    });

    afterAll(async () => closeStore());

    it('stats: an aligned table per stage, and JSON', async () => {
      const table = (await expectCode(dir, ['stats'], 0)).stdout.trimEnd().split('\n');
      expect(table[0]).toMatch(/^TRACKER\s+STAGE\s+WAITING\s+CLAIMABLE\s+ACTIVE\s+EXPIRED\s+FAILED\s+DONE$/);
      // waiting, claimable, active, expired, failed, done; the failed status is shared by both stages
      expect(table).toContainEqual(expect.stringMatching(/^jobs\s+fetch\s+0\s+1\s+1\s+1\s+3\s+0$/));
      expect(table).toContainEqual(expect.stringMatching(/^jobs\s+process\s+0\s+0\s+0\s+0\s+3\s+2$/));
      expect(new Set(table.map((l) => l.length)).size, 'every line as wide as the header').toBe(1);
      expect(table.join('\n')).not.toContain('\x1b[');

      const stats = json<Record<string, { byStatus: Record<string, number>; expiredLeases: number }>>(await expectCode(dir, ['stats', '--json'], 0));
      expect(stats.jobs!.byStatus).toEqual({ queued: 1, fetching: 2, fetched: 0, processing: 0, processed: 2, failed: 3 });
      expect(stats.jobs!.expiredLeases).toBe(1);
    });

    it('list: items of a status as JSON and as a table, cut at --limit', async () => {
      const failed = json<Array<{ key: { id: string }; status: string; lastError: string }>>(await expectCode(dir, ['list', '--status', 'failed', '--json'], 0));
      expect(failed.map((i) => i.key.id).sort()).toEqual(['f1', 'f2', 'f3']);
      expect(failed.every((i) => i.status === 'failed' && /boom f\d/.test(i.lastError))).toBe(true);

      const table = await expectCode(dir, ['list', '--status', 'failed,processed', '--limit', '4'], 0);
      const lines = table.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^KEY\s+STATUS\s+ATTEMPTS\s+OWNER\s+UPDATED\s+LAST ERROR$/);
      expect(lines).toHaveLength(5);
      expect(table.stderr).toMatch(/showing the first 4; more match/);
    });

    it('show: one item, or exit 3 when it does not exist', async () => {
      const shown = await expectCode(dir, ['show', '{"id":"f1"}'], 0);
      expect(shown.stdout).toMatch(/^status\s+failed$/m);
      expect(shown.stdout).toMatch(/^last error\s+Error: boom f1$/m);
      expect((await expectCode(dir, ['show', '{"id":"nope"}'], 3)).stderr).toMatch(/no item \{"id":"nope"\} in tracker `jobs`/);
    });

    it('retry: one parked item, then all of them with --yes; refuses --all without a terminal', async () => {
      // parked by `fetch`: --stage process names the wrong stage, and the message says which is right
      expect((await expectCode(dir, ['retry', '{"id":"f1"}', '--stage', 'process'], 3)).stderr).toMatch(/is `failed`, parked by stage `fetch`, and retry --stage process acts only on items that stage parked: pass --stage fetch, or drop --stage; nothing was changed/);
      const one = await expectCode(dir, ['retry', '{"id":"f1"}'], 0);
      expect(one.stdout).toMatch(/retried \{"id":"f1"\}: now `queued`/);
      expect(await jobs.get({ id: 'f1' })).toMatchObject({ status: 'queued', attempts: 0 });
      // not parked any more: nothing to do
      expect((await expectCode(dir, ['retry', '{"id":"f1"}'], 3)).stderr).toMatch(/is `queued`, and retry acts only on items parked/);

      expect((await expectCode(dir, ['retry', '--all'], 2)).stderr).toMatch(/stdin is not a terminal; pass --yes/);
      expect((await jobs.get({ id: 'f2' }))?.status).toBe('failed');

      expect(json(await expectCode(dir, ['retry', '--all', '--yes', '--json'], 0))).toEqual({ tracker: 'jobs', retried: 2 });
      expect((await jobs.find({ status: 'failed' })).length).toBe(0);
      expect((await jobs.find({ status: 'queued' })).map((i) => i.key.id).sort()).toEqual(['f1', 'f2', 'f3', 'w1']);
      // nothing parked: done, with exit 0
      expect((await expectCode(dir, ['retry', '--all', '--yes'], 0)).stdout).toMatch(/retried 0 item/);
    });

    it('cancel: a held item goes to failed and its holder is fenced off', async () => {
      expect((await expectCode(dir, ['cancel', '{"id":"w1"}', '--stage', 'process', '--reason', 'x', '--yes'], 3)).stderr).toMatch(
        /is `queued`, and cancel --stage process acts only on items that stage waits in or holds \(fetched, processing\): pass the stage the item is in, or drop --stage/,
      );
      expect((await expectCode(dir, ['cancel', '{"id":"h1"}', '--reason', 'stuck'], 2)).stderr).toMatch(/pass --yes/);
      // an empty reason is refused naming the flag, before anything is asked (no TTY here: asking would say "pass --yes")
      expect((await expectCode(dir, ['cancel', '{"id":"h1"}', '--reason', ' '], 2)).stderr).toMatch(/--reason must say why the item is cancelled/);
      expect((await jobs.get({ id: 'h1' }))?.status).toBe('fetching');
      const cancelled = json<{ status: string; lastError: string; fence: number }>(await expectCode(dir, ['cancel', '{"id":"h1"}', '--reason', 'stuck', '--yes', '--json'], 0));
      expect(cancelled).toMatchObject({ status: 'failed', lastError: 'cancelled: stuck' });
      expect(cancelled.fence).toBeGreaterThan(held!.fence);
      await expect(jobs.complete(held!)).rejects.toBeInstanceOf(LeaseLostError);
      expect((await expectCode(dir, ['cancel', '{"id":"h1"}', '--reason', 'again', '--yes'], 3)).stderr).toMatch(/is `failed`, and cancel acts only on items that wait or are held/);
    });

    it('reschedule: --in and --at set when a waiting item becomes claimable', async () => {
      const before = Date.now();
      const later = json<{ notBefore: string }>(await expectCode(dir, ['reschedule', '{"id":"w1"}', '--in', '2h', '--json'], 0));
      // store clock against this one: a generous margin either way
      expect(Date.parse(later.notBefore) - before).toBeGreaterThan(2 * 3_600_000 - 600_000);
      expect(Date.parse(later.notBefore) - before).toBeLessThan(2 * 3_600_000 + 600_000);
      const at = await expectCode(dir, ['reschedule', '{"id":"w1"}', '--at', '2031-01-31T09:00:00Z'], 0);
      expect(at.stdout).toMatch(/not claimable before 2031-01-31T09:00:00Z/);
      expect((await jobs.get({ id: 'w1' }))?.notBefore?.toISOString()).toBe('2031-01-31T09:00:00.000Z');
      expect((await jobs.stats()).stages.fetch!.waiting).toBe(1);
      // h1 was cancelled: it does not wait
      await expectCode(dir, ['reschedule', '{"id":"h1"}', '--in', '5m'], 3);
    });

    it('purge: finished items, older than a duration, with --yes', async () => {
      expect((await expectCode(dir, ['purge', '--status', 'processed'], 2)).stderr).toMatch(/pass --yes/);
      expect(json(await expectCode(dir, ['purge', '--status', 'processed', '--older-than', '7d', '--yes', '--json'], 0))).toEqual({ tracker: 'jobs', status: 'processed', deleted: 0 });
      expect((await expectCode(dir, ['purge', '--status', 'processed', '--yes'], 0)).stdout).toMatch(/deleted 2 item\(s\) in `processed`/);
      expect(await jobs.get({ id: 'd1' })).toBeNull();
    });

    it('reap: the expired lease goes back for another attempt', async () => {
      expect(json(await expectCode(dir, ['reap', '--json'], 0))).toEqual({ jobs: { retried: 1, failed: 0 } });
      expect(await jobs.get({ id: 'x1' })).toMatchObject({ status: 'queued', lastError: 'lease expired' });
    });
  });
}

describe('status lists', () => {
  it('a declared status whose name holds a comma is one status; other text is a comma-separated list', () => {
    const def = new Tracker({ ...cliDefinition(new MemoryStore()), statuses: ['queued', 'fetching', 'fetched', 'processing', 'processed', 'failed', 'done, archived'], stages: { ...cliDefinition(new MemoryStore()).stages, process: { from: 'fetched', active: 'processing', done: ['processed', 'done, archived'], failed: 'failed' } } }).definition;
    expect(parseStatuses('jobs', def, '--status', 'done, archived')).toEqual(['done, archived']);
    expect(parseStatuses('jobs', def, '--status', 'queued,failed')).toEqual(['queued', 'failed']);
    expect(() => parseStatuses('jobs', def, '--status', 'done,archived')).toThrow(/unknown status `done`/);
  });
});

describe('retry --all in batches', () => {
  it('stops at the number parked when it began, even while workers park items again as fast as it retries them', async () => {
    const asked: number[] = [];
    const seen: number[] = [];
    // every call finds a full batch: what it retried was parked again meanwhile
    const total = await inBatches(1_234, async (limit) => (asked.push(limit), limit), (n) => seen.push(n));
    expect(total).toBe(1_234);
    expect(asked).toEqual([500, 500, 234]);
    expect(seen).toEqual([500, 1_000, 1_234]);
  });

  it('ends at the first short batch, and does nothing when nothing is parked', async () => {
    const asked: number[] = [];
    expect(await inBatches(1_200, async (limit) => (asked.push(limit), limit === 500 && asked.length === 1 ? 500 : 42), () => {})).toBe(542);
    expect(asked).toEqual([500, 500]);
    expect(await inBatches(0, async () => expect.unreachable(), () => {})).toBe(0);
  });
});

describe('leasehold CLI: configs, help and usage errors', () => {
  const filename = join(tmp, 'misc.sqlite');
  let dir = '';
  let jobs: Jobs;
  let seeded: unknown;

  beforeAll(async () => {
    dir = configDir('misc', 'leasehold.config.mjs', sqliteConfig(filename, 'misc_jobs'));
    jobs = makeJobs(new SqliteStore({ filename, table: 'misc_jobs' }));
    await jobs.track({ id: 'a1' });
    seeded = await jobs.get({ id: 'a1' });
  });

  /**
   * A config over a SQLite file whose tracker's data has a schema (`{ n: number }`), with the
   * items `ids` tracked and `spoilt` edited by hand into a shape the schema refuses.
   */
  const withUnreadable = async (name: string, ids: readonly string[], spoilt: string) => {
    const file = join(tmp, `${name}.sqlite`);
    const table = `${name}_jobs`;
    const cfg = configDir(name, 'leasehold.config.mjs', sqliteConfigWith(file, table, 'jobs', 'data: z.object({ n: z.number() })'));
    const store = new SqliteStore({ filename: file, table });
    const tracker = new Tracker({ ...cliDefinition(store), data: z.object({ n: z.number() }) });
    for (const id of ids) await tracker.track({ id }, { n: 1 });
    const db = new Database(file);
    db.prepare(`UPDATE ${table} SET data = '{"n":"one"}' WHERE key_id = ?`).run(spoilt);
    db.close();
    return { cfg, store };
  };

  it('retry of an item parked with no stage recorded in a failed status two stages share says to pass --stage, and --stage retries it', async () => {
    const file = join(tmp, 'unstaged.sqlite');
    const table = 'unstaged_jobs';
    const cfg = configDir('unstaged', 'leasehold.config.mjs', sqliteConfig(file, table));
    const store = new SqliteStore({ filename: file, table });
    try {
      const tracker = new Tracker(cliDefinition(store));
      await tracker.track({ id: 'u1' });
      await tracker.fail((await tracker.claim('fetch', { owner: 'w', key: { id: 'u1' } }))!, new Error('boom'), { retry: false });
      // parked by a version that did not record the stage
      const db = new Database(file);
      db.prepare(`UPDATE ${table} SET stage = NULL WHERE key_id = ?`).run('u1');
      db.close();
      expect((await expectCode(cfg, ['retry', '{"id":"u1"}'], 3)).stderr).toMatch(
        /item \{"id":"u1"\} is `failed` with no stage recorded, and `failed` is the failed status of stages fetch, process: pass --stage with the one it should go back to; nothing was changed/,
      );
      // --all leaves it, and says so
      const all = await expectCode(cfg, ['retry', '--all', '--yes'], 0);
      expect(all.stdout).toMatch(/retried 0 item\(s\) in tracker/);
      expect(all.stderr).toMatch(/1 item\(s\) are still in `failed`, the failed status of several stages: --all leaves those parked with no stage recorded .*retry them by key with --stage/);
      expect((await expectCode(cfg, ['retry', '{"id":"u1"}', '--stage', 'fetch'], 0)).stdout).toMatch(/retried \{"id":"u1"\}: now `queued`/);
    } finally {
      await store.close();
    }
  });

  it('an operator verb on an item whose stored data no longer fits: applied, said so, exit 1 (not a usage error)', async () => {
    const { cfg, store } = await withUnreadable('invalid', ['b1'], 'b1');
    try {
      const ran = await expectCode(cfg, ['cancel', '{"id":"b1"}', '--reason', 'bad data', '--yes'], 1);
      expect(ran.stderr).toMatch(/The `cancel` was applied: the item is now `failed`/);
      expect(ran.stderr).toMatch(/^leasehold: `cancel` applied, with a warning: /);
      expect(ran.stderr).not.toMatch(/`cancel` failed/);
      expect((await store.find({ key: { id: 'b1' } }, { limit: 1, returning: 'state' }))[0]!.status).toBe('failed');
    } finally {
      await store.close();
    }
  });

  it('list shows the items whose stored data no longer fits apart, with why, and the others; show of one exits 1', async () => {
    const { cfg, store } = await withUnreadable('unreadable', ['c1', 'c2', 'c3'], 'c2');
    try {
      const listed = await expectCode(cfg, ['list'], 0);
      expect(listed.stdout).toMatch(/KEY \(no longer fits the schema\) +STATUS +PROBLEM[\s\S]*c2"\} +queued +n: .*number/);
      expect(listed.stdout).toMatch(/c1[\s\S]*c3/);
      expect(listed.stderr).toMatch(/1 item\(s\) above no longer fit the tracker's schema/);
      const asJson = await expectCode(cfg, ['list', '--json'], 0);
      expect(json<Array<{ key: { id: string } }>>(asJson).map((i) => i.key.id)).toEqual(['c1', 'c3']);
      expect(asJson.stderr).toMatch(/item \{"id":"c2"\} no longer fits the schema \(n: .*\); not in the JSON above/);
      // the limit counts every row read: the unreadable one is shown apart, the readable ones up to it
      const cut = await expectCode(cfg, ['list', '--limit', '1', '--json'], 0);
      expect(json<Array<{ key: { id: string } }>>(cut).map((i) => i.key.id)).toEqual(['c1']);
      expect(cut.stderr).toMatch(/showing every row read \(2, 1 of them unreadable\); more may match/);
      // every row read is shown (c3 too): nothing readable was cut
      const all = await expectCode(cfg, ['list', '--limit', '2', '--json'], 0);
      expect(json<Array<{ key: { id: string } }>>(all).map((i) => i.key.id)).toEqual(['c1', 'c3']);
      expect(all.stderr).not.toMatch(/more match/);
      // the one item, read alone: a failure to read it, not a usage error
      expect((await expectCode(cfg, ['show', '{"id":"c2"}'], 1)).stderr).toMatch(/invalid stored data/);
    } finally {
      await store.close();
    }
  });

  it('a date key field is given as ISO text in the key JSON', async () => {
    const file = join(tmp, 'dated.sqlite');
    const dated = (store: Store) =>
      new Tracker({ ...cliDefinition(store), key: z.object({ day: z.date() }) });
    const cfg = configDir('dated', 'leasehold.config.mjs', sqliteConfigWith(file, 'dated_jobs', 'days', 'key: z.object({ day: z.date() })'));
    const store = new SqliteStore({ filename: file, table: 'dated_jobs' });
    try {
      await dated(store).track({ day: new Date('2026-03-01T00:00:00Z') });
      const shown = json<{ key: { day: string }; status: string }>(await expectCode(cfg, ['show', '{"day":"2026-03-01T00:00:00Z"}', '--json'], 0));
      expect(shown).toMatchObject({ key: { day: '2026-03-01T00:00:00.000Z' }, status: 'queued' });
      await expectCode(cfg, ['cancel', '{"day":"2026-03-01T00:00:00.000Z"}', '--reason', 'not needed', '--yes'], 0);
      expect((await dated(store).get({ day: new Date('2026-03-01T00:00:00Z') }))!.status).toBe('failed');
      expect((await expectCode(cfg, ['show', '{"day":"2026-02-30T00:00:00Z"}'], 2)).stderr).toMatch(/key field `day` `2026-02-30T00:00:00Z` is not a time/);
    } finally {
      await store.close();
    }
  });

  it('loads a TypeScript config through jiti (default export with types)', async () => {
    const ts = configDir(
      'typescript',
      'leasehold.config.ts',
      `import { Tracker } from ${JSON.stringify(join(root, 'dist', 'index.cjs'))};
import { SqliteStore } from ${JSON.stringify(join(root, 'dist', 'stores', 'sqlite.cjs'))};
import { cliDefinition } from ${JSON.stringify(join(root, 'test', 'support', 'cli-definition.mjs'))};
interface Config { readonly trackers: Record<string, unknown>; close(): Promise<void> }
const store = new SqliteStore({ filename: ${JSON.stringify(filename)}, table: 'misc_jobs' });
const config: Config = { trackers: { typed: new Tracker(cliDefinition(store)) }, close: () => store.close() };
export default config satisfies Config;
`,
    );
    const shown = json<{ key: { id: string }; status: string }>(await expectCode(ts, ['show', '{"id":"a1"}', '--json'], 0));
    expect(shown).toMatchObject({ key: { id: 'a1' }, status: 'queued' });
    // --config from elsewhere, by a relative path
    expect((await expectCode(tmp, ['--config', 'typescript/leasehold.config.ts', 'stats'], 0)).stdout).toMatch(/^typed\s+fetch\s+0\s+1\s/m);
  });

  it("loads the partner-log example's config (CommonJS TypeScript) on a store from LEASEHOLD_STORE", async () => {
    const store = `sqlite:${join(tmp, 'partner-log.sqlite')}`;
    const config = join(root, 'examples', 'partner-log', 'leasehold.config.ts');
    const stats = json<Record<string, { total: number; stages: Record<string, unknown> }>>(await expectCode(tmp, ['--config', config, 'stats', '--json'], 0, { LEASEHOLD_STORE: store }));
    expect(Object.keys(stats)).toEqual(['partner-logs']);
    expect(stats['partner-logs']).toMatchObject({ total: 0 });
    expect(Object.keys(stats['partner-logs']!.stages)).toEqual(['download', 'process']);
  });

  it('colours a table only when asked to (FORCE_COLOR), never with --no-color', async () => {
    expect((await expectCode(dir, ['stats'], 0, { FORCE_COLOR: '1' })).stdout).toContain('\x1b[1mTRACKER');
    expect((await expectCode(dir, ['stats', '--no-color'], 0, { FORCE_COLOR: '1' })).stdout).not.toContain('\x1b[');
  });

  it('--help lists every command and the exit codes; each command documents its options', async () => {
    const [main, retry, purge, reschedule, list] = await Promise.all([
      expectCode(dir, ['--help'], 0),
      expectCode(dir, ['retry', '--help'], 0),
      expectCode(dir, ['purge', '--help'], 0),
      expectCode(dir, ['reschedule', '--help'], 0),
      expectCode(dir, ['list', '--help'], 0),
    ]);
    for (const command of ['stats', 'list', 'show', 'retry', 'cancel', 'reschedule', 'purge', 'reap']) expect(main.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    expect(main.stdout).toMatch(/Exit codes:\n {2}0 +.*\n {2}1 +.*\n(.*\n)* {2}2 +usage error.*\n(.*\n)* {2}3 +the item does not exist/);
    expect(retry.stdout).toMatch(/Usage: leasehold retry \[options\] \[key-json\]/);
    for (const option of ['--all', '--stage <stage>', '--limit <n>', '-y, --yes', '--tracker <name>', '--json']) expect(retry.stdout).toContain(option);
    for (const option of ['--status <status>', '--older-than <duration>', '--limit <n>', '-y, --yes']) expect(purge.stdout).toContain(option);
    for (const option of ['--at <iso-time>', '--in <duration>']) expect(reschedule.stdout).toContain(option);
    for (const option of ['--status <status>', '--undeclared', '--limit <n>']) expect(list.stdout).toContain(option);
    expect(retry.stdout).toMatch(/Exit codes: 0 done, 1 failed, 2 usage error, 3/);
  });

  it('bad input is one line saying what to do, with exit 2', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['show', '{id:a1}'], /the key `\{id:a1\}` is not valid JSON .*give the key object in single quotes/],
      [['show', '{"id":1}'], /invalid key \(id: .*expected string/],
      [['--tracker', 'nope', 'stats'], /unknown tracker `nope`; .* defines: jobs\. Pass one of them to --tracker/],
      [['list', '--status', 'nope'], /unknown status `nope` for tracker `jobs`; use one of: queued, fetching, fetched, processing, processed, failed/],
      [['list', '--limit', '0'], /--limit `0` must be a positive whole number/],
      [['reschedule', '{"id":"a1"}', '--in', '5x'], /--in `5x` is not a duration: use a number and a unit .* such as 90s, 5m/],
      [['reschedule', '{"id":"a1"}', '--at', 'tomorrow'], /--at `tomorrow` is not a time: use ISO 8601/],
      [['reschedule', '{"id":"a1"}'], /give exactly one of --at ISO-TIME and --in DURATION/],
      [['purge', '--status', 'processed', '--older-than', 'ever', '--yes'], /--older-than `ever` is not a duration/],
      [['purge', '--status', 'queued', '--yes'], /`queued` is a status items wait or are held in; purge deletes only finished items; use one of: processed, failed/],
      [['retry'], /give either a key \(retry '\{"id":"a1"\}'\) or --all, not both and not neither/],
      [['retry', '--all', '--stage', 'nope', '--yes'], /unknown stage `nope` for tracker `jobs`; use one of: fetch, process/],
      [['cancel', '{"id":"a1"}'], /required option '--reason <text>' not specified/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['list', '--frob'], /unknown option '--frob'/],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(dir, args)));
    results.forEach((ran, i) => {
      const [args, message] = cases[i]!;
      expect(ran.code, `leasehold ${args.join(' ')}: ${ran.stderr}`).toBe(2);
      expect(ran.stderr).toMatch(message);
      expect(ran.stdout).toBe('');
    });
    // and nothing was changed by any of them
    expect(await jobs.get({ id: 'a1' })).toEqual(seeded);
  });

  it("list --status with no status in it ('' or ',') is a usage error naming the option, not a list of every status", async () => {
    for (const status of ['', ',', ' , ']) {
      const ran = await expectCode(dir, ['list', '--status', status], 2);
      expect(ran.stderr).toMatch(/--status `.*` names no status; give one or more separated by commas, from: queued, fetching/);
      expect(ran.stdout).toBe('');
    }
    // purge takes one status per run: a list is refused, not read as a status name
    expect((await expectCode(dir, ['purge', '--status', 'processed,failed', '--yes'], 2)).stderr).toMatch(/purge deletes from one status per run/);
    expect((await expectCode(dir, ['purge', '--status', ',', '--yes'], 2)).stderr).toMatch(/--status `,` names no status/);
  });

  it('refuses impossible ISO dates such as 2030-02-30 with exit 2 instead of rolling them over to March', async () => {
    for (const at of ['2030-02-30T09:00:00Z', '2030-04-31', '2029-02-29T00:00:00Z', '2030-01-31T25:00:00Z', '2030-01-31T09:00:00+99:00']) {
      const ran = await expectCode(dir, ['reschedule', '{"id":"a1"}', '--at', at], 2);
      expect(ran.stderr).toMatch(/--at `.*` is not a time: use ISO 8601 with a day and time that exist/);
    }
    expect(await jobs.get({ id: 'a1' })).toEqual(seeded);
    // the parser itself: real days and times pass, as `new Date` reads them
    expect(parseTime('--at', '2028-02-29T09:00:00+02:00').toISOString()).toBe('2028-02-29T07:00:00.000Z');
    expect(parseTime('--at', '2030-01-31').toISOString()).toBe('2030-01-31T00:00:00.000Z');
    expect(() => parseTime('--at', '2100-02-29')).toThrow(/is not a time/);
  });

  it('a duration that reaches past the last Date (--in, --older-than) is a usage error before anything is written, not a crash', async () => {
    const huge = '99999999999w';
    expect((await expectCode(dir, ['reschedule', '{"id":"a1"}', '--in', huge], 2)).stderr).toMatch(/--in `99999999999w` is too long: .* past the last date there is/);
    expect((await expectCode(dir, ['purge', '--status', 'processed', '--older-than', huge, '--yes'], 2)).stderr).toMatch(/--older-than `99999999999w` is too long/);
    expect(await jobs.get({ id: 'a1' })).toEqual(seeded);
    // the longest that still gives a valid Date either way passes
    expect(parseDuration('--in', '52w')).toBe(52 * 604_800_000);
    expect(() => parseDuration('--in', `${Math.floor((8.64e15 - Date.now()) / 604_800_000) + 1}w`)).toThrow(/is too long/);
    // and a Date that holds no time is shown as such, never thrown at the operator
    expect(timeText(new Date(Number.NaN))).toBe('invalid date');
  });

  it('config problems: none found and no trackers are usage errors (2), a config that throws is a failure (1), several trackers need --tracker', async () => {
    const empty = configDir('empty', 'README', 'no config here');
    const noTrackers = configDir('no-trackers', 'leasehold.config.mjs', 'export const answer = 42;\n');
    const throws = configDir('throws', 'leasehold.config.mjs', "throw new Error('cannot reach the database');\n");
    const several = configDir(
      'several',
      'leasehold.config.mjs',
      sqliteConfig(filename, 'misc_jobs').replace('export const trackers = { jobs: new Tracker(cliDefinition(store)) };', 'export const trackers = { jobs: new Tracker(cliDefinition(store)), other: new Tracker(cliDefinition(store)) };'),
    );
    const [none, missing, noneExported, thrown, ambiguous, chosen, all] = await Promise.all([
      cli(empty, ['stats']),
      cli(empty, ['--config', 'nowhere.ts', 'stats']),
      cli(noTrackers, ['stats']),
      cli(throws, ['stats']),
      cli(several, ['show', '{"id":"a1"}']),
      cli(several, ['--tracker', 'other', 'show', '{"id":"a1"}', '--json']),
      cli(several, ['stats', '--json']),
    ]);
    expect([none.code, none.stderr]).toEqual([2, expect.stringMatching(/no leasehold config in .*: create leasehold\.config\.ts .* or pass --config PATH/)]);
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringMatching(/config file `nowhere\.ts` not found/)]);
    expect([noneExported.code, noneExported.stderr]).toEqual([2, expect.stringMatching(/exports no trackers: export `\{ trackers: \{ name: tracker \} \}`/)]);
    expect([thrown.code, thrown.stderr]).toEqual([1, expect.stringMatching(/loading .*leasehold\.config\.mjs failed: cannot reach the database/)]);
    expect([ambiguous.code, ambiguous.stderr]).toEqual([2, expect.stringMatching(/the config defines 2 trackers \(jobs, other\); choose one with --tracker NAME/)]);
    expect(chosen.code, chosen.stderr).toBe(0);
    expect(Object.keys(JSON.parse(all.stdout) as object)).toEqual(['jobs', 'other']);
  });
});

describe('leasehold CLI: item data on a terminal', () => {
  const filename = join(tmp, 'shown.sqlite');
  const EVIL_KEY = 'evil\u001b[2J\u009b31m';
  const OWNER = 'w\u001b[31mRED\u001b[0m\u202e\u061c';
  const ERROR = 'parse \u001b]0;pwned\u0007 failed\nline2\u001b[2J';
  let dir = '';

  beforeAll(async () => {
    dir = configDir('shown', 'leasehold.config.mjs', sqliteConfig(filename, 'shown_jobs'));
    const store = new SqliteStore({ filename, table: 'shown_jobs' });
    const jobs = makeJobs(store);
    await jobs.track({ id: EVIL_KEY }, { note: 'bell\u0007 csi\u009b2J' });
    await jobs.fail((await jobs.claim('fetch', { owner: OWNER, key: { id: EVIL_KEY } }))!, new NonRetryableError(ERROR));
    await jobs.track({ id: '日本' });
    await store.close();
  });

  /** Control characters a terminal would act on (a line break aside). */
  const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u202a-\u202e\u2066-\u2069]/;

  it('escapes control characters of item data (keys, owner, last error, data) in list and show, instead of letting them drive the terminal', async () => {
    const list = await expectCode(dir, ['list'], 0);
    expect(list.stdout).not.toMatch(RAW_CONTROL);
    expect(list.stdout).toContain('{"id":"evil\\u001b[2J\\u009b31m"}');
    expect(list.stdout).toContain('w\\u001b[31mRED\\u001b[0m\\u202e\\u061c');
    // on one line, cut at 60 columns between escapes, never inside one
    expect(list.stdout).toContain('NonRetryableError: parse \\u001b]0;pwned\\u0007 failed line2…');

    const show = await expectCode(dir, ['show', JSON.stringify({ id: EVIL_KEY })], 0);
    expect(show.stdout).not.toMatch(RAW_CONTROL);
    // a last error of several lines stays several lines, indented under the first
    expect(show.stdout).toMatch(/^last error {2}NonRetryableError: parse \\u001b\]0;pwned\\u0007 failed\n {12}line2\\u001b\[2J$/m);
    expect(show.stdout).toMatch(/"note": "bell\\u0007 csi\\u009b2J"/);
    // the key as shown is still JSON that names the item
    const shownKey = show.stdout.match(/^key {9}(.*)$/m)![1]!;
    expect(JSON.parse(shownKey)).toEqual({ id: EVIL_KEY });

    // --json stays exact
    const exact = json<Array<{ key: { id: string }; owner: string; lastError: string }>>(await expectCode(dir, ['list', '--status', 'failed', '--json'], 0));
    expect(exact[0]).toMatchObject({ key: { id: EVIL_KEY }, owner: OWNER, lastError: `NonRetryableError: ${ERROR}` });
  });

  it('keeps table columns aligned when item data holds control or wide characters', async () => {
    const lines = (await expectCode(dir, ['list'], 0)).stdout.trimEnd().split('\n');
    const statusAt = lines[0]!.indexOf('STATUS');
    const evil = lines.find((l) => l.includes('evil'))!;
    expect(evil.indexOf('failed')).toBe(statusAt);
    // two wide characters take two columns each: the status starts two code units earlier
    const wide = lines.find((l) => l.includes('日本'))!;
    expect(wide.indexOf('queued')).toBe(statusAt - 2);
    // clipped by code point: no half of a surrogate pair, and never wider than asked
    const clipped = clip(`${'a'.repeat(8)}${'😀'.repeat(10)}`, 12);
    expect(clipped).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/);
    expect(displayWidth(clipped)).toBeLessThanOrEqual(12);
    expect(clipped).toBe(`${'a'.repeat(8)}😀…`);
  });
});

describe('leasehold dashboard', () => {
  it('serves the dashboard for the config\'s trackers on a loopback port, with a token in the printed address, and exits 0 on Ctrl-C', async () => {
    const filename = join(tmp, 'dashboard.sqlite');
    const seed = new SqliteStore({ filename, table: 'dash_jobs' });
    const jobs = makeJobs(seed);
    await jobs.track({ id: 'a' });
    await seed.close();
    const dir = configDir('dashboard', 'leasehold.config.mjs', sqliteConfig(filename, 'dash_jobs'));
    expect((await expectCode(dir, ['dashboard', '--port', '0', '--allowed-host', 'https://dash.example.com'], 2)).stderr).toMatch(/--allowed-host takes host names/);
    // refused naming the flag: an empty port is no random one, a short token names --token
    expect((await expectCode(dir, ['dashboard', '--port', ''], 2)).stderr).toMatch(/--port must be a TCP port from 0 to 65535, got ``/);
    expect((await expectCode(dir, ['dashboard', '--port', '0x10'], 2)).stderr).toMatch(/--port must be a TCP port/);
    expect((await expectCode(dir, ['dashboard', '--port', '0', '--token', 'short'], 2)).stderr).toMatch(/^leasehold: --token must be at least 16 characters without spaces/);
    // an empty token (a variable left unset) is refused, not replaced by a made-up one
    expect((await expectCode(dir, ['dashboard', '--port', '0', '--token', ''], 2)).stderr).toMatch(/^leasehold: --token is empty; give a long random secret/);
    const child = spawn(process.execPath, [cliPath, 'dashboard', '--port', '0', '--allowed-host', 'dash.example.com'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    const end = Date.now() + 60_000;
    while (!/dashboard: http:\/\/127\.0\.0\.1:\d+\/#token=\S+/.test(out)) {
      if (Date.now() > end) throw new Error(`no dashboard address printed:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const [, base] = out.match(/dashboard: (http:\/\/127\.0\.0\.1:\d+\/)#token=/)!;
    const page = await fetch(base!);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'self'/);
    // a reverse proxy's name is answered too; another name is refused (DNS rebinding)
    const port = Number(new URL(base!).port);
    expect(await statusFor(port, 'dash.example.com')).toBe(200);
    expect(await statusFor(port, 'evil.example')).toBe(403);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  }, 90_000);
});
