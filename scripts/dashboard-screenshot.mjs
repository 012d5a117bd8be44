// `npm run screenshot`: draws docs/dashboard.png, the dashboard over the partner-log example's
// tracker definition with seeded items. An hour of ingestion is replayed on a memory store whose
// clock the script moves, with the dashboard sampling it each simulated minute, so the hour chart
// has something to show; then the page is opened in headless Chromium.
//
//   npm run screenshot [-- --out docs/dashboard.png] [--chromium /usr/bin/chromium]
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: join(root, 'docs', 'dashboard.png') },
    chromium: { type: 'string', default: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
  },
});
if (!existsSync(args.chromium)) {
  console.error(`no Chromium at ${args.chromium}: apt-get install -y chromium, or pass --chromium PATH`);
  process.exit(1);
}

// the example is CommonJS TypeScript that imports leasehold by name (scripts/link-self.mjs)
const require = createRequire(import.meta.url);
require('ts-node').register({ project: join(root, 'examples/partner-log/tsconfig.json'), transpileOnly: true });
const { makeTracker } = require('../examples/partner-log/tracker.ts');
const { NonRetryableError } = require('leasehold');
const { MemoryStore } = require('leasehold/memory');
const { createDashboard } = require('leasehold/dashboard');
const { chromium } = require('playwright-core');

const MINUTE = 60_000;
const end = Date.now();
let now = end - 60 * MINUTE;
// the store's clock stays where the replay left it while the picture is taken, so that the
// leases taken in its last second are still live
const tracker = makeTracker(new MemoryStore({ clock: () => now }));
const token = 'screenshot-token-0123456789abcdef';
const dashboard = createDashboard({ trackers: { 'partner-logs': tracker }, token, statsCacheMs: 0, now: () => now });
const server = createServer(dashboard);
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/`;
const sample = () => fetch(`${url}api/trackers/partner-logs/stats`).then((r) => r.json());

// a deterministic pseudo-random sequence, so that the picture is the same on every run
let seed = 7;
const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;
const partners = ['acme', 'globex', 'initech'];
let n = 0;
const track = () => {
  const i = n++;
  return tracker.track(
    { logId: `log-${String(i).padStart(5, '0')}`, partnerCode: partners[i % 3], aircraftId: `N${400 + (i % 37)}LH`, customerId: `cust-${i % 11}` },
    { size: 4096 + Math.floor(random() * 60_000), checksum: `sha256:${Math.floor(random() * 2 ** 48).toString(16)}` },
  );
};
const errors = [
  () => new Error('partner API answered 503 for this log'),
  () => new NonRetryableError('not a PLOG file (bad magic)'),
  () => new NonRetryableError(`expected ${Math.floor(random() * 900)} records, file has ${Math.floor(random() * 90_000)} bytes`),
  () => new Error('download incomplete or corrupt: short read'),
];

await sample();
for (let minute = 0; minute < 60; minute++) {
  // a busy half hour in the middle, and a partner outage around minute 40
  const load = 14 + Math.round(18 * Math.sin((minute / 60) * Math.PI));
  for (let i = 0; i < load; i++) await track();
  for (let step = 0; step < 4; step++) {
    now += MINUTE / 4;
    const outage = minute >= 38 && minute <= 42;
    for (const lease of await tracker.claimBatch('download', { owner: `worker-${1 + (step % 3)}`, limit: Math.ceil(load / 4) + 2 })) {
      if (random() < (outage ? 0.5 : 0.03)) await tracker.fail(lease, errors[outage ? 0 : Math.floor(random() * errors.length)]());
      else await tracker.complete(lease, { data: { localFilePath: `/data/files/${lease.key.logId}.plog` } });
    }
    for (const lease of await tracker.claimBatch('process', { owner: `worker-${1 + ((step + 1) % 3)}`, limit: Math.ceil(load / 4) + 1 })) {
      if (random() < 0.005) await tracker.fail(lease, new NonRetryableError(`${lease.key.logId}: unsupported version or record size`));
      else await tracker.complete(lease, { data: { records: 40 + Math.floor(random() * 400) } });
    }
    await tracker.reapStale();
    await sample();
  }
}

// the last moments: a worker died holding two logs (their leases expired), others hold live ones,
// and a few logs are scheduled for later
now = end - 20_000;
await Promise.all(Array.from({ length: 12 }, track));
await tracker.claimBatch('download', { owner: 'worker-7 (died)', limit: 2 });
now = end - 8_000;
for (const lease of await tracker.claimBatch('download', { owner: 'worker-1', limit: 5 })) await tracker.complete(lease);
now = end - 1_000;
await tracker.claimBatch('download', { owner: 'worker-2', limit: 3 });
await tracker.claimBatch('process', { owner: 'worker-3', limit: 2 });
for (const item of (await tracker.find({ status: 'pending', limit: 20 })).slice(-4)) await tracker.reschedule(item.key, { delayMs: 15 * MINUTE });
now = end;
await sample();

const profile = mkdtempSync(join(tmpdir(), 'leasehold-screenshot-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: args.chromium,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars'],
  viewport: { width: 1280, height: 1560 },
  deviceScaleFactor: 1,
  locale: 'en-US',
  timezoneId: 'UTC',
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${url}#token=${token}`);
  await page.waitForSelector('svg.diagram [data-status="pending"] .count:not(:empty)');
  await page.waitForFunction(() => document.querySelectorAll('table.items tbody tr').length > 1);
  // the top of the page: counts, diagram, stages, the hour and the first failed items
  await page.screenshot({ path: args.out });
  console.log(`wrote ${args.out}`);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
  dashboard.close();
  server.close();
}
