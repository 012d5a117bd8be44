// One process of the multi-process linearizability tests:
// `node linearizability-child.mjs <store> <target> <table> <historyFile> <name> <seed> <clients> <operations> <ttlMs> <startAt>`.
// Runs `clients` random clients (test/support/linearizability-client.mjs), each with a tracker of
// its own on one shared connection pool, recording every call into one JSON-lines file. Uses the
// built package (dist/), as a user would.
import { exponentialBackoff, Tracker } from '../../dist/index.js';
import { fileHistory, recordTracker } from './history-recorder.mjs';
import { pipelineDefinition, runClient } from './linearizability-client.mjs';
import { openStore } from './open-store.mjs';

const [kind, target, table, historyFile, name, seed, clients, operations, ttlMs, startAt] = process.argv.slice(2);
const { store, close } = await openStore(kind, target, table);

const sink = fileHistory(historyFile);
const ttl = Number(ttlMs);
const definition = pipelineDefinition(store, { ttlMs: ttl, backoff: exponentialBackoff({ baseMs: 5, maxMs: 40, jitter: true }) });
const trackers = Array.from({ length: Number(clients) }, () => new Tracker(definition));
// every other client listens to `claimed`: its claims also read each item's deadline from before
// the claim (`priorDeadline`, another statement on some stores), and the history holds both kinds
trackers.forEach((tracker, i) => i % 2 === 1 && tracker.on('claimed', () => {}));
await trackers[0].init();
const recordings = trackers.map((tracker, i) => recordTracker(tracker, sink, `${name}.${i}`));
// line up with the other processes so that their calls really overlap
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())));
const results = await Promise.all(
  trackers.map((tracker, i) =>
    runClient(tracker, { owner: `${name}.${i}`, seed: Number(seed) * 100 + i, keys: 8, driftEvery: 25, operations: Number(operations), ttlMs: ttl, stale: i === 0 }),
  ),
);
sink.close();
await close();
process.stdout.write(`${JSON.stringify({ results, problems: recordings.flatMap((r) => r.problems) })}\n`);
