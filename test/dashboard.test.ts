import Database from 'better-sqlite3';
import express from 'express';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { z } from 'zod';
import { createDashboard, serveDashboard, type DashboardHandler } from '../src/dashboard/index.js';
import { allowedHosts } from '../src/dashboard/serve.js';
import { parseKey } from '../src/dashboard/input.js';
import { NonRetryableError, Tracker, type Store } from '../src/index.js';
import { MemoryStore } from '../src/stores/memory.js';
import { PostgresStore } from '../src/stores/postgres.js';
import { SqliteStore } from '../src/stores/sqlite.js';
import { statusFor, trackerWithData } from './support/dashboard.js';
import { cliDefinition } from './support/cli-definition.mjs';

/**
 * The dashboard's HTTP API, mounted on plain node:http and on Express, over a SQLite file and the
 * embedded PostgreSQL: what it counts and lists, the three mutations, what it refuses, and that
 * bad input is a 4xx with a message, never a 500.
 */
const TOKEN = 'dashboard-test-token-0123456789';
const XSS_KEY = '<script>window.__xss=1</script>';
const XSS_ERROR = '"><img src=x onerror="window.__xss=2">';

const dir = mkdtempSync(join(tmpdir(), 'leasehold-dashboard-'));
const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  for (const clean of cleanups.reverse()) await clean();
  rmSync(dir, { recursive: true, force: true });
});

function makeTracker(store: Store) {
  return new Tracker({
    store,
    statuses: ['queued', 'running', 'done', 'failed'],
    initial: 'queued',
    key: z.object({ id: z.string() }),
    stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } },
    lease: { ttlMs: 60_000 },
    // a failed attempt waits long enough to be seen waiting
    retry: { maxAttempts: 3, backoff: () => 600_000 },
  });
}
type Jobs = ReturnType<typeof makeTracker>;

const stores: Array<[string, (table: string) => Store]> = [
  ['SQLite file', (table) => new SqliteStore({ filename: join(dir, `${table}.sqlite`), table })],
  [
    'embedded PostgreSQL',
    (table) => {
      const pool = new pg.Pool({ connectionString: inject('postgresUrl'), max: 4 });
      pool.on('error', () => {});
      cleanups.push(async () => {
        await pool.query(`DROP TABLE IF EXISTS "${table}_keys", "${table}"`);
        await pool.end();
      });
      return new PostgresStore({ pool, table });
    },
  ],
];

/** Mounts a dashboard (and a read-only one) and returns the page's address. */
type Mount = (main: DashboardHandler, readOnly: DashboardHandler) => Promise<{ base: string; readOnlyBase: string; server: Server }>;

const listen = async (server: Server) => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
};

const mounts: Array<[string, Mount]> = [
  [
    'node:http',
    async (main, readOnly) => {
      // the read-only one has a basePath and hands every other request on, as middleware does
      const server = createServer((req, res) => readOnly(req, res, () => main(req, res)));
      const origin = await listen(server);
      return { base: `${origin}/`, readOnlyBase: `${origin}/ro/`, server };
    },
  ],
  [
    'Express',
    async (main, readOnly) => {
      const app = express();
      // a body parser in front: the handler uses the body it already read
      app.use(express.json());
      app.use('/admin/leasehold', main);
      app.use('/ro-app', readOnly);
      const server = createServer(app);
      const origin = await listen(server);
      return { base: `${origin}/admin/leasehold/`, readOnlyBase: `${origin}/ro-app/ro/`, server };
    },
  ],
];

interface Answer {
  status: number;
  text: string;
  json: Record<string, any>;
  headers: Headers;
}

