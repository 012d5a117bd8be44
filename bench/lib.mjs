// Shared helpers of the benchmark: timing, statistics, counting round trips.
import { spawn } from 'node:child_process';
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

/**
 * Runs one drain (`drain()` resolves with the items done) and measures it: items/s, and the CPU
 * per item (µs) of this process (`client`) and of the PostgreSQL server in `dataDir` (`server`).
 */
export async function measureDrain(dataDir, drain) {
  const cpu = process.cpuUsage();
  const serverBefore = serverCpuMs(dataDir);
  const started = performance.now();
  const done = await drain();
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { done, rate: (done / ms) * 1000, client: (used.user + used.system) / done, server: ((serverCpuMs(dataDir) - serverBefore) * 1000) / done };
}

/** One line of a {@link measureDrain} result. */
export const drainLine = (name, { rate, client, server }) =>
  `${name.padEnd(10)} ${String(Math.round(rate)).padStart(6)} items/s, CPU per item: client ${client.toFixed(1).padStart(5)} µs, server ${server.toFixed(1).padStart(5)} µs`;

/**
 * Runs `[name, setup, drain]` workloads `rounds` times, interleaved (A B C A B C ...), measuring
 * each drain (see {@link measureDrain}) and printing a line per drain; then prints the medians of
 * the rounds after the first (the first warms up), each as a share of the first workload's rate.
 */
export async function interleavedRounds(dataDir, workloads, rounds) {
  const seen = new Map(workloads.map(([name]) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, setup, drain] of workloads) {
      await setup();
      const sample = await measureDrain(dataDir, drain);
      if (round > 0 || rounds === 1) seen.get(name).push(sample);
      console.log(drainLine(name, sample));
    }
  }
  const baseline = median(seen.get(workloads[0][0]).map((s) => s.rate));
  console.log('\nmedians (rounds after the first):');
  for (const [name, samples] of seen) {
    const rate = median(samples.map((s) => s.rate));
    console.log(
      `${name.padEnd(10)} ${String(Math.round(rate)).padStart(6)} items/s (${(rate / baseline).toFixed(2)} of the ${workloads[0][0]}), client ${median(samples.map((s) => s.client)).toFixed(1)} µs, server ${median(samples.map((s) => s.server)).toFixed(1)} µs per item`,
    );
  }
}

/**
 * Starts a pickup consumer process (`node <script> ...args`), which prints `ready` once idle and
 * `<n> <ms>` when the handler of item n starts; resolves once it is ready, with the start times
 * seen so far (a live Map) and `stop()`.
 */
export async function startConsumer(script, args, label) {
  const proc = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const started = new Map();
  let buffer = '';
  let ready;
  const isReady = new Promise((resolve, reject) => {
    ready = resolve;
    proc.once('exit', (code) => reject(new Error(`${label} exited with ${code} before it was ready`)));
  });
  proc.stdout.on('data', (chunk) => {
    const lines = (buffer + chunk).split('\n');
    buffer = lines.pop();
    for (const line of lines) {
      if (line === 'ready') ready();
      const [n, t] = line.split(' ');
      if (t !== undefined) started.set(Number(n), Number(t));
    }
  });
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  await isReady;
  return { started, stop: () => (proc.kill('SIGTERM'), exited) };
}
