// Shared helpers of the benchmark: timing, statistics, counting round trips.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (!s.length) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  // of an even count, the mean of the middle two (of 2 runs, not simply the slower one)
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : Number.NaN;
}

/** Samples this process's resident set size until stopped; returns the peak in MiB. */
export function rssSampler() {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
  return () => (clearInterval(timer), Math.round(peak / 1048576));
}

/** Transactions committed in the database: with autocommit, one per statement of every client. */
export async function commits(admin) {
  const { rows } = await admin.query('SELECT xact_commit::bigint AS n FROM pg_stat_database WHERE datname = current_database()');
  return Number(rows[0].n);
}

/** Wraps a pg pool so that every `query` (one statement, one round trip) is counted. */
export function countingPool(pool, counter) {
  return { query: (query, values) => (counter.calls++, pool.query(query, values)) };
}

/** Wraps a leasehold store so that every store call (one round trip each) is counted. */
export function countingStore(store, counter) {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || prop === 'init') return typeof value === 'function' ? value.bind(target) : value;
      return (...args) => (counter.calls++, value.apply(target, args));
    },
  });
}

/** Runs `loops` concurrent async loops until each returns false or the deadline passes. */
export async function concurrently(loops, deadline, step) {
  await Promise.all(
    Array.from({ length: loops }, async (_, w) => {
      while (Date.now() < deadline) if (!(await step(w))) return;
    }),
  );
}

/**
 * CPU time (ms) used so far by one PostgreSQL server — the postmaster and its backends, found
 * through `postmaster.pid` in its data directory — read from /proc (Linux). `undefined` where
 * that cannot be read. Backends that exit take their time with them, so read it while the
 * pools under test are open.
 */
export function serverCpuMs(dataDir) {
  try {
    const postmaster = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    let ticks = 0;
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      let stat;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue; // exited meanwhile
      }
      // fields after the command name (which may hold spaces): state ppid ... utime(14) stime(15)
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pid) === postmaster || Number(fields[1]) === postmaster) ticks += Number(fields[11]) + Number(fields[12]);
    }
    return (ticks * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

// USER_HZ: 100 on every Linux that Node supports
const CLOCK_TICKS = 100;
