/**
 * The partner-log ingestion system, end to end: a partner API, a poller process, worker
 * processes for download and process (which also reap the leases of killed workers, as every
 * worker does by default), live progress, and a summary that proves no
 * log was processed twice.
 *
 *   npx ts-node examples/partner-log/main.ts [--store memory|sqlite:PATH|postgres://…|mongodb://…]
 *                                             [--workers N] [--logs N] [--partners N] [--chaos] [--timeout S (without progress)]
 *                                             [--dashboard (serve the leasehold dashboard while it runs)]
 *                                             [--no-pause (do not freeze a worker mid-run; see pause.ts)]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { serveDashboard } from 'leasehold/dashboard';
import { runPoller, startWorkers, type Report } from './flows';
import { Pause } from './pause';
import { startPartnerApi } from './partner-api';
import { open } from './tracker';

/** Signals that end the orchestrator (see the pause's wake-up in `main`). */
const ENDING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** The demo's own SQLite file, the only one it deletes (with its -wal and -shm) before a run. */
const DEMO_SQLITE = './.data/partner-log.sqlite';

const { values: args } = parseArgs({
  options: {
    store: { type: 'string', default: `sqlite:${DEMO_SQLITE}` },
    workers: { type: 'string', default: '3' },
    logs: { type: 'string', default: '200' },
    partners: { type: 'string', default: '3' },
    chaos: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '300' },
    dashboard: { type: 'boolean', default: false },
    pause: { type: 'boolean', default: true },
  },
  allowNegative: true,
});

const workers = Number(args.workers);
const totalLogs = Number(args.logs);
const partners = Array.from({ length: Number(args.partners) }, (_, i) => ['acme', 'globex', 'initech', 'umbrella', 'hooli'][i % 5] + (i >= 5 ? `${i}` : ''));
for (const [name, n] of [['--workers', workers], ['--logs', totalLogs], ['--partners', partners.length]] as const) {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
}

const counters = { tracked: 0, seenAgain: 0, retried: 0, leaseLost: 0, apiError: 0, records: 0, refused: 0, reaped: 0, crashes: 0, ready: 0 };
const waits: number[] = [];
const count = (r: Report) => {
  if (r.type === 'records' || r.type === 'refused') counters[r.type] += r.n;
  else if (r.type === 'claimed') waits.push(r.waitedMs);
  else if (r.type !== 'frozen') counters[r.type]++;
};
/** The `q` quantile of `values` (0 when empty). */
const quantile = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(q * values.length))] ?? 0;
/** Worker processes that have started their workers (chaos kills only these). */
const ready = new Set<number>();

