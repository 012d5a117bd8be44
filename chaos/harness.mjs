// The crash-chaos harness: K items, P worker processes killed with SIGKILL (and frozen with
// SIGSTOP past their lease) at random, restarted, a reaper, until every item is done. Then it
// checks that nothing was lost and nothing was completed twice, and that the history of every
// tracker call of the run (workers', the reaper's, the final reads) is linearizable.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fileHistory, readHistory, recordTracker } from '../test/support/history-recorder.mjs';
import { itemModel } from '../test/support/item-model.mjs';
import { jobDefinition } from '../test/support/job-definition.mjs';
import { checkLinearizable } from '../test/support/linearizability.mjs';
import { chaosTracker, MAX_ATTEMPTS, openChaosStore, TTL_MS } from './definition.mjs';

const workerScript = fileURLToPath(new URL('./worker.mjs', import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * @param {{ kind: 'sqlite' | 'postgres' | 'mongodb' | 'redis', target?: string, items: number, workers: number,
 *           killEveryMs?: [number, number], freezeEveryMs?: number, skewsMs?: number[], exclusive?: boolean, ttlMs?: number,
 *           timeoutMs: number, log?: (line: string) => void }} options
 */
export async function chaosRun(options) {
  const { kind, items, workers, log = () => {} } = options;
  const table = `chaos_${process.pid}_${Date.now() % 1e6}`;
  const target = kind === 'sqlite' ? join(mkdtempSync(join(tmpdir(), 'leasehold-chaos-')), 'chaos.sqlite') : options.target;
  const side = await openChaosStore(kind, target, table);
  const tracker = chaosTracker(side.store, options.ttlMs);
  await tracker.init();
  // every process appends its calls to a file of its own here
  const historyDir = mkdtempSync(join(tmpdir(), 'leasehold-chaos-history-'));
  const harnessHistory = fileHistory(join(historyDir, 'harness.jsonl'));
  const recording = recordTracker(tracker, harnessHistory, 'harness');
  for (let n = 0; n < items; n += 50) {
    await Promise.all(Array.from({ length: Math.min(50, items - n) }, (_, i) => tracker.track({ n: n + i })));
  }

  const counts = { crashes: 0, freezes: 0, reaped: 0, leaseLost: 0, overlaps: 0, storeErrors: 0, otherErrors: [] };
  const children = new Map();
  let stopping = false;
  const spawn = (slot) => {
    const env = { ...process.env, CHAOS_HISTORY_DIR: historyDir, CLOCK_SKEW_MS: String(options.skewsMs?.[slot] ?? 0), CHAOS_EXCLUSIVE: options.exclusive ? '1' : '0', CHAOS_TTL_MS: String(options.ttlMs ?? TTL_MS) };
    const child = fork(workerScript, [kind, target, table], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env });
    child.on('message', (m) => {
      if (m.type === 'leaseLost') counts.leaseLost++;
      // workers reap by default: expired leases of killed workers are handed back by them too
      else if (m.type === 'reaped') counts.reaped++;
      else if (m.type === 'overlap') counts.overlaps++;
      else if (m.type === 'problem') counts.otherErrors.push(`history recorder in a worker: ${m.message}`);
      else if (m.name === 'StoreError' || m.name === 'LeaseLostError') counts.storeErrors++;
      else counts.otherErrors.push(`${m.name}: ${m.message}`);
    });
    child.on('exit', (code, signal) => {
      if (stopping || signal === 'SIGKILL') return;
      counts.otherErrors.push(`worker exited unexpectedly (code ${code}, signal ${signal})`);
      spawn(slot);
    });
    children.set(slot, child);
  };
  for (let slot = 0; slot < workers; slot++) spawn(slot);

  const random = (a, b) => a + Math.random() * (b - a);
  let chaos = true;
  const frozen = new Set();
  const killer = (async () => {
    while (chaos) {
      if (!options.killEveryMs) break;
      await sleep(random(...options.killEveryMs));
      if (!chaos) break;
      const slot = Math.floor(Math.random() * workers);
      const victim = children.get(slot);
      if (frozen.has(slot) || victim?.exitCode !== null || victim.signalCode !== null) continue;
      victim.kill('SIGKILL');
      counts.crashes++;
      victim.once('exit', () => !stopping && spawn(slot));
    }
  })();
  // a frozen worker wakes up after its leases were reaped and handed on: its late completes must be refused
  const freezer = (async () => {
    for (let first = true; chaos && options.freezeEveryMs; first = false) {
      await sleep(first ? 800 : options.freezeEveryMs);
      if (!chaos) break;
      const slot = Math.floor(Math.random() * workers);
      const victim = children.get(slot);
      if (victim?.exitCode !== null || victim.signalCode !== null) continue;
      victim.kill('SIGSTOP');
      frozen.add(slot);
      counts.freezes++;
      // long enough for its leases to expire, be reaped and be claimed by others
      await sleep((options.ttlMs ?? TTL_MS) * 1.8);
      victim.kill('SIGCONT');
      frozen.delete(slot);
    }
  })();
  let reaping = Promise.resolve();
  const reaper = setInterval(() => {
    reaping = tracker.reapStale().then((r) => void (counts.reaped += r.retried + r.failed), () => {});
  }, 250);

  const started = Date.now();
  let stats;
  for (;;) {
    stats = await tracker.stats();
    if (stats.byStatus.done + stats.byStatus.failed === items) break;
    if (Date.now() - started > options.timeoutMs) {
      log(`[chaos] ${kind}: timed out with ${stats.byStatus.done}/${items} done`);
      break;
    }
    await sleep(200);
  }
  chaos = false;
  stopping = true;
  clearInterval(reaper);
  await reaping;
  await Promise.all([killer, freezer]);
  await Promise.all(
    [...children.values()].map(
      (child) =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', resolve);
          child.kill('SIGCONT');
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 3_000).unref();
        }),
    ),
  );

  // the checks
  const all = await tracker.find({ limit: items + 10 });
  // the final state of every item, read through the recorded tracker, closes the history
  for (let n = 0; n < items; n += 50) {
    await Promise.all(Array.from({ length: Math.min(50, items - n) }, (_, i) => tracker.get({ n: n + i })));
  }
  harnessHistory.close();
  const history = readHistory(historyDir);
  const check = checkLinearizable(itemModel(jobDefinition(side.store, { maxAttempts: MAX_ATTEMPTS })), history, { toleranceMs: 2 });
  if (!check.ok) log(`[chaos] ${kind}: the history is NOT linearizable (kept in ${historyDir}):\n${check.report.slice(0, 20_000)}`);
  else rmSync(historyDir, { recursive: true, force: true });
  if (recording.problems.length) counts.otherErrors.push(...recording.problems);
  const completions = await side.completions();
  const finished = await side.finishedRows();
  const byKey = new Map();
  for (const c of completions) byKey.set(Number(c.n), [...(byKey.get(Number(c.n)) ?? []), Number(c.fence)]);
  const statusOf = new Map(all.map((i) => [i.key.n, i.status]));
  const lost = Array.from({ length: items }, (_, n) => n).filter((n) => statusOf.get(n) !== 'done').length;
  const duplicates = [...byKey.values()].filter((fences) => fences.length > 1).length;
  // a worker killed between the store accepting `complete` and its own note of it leaves no
  // note: that is the harness's blind spot, not a violation, so only notes that exist are checked
  const wrongFence = all.filter((i) => i.status === 'done' && byKey.has(i.key.n) && byKey.get(i.key.n)[0] !== i.fence).length;
  const unrecorded = all.filter((i) => i.status === 'done' && !byKey.has(i.key.n)).length;
  const overAttempts = all.filter((i) => i.attempts > MAX_ATTEMPTS).length;
  const result = {
    store: kind,
    items,
    lost,
    duplicates,
    wrongFence,
    overAttempts,
    unrecorded,
    crashes: counts.crashes,
    freezes: counts.freezes,
    reaped: counts.reaped,
    leaseLost: counts.leaseLost,
    overlaps: counts.overlaps,
    // handlers that finished work whose completion the store then refused (or never saw)
    unacceptedFinishes: finished.length - completions.length,
    storeErrors: counts.storeErrors,
    otherErrors: counts.otherErrors,
    linearizable: check.ok,
    history: { operations: check.operations, pending: check.pending, keys: check.partitions, checkMs: Math.round(check.ms) },
    seconds: (Date.now() - started) / 1000,
  };
  result.ok =
    lost === 0 && duplicates === 0 && wrongFence === 0 && overAttempts === 0 && counts.overlaps === 0 && counts.otherErrors.length === 0 && check.ok;
  await side.close();
  if (kind === 'sqlite') rmSync(dirname(target), { recursive: true, force: true });
  return result;
}

/** The machine-readable last line of `npm run chaos`. */
export function chaosLine(results) {
  const sum = (k) => results.reduce((a, r) => a + r[k], 0);
  return `chaos: items=${results[0]?.items ?? 0} lost=${sum('lost')} duplicates=${sum('duplicates')} crashes=${sum('crashes')} reaped=${sum('reaped')} leaseLost=${sum('leaseLost')} stores=${results.map((r) => r.store).join(',')} linearizable=${results.every((r) => r.linearizable) ? 'yes' : 'no'}`;
}
