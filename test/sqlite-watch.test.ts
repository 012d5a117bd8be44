import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openWatchConnection } from '../src/stores/sql/sqlite-dialect.js';
import { watchFile, type OpenWatchConnection } from '../src/stores/sql/sqlite-watcher.js';
import { until } from './support/processes.js';

/**
 * The SQLite watcher (`PRAGMA data_version` on a connection of its own, one per file per
 * process), on real files: how many connections it opens, and how often it reads and wakes.
 */
const dir = mkdtempSync(join(tmpdir(), 'leasehold-sqlite-watch-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A fresh database file, a connection that commits to it, and a watch connection opener that counts. */
function file() {
  const filename = join(dir, `watch-${++n}.sqlite`);
  const db = new Database(filename);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (x INTEGER)');
  const counts = { opens: 0, open: 0, reads: 0 };
  const open: OpenWatchConnection = async (path) => {
    counts.opens++;
    const connection = await openWatchConnection(path);
    counts.open++;
    return {
      dataVersion: () => (counts.reads++, connection.dataVersion()),
      close: () => (counts.open--, connection.close()),
    };
  };
  return { filename, commit: () => db.prepare('INSERT INTO t VALUES (1)').run(), close: () => db.close(), counts, open };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the SQLite watcher', () => {
  it('opens one connection per file for workers started and stopped in one turn of the event loop (each opened one, and kept a file descriptor)', async () => {
    const f = file();
    try {
      for (let i = 0; i < 200; i++) watchFile(f.filename, 15, f.open, () => {})();
      const woken: number[] = [];
      const stop = watchFile(f.filename, 15, f.open, () => woken.push(1));
      // the connection's first read wakes every listener once
      await until('the listener is woken', () => woken.length > 0);
      expect(f.counts.opens).toBe(1);
      expect(f.counts.open).toBe(1);
      stop();
      expect(f.counts.open).toBe(0);
      // and one again for the next listener, once the last one left
      const again = watchFile(f.filename, 15, f.open, () => {});
      await until('the next connection opens', () => f.counts.open === 1);
      again();
      expect(f.counts.opens).toBe(2);
    } finally {
      f.close();
    }
  });

  it('wakes each listener at most once per its own interval (an idle table beside a busy one), and owes it the change', async () => {
    const f = file();
    try {
      let fast = 0;
      let slow = 0;
      const stopFast = watchFile(f.filename, 10, f.open, () => fast++);
      const stopSlow = watchFile(f.filename, 400, f.open, () => slow++);
      await until('both are woken by the first read', () => fast > 0 && slow > 0);
      const started = performance.now();
      // commits for a while; the fast listener sees many, the slow one at most one per 400 ms
      while (performance.now() - started < 1_000) {
        f.commit();
        await sleep(20);
      }
      const elapsed = performance.now() - started;
      expect(fast).toBeGreaterThan(slow);
      expect(slow).toBeLessThanOrEqual(2 + Math.floor(elapsed / 400));
      // a change in the slow listener's interval is delivered when it ends
      const before = slow;
      f.commit();
      await until('the owed wake-up', () => slow > before, 5_000);
      // the fast listener leaves: the file is read no more often than the slow one asks
      stopFast();
      const reads = f.counts.reads;
      const quiet = performance.now();
      await sleep(600);
      expect(f.counts.reads - reads).toBeLessThanOrEqual(1 + Math.ceil((performance.now() - quiet) / 400));
      stopSlow();
      expect(f.counts.open).toBe(0);
    } finally {
      f.close();
    }
  });
});