async function main() {
  const started = Date.now();
  const dataDir = resolve('.data');
  const filesDir = join(dataDir, 'files');
  if (args.store.startsWith('sqlite:')) {
    const file = resolve(args.store.slice('sqlite:'.length));
    if (file === resolve(DEMO_SQLITE)) {
      // the demo owns its default file: every run starts from an empty one
      for (const suffix of ['', '-wal', '-shm']) rmSync(file + suffix, { force: true });
    } else if (['', '-wal'].some((suffix) => existsSync(file + suffix) && statSync(file + suffix).size > 0)) {
      // any other file may be someone's database: never delete it, never write into it
      throw new Error(`${file} already exists and is not empty; this demo deletes only its default file (${DEMO_SQLITE}). Pass --store sqlite:PATH with a new file, or delete ${file} yourself.`);
    }
    args.store = `sqlite:${file}`;
  }
  rmSync(filesDir, { recursive: true, force: true });
  mkdirSync(filesDir, { recursive: true });
  const opened = await open(args.store);
  const { tracker } = opened;
  await tracker.init();
  await opened.results.init();
  if ((await tracker.stats()).total > 0) {
    throw new Error(`${args.store} already holds partner-log items; point --store at an empty database (this demo does not delete your data)`);
  }

  const dashboard = args.dashboard ? await serveDashboard({ trackers: { 'partner-logs': tracker } }) : undefined;
  if (dashboard) console.log(`dashboard: ${dashboard.openUrl}`);

  const chaos = args.chaos;
  const api = await startPartnerApi({
    partners,
    totalLogs,
    initialShare: 0.3,
    growForMs: Math.min(4_000, totalLogs * 20),
    pageSize: 25,
    slowMs: chaos ? 20 : 2,
    failRate: chaos ? 0.08 : 0.02,
    cutRate: chaos ? 0.05 : 0.01,
    brokenRate: 0.02,
  });
  console.log(`partner API on ${api.url}; store ${opened.kind}; ${workers} worker process(es); ${totalLogs} logs${chaos ? '; CHAOS: workers are killed with SIGKILL and restarted' : ''}`);


  const children = new Map<number, ChildProcess>();
  const readyChildren = () => [...ready].flatMap((slot) => children.get(slot) ?? []);
  // another worker process must be there to take the frozen one's log over
  const pause = args.pause && opened.kind !== 'memory' && workers >= 2 && process.platform !== 'win32' ? new Pause(tracker, (line) => console.log(`${process.stdout.isTTY ? '\n' : ''}${line}`)) : undefined;
  // a frozen worker cannot notice that this process is gone: wake it however this one ends (a
  // signal's default action would skip the 'exit' event, so the run handles them itself)
  const ended = (signal: NodeJS.Signals) => process.exit(128 + osConstants.signals[signal]);
  if (pause) {
    process.on('exit', () => pause.wake());
    for (const signal of ENDING_SIGNALS) process.on(signal, ended);
  }
  const stopInProcess: Array<() => Promise<unknown>> = [];
  const spawn = (role: 'poller' | 'worker', slot: number) => {
    const child = fork(join(__dirname, 'role.ts'), [role, args.store, api.url, filesDir, '2', partners.join(',')], {
      execArgv: ['-r', require.resolve('ts-node/register')],
      env: { ...process.env, TS_NODE_PROJECT: join(__dirname, 'tsconfig.json'), TS_NODE_TRANSPILE_ONLY: 'true' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (m: Report) => {
      if (m.type === 'ready') {
        ready.add(slot);
        // once per run one worker process is asked to freeze itself mid-log (pause.ts)
        pause?.ask(readyChildren());
      }
      if (m.type === 'frozen') pause?.frozen(child, m);
      pause?.reported(child, m);
      count(m);
    });
    child.on('exit', (code, signal) => {
      ready.delete(slot);
      if (!stopping) pause?.ask(readyChildren());
      // chaos kills (SIGKILL) and our own stop (SIGTERM, exit 0) are expected; anything else is a bug
      if (signal === 'SIGKILL' || code === 0 || stopping) return;
      if (++unexpectedExits > 5) {
        failure = `${role} processes keep exiting (last code ${code}); see their errors above`;
      } else {
        spawn(role, slot);
      }
    });
    children.set(slot, child);
    return child;
  };
  let stopping = false;
  let unexpectedExits = 0;
  let failure: string | undefined;
  if (opened.kind === 'memory') {
    if (chaos) throw new Error('--chaos kills processes; the memory store lives in one process. Use sqlite:, postgres:// or mongodb://');
    // one process holds the memory store: the poller and the workers run here
    const stop = new AbortController();
    const polling = runPoller(tracker, { apiUrl: api.url, partners, signal: stop.signal, report: count });
    const local = startWorkers(tracker, opened.results, { apiUrl: api.url, dataDir: filesDir, concurrency: 2 * workers, owner: 'local', report: count });
    stopInProcess.push(async () => (stop.abort(), await polling), ...local.map((w) => () => w.stop({ timeoutMs: 2_000 })));
  } else {
    spawn('poller', 0);
    for (let slot = 1; slot <= workers; slot++) spawn('worker', slot);
  }

  let chaosTimer: NodeJS.Timeout | undefined;
  const scheduleChaos = () => {
    chaosTimer = setTimeout(() => {
      // only a worker that reported ready, and never the last one standing: the demo must
      // make progress however slowly processes start on this machine
      const candidates = [...ready].filter((slot) => children.get(slot)?.exitCode === null && (!pause || pause.spares(children.get(slot))));
      if (candidates.length >= 2) {
        const slot = candidates[Math.floor(Math.random() * candidates.length)]!;
        const victim = children.get(slot)!;
        ready.delete(slot);
        victim.kill('SIGKILL');
        counters.crashes++;
        victim.once('exit', () => spawn('worker', slot));
      }
      scheduleChaos();
    }, 300 + Math.random() * 600);
  };
  if (chaos) scheduleChaos();

  // the timeout counts time without progress, not time since the start
  const stallMs = Number(args.timeout) * 1_000;
  let lastProgress = Date.now();
  let lastDone = -1;
  const tty = process.stdout.isTTY;
  let lastPrint = 0;
  let stats = await tracker.stats();
  for (;;) {
    stats = await tracker.stats();
    const s = stats.byStatus;
    const done = s.processed + s.failed;
    const moved = s.downloaded + s.processing + 2 * s.processed + s.failed;
    if (moved !== lastDone) {
      lastDone = moved;
      lastProgress = Date.now();
    }
    const line = `download ${bar(s.downloaded + s.processing + s.processed, totalLogs)}  process ${bar(s.processed, totalLogs)}  failed ${s.failed}  in flight ${s.downloading + s.processing}  retried ${counters.retried}  reaped ${counters.reaped}  crashes ${counters.crashes}`;
    if (tty) process.stdout.write(`\r${line}`);
    else if (Date.now() - lastPrint > 2_000) (console.log(line), (lastPrint = Date.now()));
    if (api.fullyListed() && stats.total === totalLogs && done === totalLogs && !pause?.pending) break;
    if (failure) throw new Error(failure);
    if (Date.now() - lastProgress > stallMs) {
      console.error(`\npartner-log: no progress for ${args.timeout} s, with ${done}/${totalLogs} logs finished; giving up`);
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  if (tty) process.stdout.write('\n');

  stopping = true;
  clearTimeout(chaosTimer);
  pause?.wake();
  await Promise.all([...children.values()].map(stopChild));
  await Promise.all(stopInProcess.map((stop) => stop()));
  const summary = await opened.results.summary();
  await api.stop();

  const s = stats.byStatus;
  const failedLogs = (await tracker.find({ status: 'failed', limit: totalLogs })).map((i) => i.key.logId);
  const unexpectedFailures = failedLogs.filter((id) => !api.broken.has(id));
  const processedLogs = await tracker.find({ status: 'processed', limit: totalLogs });
  const missingRecords = processedLogs.filter((i) => summary.perLog.get(i.key.logId) !== api.records.get(i.key.logId)).length;
  const doubleCompletions = [...summary.completions.values()].filter((n) => n > 1).length;
  const duplicates = doubleCompletions + summary.staleRecords;

  table([
    ['logs seen', `${stats.total} (listed again ${counters.seenAgain} times)`],
    ['downloaded', s.downloaded + s.processing + s.processed],
    ['processed', s.processed],
    ['waited to be claimed', `p50 ${quantile(waits, 0.5)} ms, p99 ${quantile(waits, 0.99)} ms`],
    ['retried', counters.retried],
    ['reaped', counters.reaped],
    ['failed', `${s.failed} (${failedLogs.length - unexpectedFailures.length} broken by the partner)`],
    ['records written', `${summary.records}${missingRecords ? ` (${missingRecords} logs incomplete!)` : ''}`],
    ['duplicates', duplicates],
    ['stale writes refused', counters.refused],
    ['leases lost', counters.leaseLost],
    ['worker crashes', counters.crashes],
    ...(pause ? [['worker frozen', pause.summary] as [string, string]] : []),
    ['wall time', `${((Date.now() - started) / 1000).toFixed(1)} s`],
  ]);
  // the run is over and every worker stopped: Ctrl-C now closes the dashboard below
  for (const signal of ENDING_SIGNALS) process.off(signal, ended);
  if (dashboard) {
    console.log(`dashboard still open at ${dashboard.openUrl}; press Ctrl-C to stop`);
    await new Promise((resolve) => process.once('SIGINT', resolve));
    await dashboard.close();
  }
  await opened.close();

  const ok = s.processed + s.failed === totalLogs && unexpectedFailures.length === 0 && duplicates === 0 && missingRecords === 0;
  if (unexpectedFailures.length) console.error(`logs failed that the partner did not break: ${unexpectedFailures.join(', ')}`);
  console.log(`partner-log: processed=${s.processed} failed=${s.failed} duplicates=${duplicates} logs=${totalLogs}`);
  process.exit(ok ? 0 : 1);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => (clearTimeout(force), resolve()));
    child.kill('SIGTERM');
  });
}

function bar(done: number, total: number): string {
  const width = 20;
  const full = Math.round((done / total) * width);
  return `▕${'█'.repeat(full)}${'░'.repeat(width - full)}▏ ${String(done).padStart(String(total).length)}/${total}`;
}

function table(rows: Array<[string, string | number]>): void {
  const left = Math.max(...rows.map(([k]) => k.length));
  const right = Math.max(...rows.map(([, v]) => String(v).length));
  const rule = (a: string, b: string, c: string) => `${a}${'─'.repeat(left + 2)}${b}${'─'.repeat(right + 2)}${c}`;
  console.log(rule('┌', '┬', '┐'));
  for (const [k, v] of rows) console.log(`│ ${k.padEnd(left)} │ ${String(v).padStart(right)} │`);
  console.log(rule('└', '┴', '┘'));
}

main().catch((error: unknown) => {
  console.error('partner-log:', error instanceof Error ? error.message : error);
  console.log('partner-log: processed=0 failed=0 duplicates=0 logs=0');
  process.exit(1);
});
