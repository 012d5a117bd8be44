import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, inject, it } from 'vitest';

const run = promisify(execFile);

it('npm run bench, smoke size: every workload runs and the same-run ratios are written', async () => {
  const out = mkdtempSync(join(tmpdir(), 'leasehold-bench-'));
  const root = resolve(import.meta.dirname, '..');
  // the measured part of the performance page is rewritten from the run (here, a copy of it)
  const doc = join(out, 'performance.md');
  copyFileSync(join(root, 'docs/performance.md'), doc);
  await run(process.execPath, [join(root, 'bench/run.mjs'), '--smoke', '--out', join(out, 'latest.json'), '--chart', join(out, 'chart.svg'), '--doc', doc], {
    cwd: root,
    env: { ...process.env, TEST_POSTGRES_URL: inject('postgresUrl') },
    timeout: 170_000,
  });
  const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as {
    results: Array<{ name: string; median: number; statementsPerItem: number; library: string; mode: string; store?: string }>;
    ratios: Record<string, number>;
    pickup: { variants: Record<string, { items: number; p50: number; p99: number }> };
  };
  const libraries = new Set(report.results.map((r) => r.library));
  expect([...libraries].sort()).toEqual(['floor', 'graphile-worker', 'leasehold', 'pg-boss']);
  for (const r of report.results) expect(r.median, r.name).toBeGreaterThan(0);
  for (const key of [
    'leasehold_vs_floor_w8',
    'leasehold_vs_floor_w32',
    'leasehold_vs_pgboss_w8',
    'leasehold_batch_vs_graphile_w8',
    'leasehold_batch_vs_floor_batch_w8',
    'graphile_pickup_p50_over_leasehold',
    'graphile_pickup_p99_over_leasehold',
    // the same comparisons on a second server with PostgreSQL's default durability
    'leasehold_vs_floor_w8_durable',
    'leasehold_vs_floor_w32_durable',
    'leasehold_batch_vs_floor_batch_w8_durable',
  ]) {
    expect(Number.isFinite(report.ratios[key]), key).toBe(true);
  }
  // pickup latency: every item of every variant was started by its consumer process (a miss counts as 30 s)
  expect(Object.keys(report.pickup.variants).sort()).toEqual(['graphile-worker', 'leasehold', 'leasehold, polling only']);
  for (const [name, v] of Object.entries(report.pickup.variants)) {
    expect(v.items, name).toBe(8);
    expect(v.p99, name).toBeLessThan(30_000);
  }
  // one round trip per single-item operation: claim + complete = 2 per item (plus the final empty claim of each worker)
  const perItem = report.results.find((r) => r.library === 'leasehold' && !r.store && r.mode === 'per-item')!;
  expect(perItem.statementsPerItem).toBeGreaterThanOrEqual(2);
  expect(perItem.statementsPerItem).toBeLessThan(2.1);
  expect(readFileSync(join(out, 'chart.svg'), 'utf8')).toMatch(/^<svg/);
  // the page now shows this run: every ratio with its value, every workload's median
  const page = readFileSync(doc, 'utf8');
  for (const key of Object.keys(report.ratios)) expect(page, key).toContain(`| \`${key}\``);
  expect(page).toContain(`| ${report.ratios.leasehold_vs_floor_w8!.toFixed(2)} |`);
  for (const r of report.results) expect(page, r.name).toContain(`| ${r.name} | ${Math.round(r.median).toLocaleString('en-US')} |`);
  // the text around the results is kept
  expect(page).toContain('## What limits it, and what was done');
}, 180_000);