/** One request; mutations are sent from the page's own origin with the token unless told otherwise. */
async function call(
  base: string,
  path: string,
  options: { body?: unknown; form?: Record<string, string>; token?: string | null; origin?: string | null; method?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const url = new URL(path, base);
  const post = options.body !== undefined || options.form !== undefined;
  const headers: Record<string, string> = { ...options.headers };
  if (post || options.method === 'POST') {
    const origin = options.origin === undefined ? url.origin : options.origin;
    if (origin !== null) headers.origin = origin;
    const token = options.token === undefined ? TOKEN : options.token;
    if (token !== null && options.form === undefined) headers['x-leasehold-token'] = token;
  }
  let body: string | undefined;
  if (options.form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(options.form).toString();
  } else if (options.body !== undefined) {
    headers['content-type'] ??= 'application/json';
    body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body);
  }
  const res = await fetch(url, { method: options.method ?? (post ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
  const text = await res.text();
  let json: Record<string, any> = {};
  try {
    json = JSON.parse(text);
  } catch {
    json = {};
  }
  return { status: res.status, text, json, headers: res.headers };
}

/** A 4xx with a readable message and no stack trace. */
function expectRefusal(answer: Answer, status: number, message: RegExp) {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  expect(answer.json.error).toMatch(message);
  expect(answer.text).not.toMatch(/\n\s+at |\\n\s+at /);
}

describe.each(stores)('dashboard API on %s', (storeName, makeStore) => {
  describe.each(mounts)('mounted on %s', (mountName, mount) => {
    const table = `dash_${storeName.split(' ')[0]!.toLowerCase()}_${mountName.replace(/\W/g, '').toLowerCase()}`;
    let tracker: Jobs;
    let base = '';
    let readOnlyBase = '';

    const fail = async (id: string, error: unknown) => {
      const lease = await tracker.claim('run', { owner: 'test', key: { id } });
      await tracker.fail(lease!, error);
    };
    const stats = async () => (await call(base, 'api/trackers/jobs/stats')).json;

    beforeAll(async () => {
      tracker = makeTracker(makeStore(table));
      await tracker.init();
      for (const id of ['a', 'b', 'c', 'd', 'e', 'f', XSS_KEY]) await tracker.track({ id });
      const a = await tracker.claim('run', { owner: 'test', key: { id: 'a' } });
      await tracker.complete(a!);
      await tracker.claim('run', { owner: 'holder', key: { id: 'b' } });
      await fail('c', new NonRetryableError('partner sent a broken file'));
      await fail(XSS_KEY, new NonRetryableError(XSS_ERROR));
      // no background sampling and no cache: every stats request is one fresh sample
      const main = createDashboard({ trackers: { jobs: tracker }, token: TOKEN, statsCacheMs: 0, sampleIntervalMs: 0 });
      const readOnly = createDashboard({ trackers: { jobs: tracker }, readOnly: true, basePath: '/ro' });
      cleanups.push(() => main.close(), () => readOnly.close());
      ({ base, readOnlyBase } = await mount(main, readOnly));
    });

    it('serves the page, its script and style from the package, under a strict Content-Security-Policy', async () => {
      const page = await call(base, '');
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      const csp = page.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(page.headers.get('x-content-type-options')).toBe('nosniff');
      expect(page.text).toContain('<script src="app.js" defer></script>');
      // no inline script, and nothing from another host
      expect(page.text.match(/<script\b(?![^>]*\bsrc=)[^>]*>/g)).toBeNull();
      expect(page.text).not.toMatch(/(src|href)="(https?:)?\/\//);
      const script = await call(base, 'app.js');
      expect(script.status).toBe(200);
      expect(script.headers.get('content-type')).toMatch(/^text\/javascript/);
      expect(script.text).toContain('textContent');
      expect((await call(base, 'app.css')).headers.get('content-type')).toMatch(/^text\/css/);
      // the page links relatively, so a mount without the trailing slash is redirected to it
      const bare = await call(base.replace(/\/$/, ''), base.replace(/\/$/, ''));
      if (mountName === 'Express') {
        expect(bare.status).toBe(308);
        expect(bare.headers.get('location')).toBe(new URL(base).pathname);
      }
    });

    it('counts items per status and per stage, and follows them as they move', async () => {
      const first = await stats();
      expect(first.stats.byStatus).toEqual({ queued: 3, running: 1, done: 1, failed: 2 });
      expect(first.stats.total).toBe(7);
      expect(first.stats.stages.run).toEqual({ waiting: 0, claimable: 3, active: 1, expired: 0, done: 1, failed: 2 });
      expect(first.history.doneStatuses).toEqual(['done']);
      expect(first.history.failedStatuses).toEqual(['failed']);
      const b = (await tracker.find({ status: 'running' }))[0]!;
      await tracker.complete((await tracker.claim('run', { owner: 'x', key: { id: 'd' } }))!);
      // a failure with attempts left waits on backoff
      await tracker.fail((await tracker.claim('run', { owner: 'x', key: { id: 'e' } }))!, new Error('try later'));
      const next = await stats();
      expect(next.stats.byStatus).toMatchObject({ queued: 2, running: 1, done: 2 });
      expect(next.stats.waiting).toBe(1);
      expect(next.stats.stages.run.waiting).toBe(1);
      // the hour chart: what reached `done` since the previous sample
      const sum = (h: { buckets: Array<{ done: number | null; failed: number | null }> }, f: 'done' | 'failed') => h.buckets.reduce((a, x) => a + (x[f] ?? 0), 0);
      expect(sum(next.history, 'done')).toBe(1);
      expect(sum(next.history, 'failed')).toBe(0);
      expect(next.history.buckets).toHaveLength(60);
      expect(next.history.buckets.at(-1).done).not.toBeNull();
      expect(b.key).toEqual({ id: 'b' });
    });

    it('lists failed items by default, other statuses on request, up to a limit', async () => {
      const failed = await call(base, 'api/trackers/jobs/items');
      expect(failed.status).toBe(200);
      expect(failed.json.statuses).toEqual(['failed']);
      const ids = failed.json.items.map((i: { key: { id: string } }) => i.key.id).sort();
      expect(ids).toEqual([XSS_KEY, 'c'].sort());
      const c = failed.json.items.find((i: { key: { id: string } }) => i.key.id === 'c');
      expect(c).toMatchObject({ status: 'failed', stage: 'run', attempts: 1, lastError: 'NonRetryableError: partner sent a broken file' });
      expect(typeof c.finishedAt).toBe('string');
      // a list row carries no data: the item route does
      expect(c).not.toHaveProperty('data');
      const queued = await call(base, 'api/trackers/jobs/items?status=queued&limit=1');
      expect(queued.json.items).toHaveLength(1);
      expect(queued.json.items[0].status).toBe('queued');
      const two = await call(base, 'api/trackers/jobs/items?status=done,running');
      expect(new Set(two.json.items.map((i: { status: string }) => i.status))).toEqual(new Set(['done', 'running']));
    });

    it('finds an item by its key as JSON or as the bare value of a one-field key', async () => {
      const json = await call(base, `api/trackers/jobs/item?key=${encodeURIComponent('{"id":"a"}')}`);
      expect(json.status).toBe(200);
      expect(json.json.item).toMatchObject({ key: { id: 'a' }, status: 'done', attempts: 0, owner: 'test' });
      for (const field of ['fence', 'leaseExpiresAt', 'notBefore', 'lastError', 'createdAt', 'updatedAt', 'claimedAt', 'finishedAt', 'data']) {
        expect(json.json.item, field).toHaveProperty(field);
      }
      const bare = await call(base, 'api/trackers/jobs/item?key=a');
      expect(bare.json.item).toEqual(json.json.item);
      expectRefusal(await call(base, 'api/trackers/jobs/item?key=nope'), 404, /no item with key \{"id":"nope"\}/);
    });

    it('retries, cancels and purges through POST with the token', async () => {
      const retried = await call(base, 'api/trackers/jobs/retry', { body: { key: { id: 'c' } } });
      expect(retried.status, retried.text).toBe(200);
      expect(retried.json.item).toMatchObject({ key: { id: 'c' }, status: 'queued', attempts: 0 });
      expect((await tracker.get({ id: 'c' }))!.status).toBe('queued');
      // a worker can claim it at once
      const lease = await tracker.claim('run', { owner: 'after-retry', key: { id: 'c' } });
      expect(lease).not.toBeNull();
      await tracker.complete(lease!);
      expectRefusal(await call(base, 'api/trackers/jobs/retry', { body: { key: { id: 'c' } } }), 409, /not parked in a failed status/);

      // a form post carries the token as a field
      const cancelled = await call(base, 'api/trackers/jobs/cancel', { form: { key: '{"id":"f"}', reason: 'duplicate upload', token: TOKEN } });
      expect(cancelled.status, cancelled.text).toBe(200);
      expect(cancelled.json.item).toMatchObject({ status: 'failed', lastError: 'cancelled: duplicate upload' });
      expectRefusal(await call(base, 'api/trackers/jobs/cancel', { body: { key: { id: 'f' } } }), 409, /not waiting or held/);

      const done = (await stats()).stats.byStatus.done as number;
      expect(done).toBeGreaterThan(0);
      const purged = await call(base, 'api/trackers/jobs/purge', { body: { status: 'done' } });
      expect(purged.status, purged.text).toBe(200);
      expect(purged.json).toEqual({ deleted: done });
      const after = await stats();
      expect(after.stats.byStatus.done).toBe(0);
      // the dashboard's own purge and retry are not a fall in arrivals; the cancel is a failure
      expect(after.history.buckets.reduce((a: number, x: { failed: number | null }) => a + (x.failed ?? 0), 0)).toBe(1);
      const finishedBefore = new Date(Date.now() - 3_600_000).toISOString();
      expect((await call(base, 'api/trackers/jobs/purge', { body: { status: 'failed', finishedBefore, limit: 10 } })).json).toEqual({ deleted: 0 });
    });

    it('refuses a mutation without the token, with a wrong one, from another origin, or without an origin', async () => {
      const key = { key: { id: XSS_KEY } };
      expectRefusal(await call(base, 'api/trackers/jobs/retry', { body: key, token: null }), 401, /no token/);
      expectRefusal(await call(base, 'api/trackers/jobs/retry', { body: key, token: `${TOKEN}x` }), 401, /wrong token/);
      expectRefusal(await call(base, 'api/trackers/jobs/retry', { body: key, origin: 'http://evil.example' }), 403, /cross-origin request refused/);
      expectRefusal(await call(base, 'api/trackers/jobs/retry', { body: key, origin: null }), 403, /no Origin or Referer/);
      expectRefusal(await call(base, 'api/trackers/jobs/retry', { body: key, origin: null, headers: { referer: 'http://evil.example/page' } }), 403, /cross-origin/);
      expectRefusal(await call(base, 'api/trackers/jobs/retry', { body: key, headers: { 'sec-fetch-site': 'cross-site' } }), 403, /Sec-Fetch-Site/);
      expectRefusal(await call(base, 'api/trackers/jobs/purge', { form: { status: 'failed', token: 'not-it' } }), 401, /wrong token/);
      // a Referer from the page itself is enough when a browser sends no Origin
      const viaReferer = await call(base, 'api/trackers/jobs/cancel', { body: { key: { id: 'nobody' } }, origin: null, headers: { referer: base } });
      expect(viaReferer.status).toBe(409);
      expect((await tracker.get({ id: XSS_KEY }))!.status).toBe('failed');
      // GET never changes anything
      expectRefusal(await call(base, `api/trackers/jobs/retry?key=${encodeURIComponent(JSON.stringify({ id: XSS_KEY }))}`), 405, /mutations are POST/);
      expect((await tracker.get({ id: XSS_KEY }))!.status).toBe('failed');
    });

    it('read-only: the mutation routes answer 405, and the page is told to hide its buttons', async () => {
      const config = await call(readOnlyBase, 'api/config');
      expect(config.json).toMatchObject({ readOnly: true, trackers: [{ name: 'jobs' }] });
      expect(config.json.trackers[0].definition).toMatchObject({ initial: 'queued', terminalStatuses: ['done', 'failed'] });
      for (const op of ['retry', 'cancel', 'purge']) {
        expectRefusal(await call(readOnlyBase, `api/trackers/jobs/${op}`, { body: { key: { id: XSS_KEY }, status: 'failed' } }), 405, /read-only/);
      }
      expect((await tracker.get({ id: XSS_KEY }))!.status).toBe('failed');
      expect((await call(readOnlyBase, 'api/trackers/jobs/stats')).json.stats.byStatus.failed).toBeGreaterThan(0);
      expect((await call(base, 'api/config')).json.readOnly).toBe(false);
    });

    it('sends item values as JSON in which no HTML tag can appear', async () => {
      const list = await call(base, 'api/trackers/jobs/items?status=failed');
      expect(list.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(list.headers.get('x-content-type-options')).toBe('nosniff');
      expect(list.text).not.toContain('<');
      expect(list.text).toContain('\\u003cscript>window.__xss=1\\u003c/script>');
      const item = list.json.items.find((i: { key: { id: string } }) => i.key.id === XSS_KEY);
      expect(item.lastError).toBe(`NonRetryableError: ${XSS_ERROR}`);
      const reflected = await call(base, `api/trackers/${encodeURIComponent('<img src=x onerror=alert(1)>')}/stats`);
      expect(reflected.status).toBe(404);
      expect(reflected.text).not.toContain('<');
    });

    it('answers bad input with a 4xx and a message, never a 500', async () => {
      const cases: Array<[string, Parameters<typeof call>[2], number, RegExp]> = [
        ['api/trackers/nope/stats', {}, 404, /unknown tracker `nope`; this dashboard shows: jobs/],
        ['api/trackers/%E0%A4%A/stats', {}, 400, /malformed tracker name/],
        ['api/trackers/jobs/nothing', {}, 404, /no such API route/],
        ['api/elsewhere', {}, 404, /no such API route/],
        ['nothing-here.js', {}, 404, /no such page/],
        ['api/trackers/jobs/items?status=lost', {}, 400, /unknown status `lost`; this tracker's statuses are queued, running, done, failed/],
        ['api/trackers/jobs/items?limit=100000000', {}, 400, /`limit` must be a whole number from 1 to 500/],
        ['api/trackers/jobs/items?limit=-1', {}, 400, /`limit`/],
        ['api/trackers/jobs/items?limit=1e3', {}, 400, /`limit`/],
        ['api/trackers/jobs/item', {}, 400, /give a `key`/],
        [`api/trackers/jobs/item?key=${encodeURIComponent('{"id":')}`, {}, 400, /is not valid JSON/],
        [`api/trackers/jobs/item?key=${encodeURIComponent('{"id":{"$ne":null}}')}`, {}, 400, /objects such as query operators are rejected/],
        [`api/trackers/jobs/item?key=${encodeURIComponent('{"other":"x"}')}`, {}, 400, /unknown key field/],
        [`api/trackers/jobs/item?key=${'x'.repeat(5000)}`, {}, 400, /longer than 4096/],
        ['api/trackers/jobs/stats', { method: 'POST', body: {} }, 405, /use GET/],
        ['api/trackers/jobs/retry', { body: '{"key":' }, 400, /not valid JSON/],
        ['api/trackers/jobs/retry', { body: '[1,2]' }, 400, /must be a JSON object/],
        ['api/trackers/jobs/retry', { body: {} }, 400, /give a `key`/],
        ['api/trackers/jobs/retry', { body: { key: ['a'] } }, 400, /the key must be an object of the key fields, such as \{"id":"a1"\}, not a list/],
        ['api/trackers/jobs/retry', { body: { key: 'a', pad: 'x'.repeat(20_000) } }, 413, /larger than 16384 bytes/],
        ['api/trackers/jobs/retry', { body: 'key=a', headers: { 'content-type': 'text/plain' } }, 415, /unsupported content type/],
        ['api/trackers/jobs/cancel', { body: { key: { id: 'a' }, reason: 'x'.repeat(600) } }, 400, /`reason` must be text/],
        ['api/trackers/jobs/purge', { body: { status: 'queued' } }, 400, /`queued` is not accepted here; use one of done, failed/],
        ['api/trackers/jobs/purge', { body: { status: 'gone' } }, 400, /unknown status `gone`/],
        ['api/trackers/jobs/purge', { body: { status: 'done', finishedBefore: 'yesterday' } }, 400, /ISO 8601/],
        ['api/trackers/jobs/purge', { body: { status: 'done', limit: 0 } }, 400, /`limit`/],
      ];
      for (const [path, options, status, message] of cases) {
        const answer = await call(base, path, options);
        // Express's own JSON parser answers a malformed or oversized body before the dashboard sees it
        if (mountName === 'Express' && /not valid JSON|must be a JSON object|larger than/.test(message.source)) {
          expect(answer.status, `${path} ${JSON.stringify(options).slice(0, 80)}`).toBeGreaterThanOrEqual(400);
          expect(answer.status).toBeLessThan(500);
          continue;
        }
        expectRefusal(answer, status, message);
      }
    });
  });
});

describe('serveDashboard', () => {
  const tracker = makeTracker(new MemoryStore());

  it('binds 127.0.0.1 by default, makes a token for the page, and answers only to loopback host names', async () => {
    const warnings: string[] = [];
    const served = await serveDashboard({ trackers: { jobs: tracker }, port: 0, warn: (m) => warnings.push(m) });
    try {
      expect(served.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect(served.token).toMatch(/^[\w-]{32}$/);
      expect(served.openUrl).toBe(`${served.url}#token=${served.token}`);
      expect(warnings).toEqual([]);
      expect((await call(served.url, 'api/config')).json.readOnly).toBe(false);
      const port = new URL(served.url).port;
      expect((await call(`http://localhost:${port}/`, 'api/config')).status).toBe(200);
      // a page on another site reaching this port through DNS rebinding names its own host
      expect(await statusFor(port, `evil.example:${port}`)).toBe(403);
      const retried = await call(served.url, 'api/trackers/jobs/retry', { body: { key: { id: 'zz' } }, token: served.token });
      // past the guards: the item is looked up (and not found)
      expect(retried.status).toBe(404);
    } finally {
      await served.close();
    }
  });

  it('warns when it listens beyond loopback, also with a token of its own: the token guards changes, not reads', async () => {
    const warnings: string[] = [];
    const open = await serveDashboard({ trackers: { jobs: tracker }, port: 0, host: '0.0.0.0', warn: (m) => warnings.push(m) });
    await open.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/WARNING: listening on 0\.0\.0\.0:\d+: whoever reaches this port can read every item \(a token guards only retry, cancel and purge\)\. Mutations need the random token/);
    const guarded = await serveDashboard({ trackers: { jobs: tracker }, port: 0, host: '0.0.0.0', token: TOKEN, warn: (m) => warnings.push(m) });
    expect(guarded.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
    // and indeed: a read without the token, addressed to any name, is answered
    const read = await statusFor(new URL(guarded.url).port, 'anything.example', '/api/trackers/jobs/items');
    await guarded.close();
    expect(read).toBe(200);
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toMatch(/can read every item \(a token guards only retry, cancel and purge\)\. Bind 127\.0\.0\.1/);
  });

  it('allowedHosts: a mounted handler answers only the names listed; serveDashboard on loopback adds them to its own (a reverse proxy)', async () => {
    const status = statusFor;
    const handler = createDashboard({ trackers: { jobs: tracker }, token: TOKEN, sampleIntervalMs: 0, allowedHosts: ['127.0.0.1', 'localhost:9'] });
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      expect(await status(port, `127.0.0.1:${port}`)).toBe(200);
      expect(await status(port, 'localhost:9')).toBe(200);
      expect(await status(port, `localhost:${port}`)).toBe(403);
      expect(await status(port, `evil.example:${port}`, '/api/trackers/jobs/items')).toBe(403);
    } finally {
      handler.close();
      await new Promise((resolve) => server.close(resolve));
    }
    const proxied = await serveDashboard({ trackers: { jobs: tracker }, port: 0, token: TOKEN, allowedHosts: ['dash.example.com'] });
    const own = Number(new URL(proxied.url).port);
    try {
      expect(await status(own, `127.0.0.1:${own}`)).toBe(200);
      expect(await status(own, 'dash.example.com')).toBe(200);
      expect(await status(own, `evil.example:${own}`)).toBe(403);
      // a change through the proxy: Host and Origin name the proxy, the token is carried
      const post = (origin: string) =>
        statusFor(own, 'dash.example.com', '/api/trackers/jobs/retry', {
          body: JSON.stringify({ key: { id: 'none' } }),
          headers: { origin, 'content-type': 'application/json', 'x-leasehold-token': TOKEN },
        });
      expect(await post('https://dash.example.com')).toBe(404);
      expect(await post('https://evil.example')).toBe(403);
    } finally {
      await proxied.close();
    }
    // beyond loopback with allowedHosts: the printed address still answers
    const wide = await serveDashboard({ trackers: { jobs: tracker }, port: 0, host: '0.0.0.0', token: TOKEN, allowedHosts: ['DASH.example.com:443'], warn: () => {} });
    const widePort = Number(new URL(wide.url).port);
    try {
      expect((await call(wide.url, 'api/config')).status).toBe(200);
      // a browser leaves the default port out of Host
      expect(await status(widePort, 'dash.example.com')).toBe(200);
      expect(await status(widePort, 'dash.example.com:443')).toBe(200);
      expect(await status(widePort, 'dash.example.com:8443')).toBe(403);
    } finally {
      await wide.close();
    }
    expect(() => createDashboard({ trackers: { jobs: tracker }, allowedHosts: ['http://dash.example.com'] })).toThrow(/`dashboard.allowedHosts`/);
    expect(() => createDashboard({ trackers: { jobs: tracker }, allowedHosts: ['a.example:99999'] })).toThrow(/`dashboard.allowedHosts`/);
    expect(() => createDashboard({ trackers: { jobs: tracker }, allowedHosts: [] })).toThrow(/`dashboard.allowedHosts`/);
  });

  it('refuses options that cannot work', async () => {
    expect(() => createDashboard({ trackers: {} })).toThrow(/give at least one tracker/);
    expect(() => createDashboard({ trackers: { 'a b': tracker } })).toThrow(/a tracker name is 1 to 64 letters/);
    expect(() => createDashboard({ trackers: { jobs: tracker }, token: 'short' })).toThrow(/at least 16 characters/);
    expect(() => createDashboard({ trackers: { jobs: tracker }, basePath: 'no-slash' })).toThrow(/`dashboard.basePath`/);
    expect(createDashboard({ trackers: { jobs: tracker }, readOnly: true, token: TOKEN, sampleIntervalMs: 0 }).token).toBeUndefined();
    const taken = await serveDashboard({ trackers: { jobs: tracker }, port: 0 });
    try {
      await expect(serveDashboard({ trackers: { jobs: tracker }, port: Number(new URL(taken.url).port) })).rejects.toThrow(/is in use; pass another port \(`port`, or `--port` on the command line/);
    } finally {
      await taken.close();
    }
  });
});

/** A dashboard of its own over a fresh memory tracker (no list loaded, nothing learnt yet), on node:http. */
async function freshDashboard<T extends Jobs | DatedJobs>(tracker: T): Promise<string> {
  const handler = createDashboard({ trackers: { jobs: tracker }, token: TOKEN, statsCacheMs: 0, sampleIntervalMs: 0 });
  cleanups.push(() => handler.close());
  return `${await listen(createServer((req, res) => handler(req, res)))}/`;
}

/** A tracker keyed by a day (`z.date()`) and a site, or by `key`. */
function makeDatedTracker<K extends z.ZodObject = z.ZodObject<{ day: z.ZodDate; site: z.ZodString }>>(key?: K) {
  return new Tracker({
    store: new MemoryStore(),
    statuses: ['queued', 'running', 'done', 'failed'],
    initial: 'queued',
    key: (key ?? z.object({ day: z.date(), site: z.string() })) as K,
    stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } },
  });
}
type DatedJobs = ReturnType<typeof makeDatedTracker>;

describe('dashboard regressions', () => {
  /** A dashboard over `tracker` with a stats cache of `statsCacheMs`, and a count of its stats() reads. */
  const counted = async (tracker: Jobs, statsCacheMs: number, stats: () => Promise<unknown>, now?: () => number) => {
    let reads = 0;
    Object.assign(tracker, { stats: () => (reads++, stats()) });
    const handler = createDashboard({ trackers: { jobs: tracker }, token: TOKEN, statsCacheMs, sampleIntervalMs: 0, ...(now ? { now } : {}) });
    cleanups.push(() => handler.close());
    return { base: `${await listen(createServer((req, res) => handler(req, res)))}/`, reads: () => reads };
  };

  it('a stats() read that hangs is shared by every later poll for 10 s, rather than joined by one more per poll; then one more is sent, and shared', async () => {
    const answers: Array<() => void> = [];
    const tracker = makeTracker(new MemoryStore());
    const real = tracker.stats.bind(tracker);
    let clock = 1_000_000;
    const { base, reads } = await counted(tracker, 1, () => new Promise((resolve) => answers.push(() => resolve(real()))), () => clock);
    const polls = [call(base, 'api/trackers/jobs/stats')];
    await expect.poll(reads).toBe(1);
    for (let i = 0; i < 5; i++) {
      // well past the cache's 1 ms
      clock += 1_000;
      polls.push(call(base, 'api/trackers/jobs/stats'));
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(reads()).toBe(1);
    // past 10 s: one more read (a pool may give it a healthy connection), which the next polls share
    clock += 6_000;
    polls.push(call(base, 'api/trackers/jobs/stats'));
    await expect.poll(reads).toBe(2);
    polls.push(call(base, 'api/trackers/jobs/stats'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(reads()).toBe(2);
    for (const answer of answers) answer();
    for (const poll of await Promise.all(polls)) expect(poll.status).toBe(200);
  });

  it('the stats cache ages on the monotonic clock: a wall clock stepped back an hour does not keep old counts', async () => {
    const tracker = makeTracker(new MemoryStore());
    const real = tracker.stats.bind(tracker);
    await tracker.track({ id: 'a' });
    const { base } = await counted(tracker, 20, () => real());
    const queued = async () => (await call(base, 'api/trackers/jobs/stats')).json.stats.byStatus.queued as number;
    expect(await queued()).toBe(1);
    const wall = Date.now();
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => wall - 3_600_000);
    try {
      await tracker.track({ id: 'b' });
      // past the cache's age (20 ms, or 4 times the last read's duration), by the monotonic clock
      await expect.poll(queued, { timeout: 5_000, interval: 50 }).toBe(2);
    } finally {
      clock.mockRestore();
    }
  });

  it('answers a JSON object where text or a number belongs (such as {"toString":1}) with a 400 naming the field, not a 500', async () => {
    const base = await freshDashboard(makeTracker(new MemoryStore()));
    const trap = { toString: 1 };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ status: trap }, /`status` must be a status name.*got a value of type object/],
      [{ status: [trap] }, /`status` must be a status name.*got a list/],
      [{ status: 'done', limit: trap }, /`limit` must be a whole number.*got a value of type object/],
      [{ status: 'done', finishedBefore: trap }, /`finishedBefore` must be an ISO 8601 time.*got a value of type object/],
    ];
    for (const [body, message] of cases) expectRefusal(await call(base, 'api/trackers/jobs/purge', { body }), 400, message);
  });

  it('a retry or cancel of an item whose stored data no longer fits is answered as applied (200 with a warning), not refused', async () => {
    const { store, tracker, spoil } = trackerWithData();
    const base = await freshDashboard(tracker as unknown as Jobs);
    await tracker.track({ id: 'x' }, { n: 1 });
    // edited by hand into a shape the schema refuses
    await spoil('x', 'queued', { n: 'one' });
    const statusOf = async () => (await store.find({ key: { id: 'x' } }, { limit: 1 }))[0]!.status;
    const cancelled = await call(base, 'api/trackers/jobs/cancel', { body: { key: { id: 'x' } } });
    expect(cancelled.status).toBe(200);
    expect(cancelled.json).toMatchObject({ item: null, warning: expect.stringMatching(/The `cancel` was applied: the item is now `failed`/) });
    expect(await statusOf()).toBe('failed');
    const retried = await call(base, 'api/trackers/jobs/retry', { body: { key: { id: 'x' } } });
    expect(retried.status).toBe(200);
    expect(retried.json.warning).toMatch(/The `retry` was applied: the item is now `queued`/);
    expect(await statusOf()).toBe('queued');
  });

  it('lists an item whose stored data no longer fits apart, with why, beside the others; reading it alone is a 422', async () => {
    const { tracker, spoil } = trackerWithData();
    const base = await freshDashboard(tracker as unknown as Jobs);
    for (const id of ['a', 'b', 'c']) await tracker.track({ id }, { n: 1 });
    await spoil('b', 'queued', { n: 'two' });
    const listed = await call(base, 'api/trackers/jobs/items?status=queued');
    expect(listed.status).toBe(200);
    expect(listed.json.items.map((i: { key: { id: string } }) => i.key.id)).toEqual(['a', 'c']);
    expect(listed.json.invalid).toEqual([{ key: { id: 'b' }, status: 'queued', stage: null, problem: expect.stringMatching(/^n: .*number/) }]);
    const alone = await call(base, `api/trackers/jobs/item?key=${encodeURIComponent('{"id":"b"}')}`);
    expect(alone.status).toBe(422);
    expect(alone.json.error).toMatch(/invalid stored data/);
  });

  it('refuses to purge a list of statuses instead of purging only the first of them', async () => {
    const tracker = makeTracker(new MemoryStore());
    const base = await freshDashboard(tracker);
    for (const id of ['done-1', 'failed-1']) {
      await tracker.track({ id });
      const lease = (await tracker.claim('run', { owner: 'test', key: { id } }))!;
      if (id.startsWith('done')) await tracker.complete(lease);
      else await tracker.fail(lease, new NonRetryableError('broken'));
    }
    expectRefusal(await call(base, 'api/trackers/jobs/purge', { body: { status: 'done,failed' } }), 400, /give one `status`, got 2 \(done, failed\); send one request per status/);
    expectRefusal(await call(base, 'api/trackers/jobs/purge', { body: { status: ['failed', 'done'] } }), 400, /give one `status`, got 2/);
    expect((await tracker.stats()).byStatus).toMatchObject({ done: 1, failed: 1 });
    expect((await call(base, 'api/trackers/jobs/purge', { body: { status: ['done'] } })).json).toEqual({ deleted: 1 });
  });

  it('retries an item parked with no stage recorded in a failed status two stages share into the stage sent, and says why a retry changed nothing', async () => {
    const file = join(dir, 'unstaged.sqlite');
    const store = new SqliteStore({ filename: file, table: 'unstaged' });
    cleanups.push(() => store.close());
    // two stages sharing one failed status
    const tracker = new Tracker(cliDefinition(store));
    const base = await freshDashboard(tracker as unknown as Jobs);
    for (const id of ['u', 'p']) {
      await tracker.track({ id });
      await tracker.fail((await tracker.claim('fetch', { owner: 'w', key: { id } }))!, new NonRetryableError('broken'));
    }
    // parked by a version that did not record the stage
    const db = new Database(file);
    db.prepare(`UPDATE unstaged SET stage = NULL WHERE key_id = ?`).run('u');
    db.close();
    expectRefusal(
      await call(base, 'api/trackers/jobs/retry', { body: { key: { id: 'u' } } }),
      409,
      /item \{"id":"u"\} is `failed` with no stage recorded, and `failed` is the failed status of stages fetch, process: send `stage` with the one it should go back to; nothing changed/,
    );
    const retried = await call(base, 'api/trackers/jobs/retry', { body: { key: { id: 'u' }, stage: 'process' } });
    expect(retried.status, retried.text).toBe(200);
    expect(retried.json.item).toMatchObject({ status: 'fetched', attempts: 0 });
    expectRefusal(await call(base, 'api/trackers/jobs/retry', { body: { key: { id: 'p' }, stage: 'process' } }), 409, /was parked by stage `fetch`, not `process`: retry it without a stage, or with `fetch`/);
    expectRefusal(await call(base, 'api/trackers/jobs/retry', { body: { key: { id: 'p' }, stage: 'nope' } }), 400, /`stage` must be one of this tracker's stages \(fetch, process\), got `nope`/);
    expectRefusal(await call(base, 'api/trackers/jobs/retry', { body: { key: { id: 'u' } } }), 409, /is `fetched`, not parked in a failed status \(failed\)/);
    expectRefusal(await call(base, 'api/trackers/jobs/retry', { body: { key: { id: 'gone' } } }), 404, /no item \{"id":"gone"\} in tracker `jobs`/);
    expect((await tracker.get({ id: 'p' }))!.status).toBe('failed');
  });

  it('lists and purges a status whose name holds a comma as that one status', async () => {
    const tracker = new Tracker({
      store: new MemoryStore(),
      statuses: ['queued', 'running', 'done', 'failed, for good'],
      initial: 'queued',
      key: z.object({ id: z.string() }),
      stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed, for good' } },
    });
    const base = await freshDashboard(tracker as unknown as Jobs);
    await tracker.track({ id: 'x' });
    await tracker.fail((await tracker.claim('run', { owner: 'w', key: { id: 'x' } }))!, new NonRetryableError('broken'));
    const listed = await call(base, `api/trackers/jobs/items?status=${encodeURIComponent('failed, for good')}`);
    expect(listed.status, listed.text).toBe(200);
    expect(listed.json.items.map((i: { key: { id: string } }) => i.key.id)).toEqual(['x']);
    expect((await call(base, 'api/trackers/jobs/purge', { body: { status: 'failed, for good' } })).json).toEqual({ deleted: 1 });
  });

  it('a purge whose limit is null deletes as if no limit were given, not one item', async () => {
    const tracker = makeTracker(new MemoryStore());
    const base = await freshDashboard(tracker);
    for (const id of ['d1', 'd2', 'd3']) {
      await tracker.track({ id });
      await tracker.complete((await tracker.claim('run', { owner: 'test', key: { id } }))!);
    }
    expect((await call(base, 'api/trackers/jobs/purge', { body: { status: 'done', limit: null } })).json).toEqual({ deleted: 3 });
  });

  it('opens, retries and cancels an item keyed by a z.date() field on a fresh dashboard, before any list was loaded', async () => {
    const day = new Date('2024-05-01T00:00:00Z');
    const opened = makeDatedTracker();
    await opened.track({ day, site: 'a' });
    const key = { day: day.toISOString(), site: 'a' };
    const item = await call(await freshDashboard(opened), `api/trackers/jobs/item?key=${encodeURIComponent(JSON.stringify(key))}`);
    expect(item.status, item.text).toBe(200);
    expect(item.json.item).toMatchObject({ key, status: 'queued' });

    const cancelled = makeDatedTracker();
    await cancelled.track({ day, site: 'a' });
    const cancel = await call(await freshDashboard(cancelled), 'api/trackers/jobs/cancel', { body: { key, reason: 'test' } });
    expect(cancel.status, cancel.text).toBe(200);
    expect(cancel.json.item).toMatchObject({ status: 'failed', lastError: 'cancelled: test' });

    const retried = makeDatedTracker();
    await retried.track({ day, site: 'a' });
    await retried.cancel({ day, site: 'a' }, { reason: 'parked' });
    // a form post carries the key as JSON text
    const retry = await call(await freshDashboard(retried), 'api/trackers/jobs/retry', { form: { key: JSON.stringify(key), token: TOKEN } });
    expect(retry.status, retry.text).toBe(200);
    expect((await retried.get({ day, site: 'a' }))!.status).toBe('queued');
  });

  it('reads key field types from the definition: on an empty tracker a bare key or a date key is looked up (not found), not refused', async () => {
    const empty = await freshDashboard(makeTracker(new MemoryStore()));
    expectRefusal(await call(empty, 'api/trackers/jobs/item?key=a1'), 404, /no item with key \{"id":"a1"\} in tracker `jobs`/);
    const dated = await freshDashboard(makeDatedTracker());
    const key = { day: '2024-05-01T00:00:00.000Z', site: 'a' };
    // the date text became a Date (the schema took it): not parked, rather than a 400 from the schema
    expectRefusal(await call(dated, 'api/trackers/jobs/retry', { body: { key } }), 404, /no item \{"day":"2024-05-01T00:00:00.000Z","site":"a"\} in tracker `jobs`; nothing changed/);
    // the bare value of a one-field date key is read as a date
    const byDay = makeDatedTracker(z.object({ day: z.date() }));
    const days = await freshDashboard(byDay as unknown as Jobs);
    expectRefusal(await call(days, 'api/trackers/jobs/item?key=2024-05-01T00:00:00Z'), 404, /no item with key \{"day":"2024-05-01T00:00:00.000Z"\}/);
    await byDay.track({ day: new Date('2024-05-01T00:00:00Z') });
    expect((await call(days, 'api/trackers/jobs/item?key=2024-05-01T00:00:00Z')).json.item).toMatchObject({ status: 'queued' });
  });

  it('refuses impossible dates such as 2030-02-30 instead of rolling them over to March', async () => {
    const tracker = makeDatedTracker();
    await tracker.track({ day: new Date('2024-05-01T00:00:00Z'), site: 'a' });
    const base = await freshDashboard(tracker);
    for (const finishedBefore of ['2030-02-30T09:00:00Z', '2030-04-31', '2029-02-29T00:00:00Z', '2030-01-31T24:00:00Z', '2030-01-31T09:60:00Z', '2030-01-31T09:00:00+99:00']) {
      expectRefusal(await call(base, 'api/trackers/jobs/purge', { body: { status: 'done', finishedBefore } }), 400, /`finishedBefore` must be an ISO 8601 time of a day that exists/);
    }
    expect((await call(base, 'api/trackers/jobs/purge', { body: { status: 'done', finishedBefore: '2028-02-29T09:00:00+02:00' } })).status).toBe(200);
    // a key's date field too: 2024-04-31 is no day, not May 1st
    const key = encodeURIComponent(JSON.stringify({ day: '2024-04-31T00:00:00.000Z', site: 'a' }));
    expectRefusal(await call(base, `api/trackers/jobs/item?key=${key}`), 400, /`day` must be an ISO 8601 time of a day that exists/);
  });

  it('on port 80 also answers the Host a browser sends there, which leaves the port out', () => {
    expect([...allowedHosts('127.0.0.1', 80)].sort()).toEqual(['127.0.0.1', '127.0.0.1:80', '[::1]', '[::1]:80', 'localhost', 'localhost:80']);
    expect([...allowedHosts('::1', 80)]).toContain('[::1]');
    // on any other port the port must be named: a rebinding page on evil.example:80 gets no answer
    expect([...allowedHosts('127.0.0.1', 4321)].sort()).toEqual(['127.0.0.1:4321', '[::1]:4321', 'localhost:4321']);
    expect(allowedHosts('127.0.0.1', 80).has('evil.example')).toBe(false);
  });
});

describe('dashboard: an item that fails the schema', () => {
  it('does not stop the dashboard from naming another item by key', async () => {
    const store = new MemoryStore();
    const base = { store, statuses: ['pending', 'running', 'done', 'failed'], initial: 'pending', key: z.object({ id: z.string() }), stages: { work: { from: 'pending', active: 'running', done: 'done', failed: 'failed' } } } as const;
    // an older deploy wrote data the current schema refuses
    await new Tracker({ ...base, data: z.object({ x: z.any() }).partial() }).track({ id: 'old-bad' }, { x: 'not a number' });
    const strict = new Tracker({ ...base, data: z.object({ x: z.number() }).partial() });
    await strict.track({ id: 'good' }, { x: 1 });
    expect(await parseKey(strict as never, '{"id":"good"}')).toEqual({ id: 'good' });
  });
});
