// Shared helpers of the benchmark: timing, statistics, counting round trips.
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : Number.NaN;
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
  return { query: (text, values) => (counter.calls++, pool.query(text, values)) };
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
