import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { z } from 'zod';
import { serveDashboard, type ServedDashboard } from '../src/dashboard/index.js';
import { NonRetryableError, Tracker, type Store } from '../src/index.js';
import { PostgresStore } from '../src/stores/postgres.js';
import { SqliteStore } from '../src/stores/sqlite.js';
import { trackerWithData } from './support/dashboard.js';

/**
 * The real page in headless Chromium, over a SQLite file and the embedded PostgreSQL: counts
 * change as items move, a failed item retried from the page is claimed again, markup in keys and
 * errors shows as text, a mutation without the token is refused, purge asks first, and the page
 * runs under its Content-Security-Policy without a single violation.
 */
const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && existsSync(p));
if (!CHROMIUM) {
  console.log(
    `\n${'!'.repeat(100)}\n` +
      '[leasehold tests] THE DASHBOARD BROWSER TEST IS SKIPPED: no Chromium at /usr/bin/chromium (or CHROMIUM_PATH).\n' +
      '  Install it with:  apt-get update && apt-get install -y chromium   (CI installs it in .ci/run)\n' +
      `${'!'.repeat(100)}\n`,
  );
}

const TOKEN = 'browser-test-token-0123456789abc';
const XSS_KEY = '<script>window.__xss=1</script>';
const XSS_ERROR = '"><img src=x onerror="window.__xss=2">';

function makeTracker(store: Store) {
  return new Tracker({
    store,
    statuses: ['queued', 'running', 'done', 'failed'],
    initial: 'queued',
    key: z.object({ id: z.string() }),
    stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } },
    lease: { ttlMs: 60_000 },
    retry: { maxAttempts: 3 },
  });
}
type Jobs = ReturnType<typeof makeTracker>;

