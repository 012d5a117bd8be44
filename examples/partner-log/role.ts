/**
 * Entry point of a child process started by main.ts: `role.ts poller|worker <store> <apiUrl> <dataDir> <concurrency> <partners>`.
 * It reports counters to the parent over IPC, and stops gracefully on SIGTERM.
 */
import { runPoller, startWorkers, type Report } from './flows';
import { listenForFreeze } from './pause';
import { open } from './tracker';

// an orchestrator that died (or was killed) takes its children with it
process.on('disconnect', () => process.exit(0));

async function main() {
  const [role, spec, apiUrl, dataDir, concurrency, partners] = process.argv.slice(2);
  const opened = await open(spec!);
  await opened.tracker.init();
  await opened.results.init();
  const report = (r: Report) => process.send?.(r);
  const stop = new AbortController();
  let stopping: Promise<unknown> = Promise.resolve();
  if (role === 'poller') {
    const polling = runPoller(opened.tracker, { apiUrl: apiUrl!, partners: partners!.split(','), signal: stop.signal, report });
    process.once('SIGTERM', () => stop.abort());
    await polling;
  } else {
    // the orchestrator may ask this process to freeze once (see pause.ts)
    listenForFreeze();
    const workers = startWorkers(opened.tracker, opened.results, { apiUrl: apiUrl!, dataDir: dataDir!, concurrency: Number(concurrency), owner: `worker-${process.pid}`, report });
    // chaos only kills workers that got going: on a busy machine starting one can take seconds
    report({ type: 'ready' });
    await new Promise<void>((resolve) =>
      process.once('SIGTERM', () => {
        stopping = Promise.all(workers.map((w) => w.stop({ timeoutMs: 2_000 })));
        resolve();
      }),
    );
    await stopping;
  }
  await opened.close();
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(`[partner-log] ${process.argv[2]} ${process.pid} crashed:`, error);
  process.exit(1);
});