describe('the dashboard page in headless Chromium', () => {
  const dir = mkdtempSync(join(tmpdir(), 'leasehold-dashboard-browser-'));
  const table = `dash_browser_${process.pid}`;
  let pool: pg.Pool;
  let trackers: Record<'files' | 'rows', Jobs>;
  let served: ServedDashboard;
  let context: BrowserContext;
  /** Console errors and uncaught exceptions of every page (a CSP violation is one). */
  const problems: string[] = [];

  beforeAll(async () => {
    if (!CHROMIUM) return;
    pool = new pg.Pool({ connectionString: inject('postgresUrl'), max: 4 });
    pool.on('error', () => {});
    trackers = {
      files: makeTracker(new SqliteStore({ filename: join(dir, 'browser.sqlite'), table })),
      rows: makeTracker(new PostgresStore({ pool, table })),
    };
    for (const tracker of Object.values(trackers)) {
      for (const id of ['q1', 'q2', 'q3', 'q4', XSS_KEY, 'broken']) await tracker.track({ id });
      for (const [id, message] of [[XSS_KEY, XSS_ERROR], ['broken', 'checksum mismatch']] as const) {
        await tracker.fail((await tracker.claim('run', { owner: 'seed', key: { id } }))!, new NonRetryableError(message));
      }
    }
    served = await serveDashboard({ trackers, port: 0, token: TOKEN, sampleIntervalMs: 1_000 });
    context = await chromium.launchPersistentContext(mkdtempSync(join(dir, 'profile-')), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 1000 },
    });
    context.on('page', watch);
    for (const page of context.pages()) watch(page);
  });

  afterAll(async () => {
    await context?.close();
    await served?.close();
    if (pool) {
      await pool.query(`DROP TABLE IF EXISTS "${table}_keys", "${table}"`);
      await pool.end();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  function watch(page: Page) {
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      // refusals the test asks for are logged by Chromium as failed loads; anything else counts
      if (message.type() === 'error' && !/Failed to load resource: the server responded with a status of (401|409)/.test(message.text())) {
        problems.push(`console: ${message.text()}`);
      }
    });
  }

  const count = (page: Page, status: string) => page.locator(`svg.diagram [data-status="${status}"] .count`).textContent();
  const waitCounts = async (page: Page, expected: Record<string, string>) => {
    for (const [status, n] of Object.entries(expected)) await expect.poll(() => count(page, status), { timeout: 20_000 }).toBe(n);
  };
  const row = (page: Page, text: string) => page.locator('table.items tbody tr', { hasText: text });

  for (const name of ['files', 'rows'] as const) {
    const store = name === 'files' ? 'SQLite file' : 'embedded PostgreSQL';

    it.skipIf(!CHROMIUM)(`${store}: counts follow the items, markup shows as text, a retry from the page is claimed, purge asks first`, async () => {
      const tracker = trackers[name];
      const page = await context.newPage();
      // the printed URL carries the token in its fragment; the page keeps it for this tab
      await page.goto(served.openUrl);
      await page.click(`#tabs a[data-name="${name}"]`);
      await expect.poll(() => page.locator('h1').textContent()).toBe(name);
      await waitCounts(page, { queued: '4', running: '0', done: '0', failed: '2' });

      // items move: the page follows without a reload
      await tracker.complete((await tracker.claim('run', { owner: 'worker-1', key: { id: 'q1' } }))!);
      await tracker.claim('run', { owner: 'worker-1', key: { id: 'q2' } });
      await waitCounts(page, { queued: '2', running: '1', done: '1' });
      expect(await page.locator('svg.diagram [data-status="running"] .sub').textContent()).toBe('1 live');

      // every value from an item is text: the key and the error show as written, and nothing ran
      const xss = row(page, XSS_KEY);
      await xss.waitFor();
      expect(await xss.locator('td.key').textContent()).toBe(XSS_KEY);
      expect(await xss.locator('td.error').textContent()).toBe(`NonRetryableError: ${XSS_ERROR}`);
      expect(await page.locator('main img, main script').count()).toBe(0);
      expect(await page.evaluate(() => (globalThis as { __xss?: unknown }).__xss)).toBeUndefined();

      // retry from the page; a worker can claim it at once, and the item page shows the claim
      await xss.locator('button[data-action="retry"]').click();
      await expect.poll(() => page.locator('#notice').textContent()).toContain('Retried');
      expect((await tracker.get({ id: XSS_KEY }))!.status).toBe('queued');
      const lease = await tracker.claim('run', { owner: 'worker-2', key: { id: XSS_KEY } });
      expect(lease).not.toBeNull();
      await page.fill('#search-key', JSON.stringify({ id: XSS_KEY }));
      await page.press('#search-key', 'Enter');
      await expect.poll(() => page.locator('[data-field="status"]').textContent(), { timeout: 20_000 }).toBe('running');
      expect(await page.locator('[data-field="owner"]').textContent()).toBe('worker-2');
      expect(await page.locator('#item-key').textContent()).toBe(JSON.stringify({ id: XSS_KEY }));
      expect(await page.locator('[data-field="lastError"]').textContent()).toBe(`NonRetryableError: ${XSS_ERROR}`);
      expect(await page.evaluate(() => (globalThis as { __xss?: unknown }).__xss)).toBeUndefined();
      await tracker.complete(lease!);

      // purge asks first: Cancel deletes nothing, OK deletes
      await page.click(`#tabs a[data-name="${name}"]`);
      await waitCounts(page, { done: '2' });
      await page.selectOption('#purge-status', 'done');
      await page.click('#purge-button');
      await expect.poll(() => page.locator('#dialog-text').textContent()).toContain('Delete all 2 items in done for good');
      await page.click('#dialog button[value="cancel"]');
      expect((await tracker.stats()).byStatus.done).toBe(2);
      await page.click('#purge-button');
      await expect.poll(() => page.locator('#dialog-text').textContent()).toContain('Delete all 2 items in done for good');
      // an item that finishes while the dialog is open is not among those it named: it stays
      await tracker.complete((await tracker.claim('run', { owner: 'worker-3', key: { id: 'q3' } }))!);
      await page.click('#dialog-ok');
      await expect.poll(() => page.locator('#notice').textContent()).toContain('Deleted 2 items from done');
      await waitCounts(page, { done: '1' });
      expect((await tracker.stats()).byStatus.done).toBe(1);
      await page.close();
    });

    it.skipIf(!CHROMIUM)(`${store}: a mutation without the token is refused and changes nothing`, async () => {
      const tracker = trackers[name];
      const page = await context.newPage();
      await page.goto(`${served.url}#/t/${name}`);
      await expect.poll(() => page.locator('#token-button').textContent()).toBe('Set token');
      const broken = row(page, 'broken');
      await broken.waitFor();
      await broken.locator('button[data-action="retry"]').click();
      await expect.poll(() => page.locator('#notice').textContent()).toContain('Refused: mutation refused: no token');
      expect((await tracker.get({ id: 'broken' }))!.status).toBe('failed');
      // the same request from the page's own script, without the header: 401
      const status = await page.evaluate(async (n) => {
        const res = await fetch(`api/trackers/${n}/retry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: { id: 'broken' } }) });
        return res.status;
      }, name);
      expect(status).toBe(401);
      expect((await tracker.get({ id: 'broken' }))!.status).toBe('failed');
      await page.close();
    });
  }

  it.skipIf(!CHROMIUM)('a link with a malformed escape opens a page instead of a blank one', async () => {
    const page = await context.newPage();
    // an unknown tracker name shows the first tracker (the escape threw, and the page stayed blank)
    await page.goto(`${served.url}#/t/%E0%A4%A`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('files');
    await page.goto(`${served.url}#/t/rows`);
    await expect.poll(() => page.locator('h1').textContent()).toBe('rows');
    await page.close();
    // a malformed token in the printed link is kept as written; the page still opens
    const fresh = await context.newPage();
    await fresh.goto(`${served.url}#token=%ZZ`);
    await expect.poll(() => fresh.locator('h1').textContent()).toBe('files');
    await fresh.close();
  });

  it.skipIf(!CHROMIUM)('an item whose stored data no longer fits is listed with why, and the counts still draw', async () => {
    const { store, tracker: odd, spoil } = trackerWithData();
    for (const id of ['ok1', 'bad1']) {
      await odd.track({ id }, { n: 1 });
      await odd.fail((await odd.claim('run', { owner: 'seed', key: { id } }))!, new NonRetryableError('parked'));
    }
    // edited by hand into a shape the schema refuses
    await spoil('bad1', 'failed', { n: 'one' });
    const own = await serveDashboard({ trackers: { odd }, port: 0, token: TOKEN });
    try {
      const page = await context.newPage();
      await page.goto(own.openUrl);
      await waitCounts(page, { failed: '2', queued: '0' });
      const bad = row(page, 'bad1');
      await bad.waitFor();
      expect(await bad.locator('.pill').textContent()).toBe('unreadable');
      expect(await bad.locator('td.error').textContent()).toMatch(/^no longer fits the schema: n: .*number/);
      await row(page, 'ok1').waitFor();
      expect(await page.locator('#live').textContent()).not.toMatch(/not updating/);
      // a parked unreadable item can be retried from its row: applied, with the warning
      await bad.locator('button[data-action="retry"]').click();
      await expect.poll(() => page.locator('#notice').textContent()).toMatch(/Retried bad1, but: .*The `retry` was applied: the item is now `queued`/);
      expect((await store.find({ key: { id: 'bad1' } }, { limit: 1 }))[0]!.status).toBe('queued');
      await page.close();
    } finally {
      await own.close();
    }
  });

  it.skipIf(!CHROMIUM)('ran without a console error or a Content-Security-Policy violation', () => {
    expect(problems).toEqual([]);
  });
});
