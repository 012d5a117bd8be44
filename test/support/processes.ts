import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { expect } from 'vitest';
import { Tracker, type Store } from '../../src/index.js';
import { jobDefinition } from './job-definition.mjs';

const child = resolve(import.meta.dirname, 'race-child.mjs');

/**
 * Runs `processes` separate Node processes, each with its own connection, claiming the same
 * `items` at the same moment; checks every item was won exactly once overall.
 */
export async function raceAcrossProcesses(options: {
  store: 'sqlite' | 'postgres' | 'mongodb' | 'redis';
  target: string;
  table: string;
  items: number;
  processes: number;
  mode: 'by-key' | 'next';
}): Promise<number[][]> {
  const racers = Array.from({ length: options.processes }, () => {
    const proc = spawn(process.execPath, [child, options.store, options.target, options.table, String(options.items), options.mode], { stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    const ready = new Promise<void>((res) => proc.stdout.on('data', (chunk: Buffer) => ((stdout += chunk.toString()), stdout.includes('ready\n') && res())));
    const done = new Promise<string>((res, rej) => proc.on('exit', (code) => (code === 0 ? res(stdout) : rej(new Error(`race child exited with ${code}`)))));
    return { proc, ready, done };
  });
  await Promise.all(racers.map((r) => r.ready));
  for (const r of racers) r.proc.stdin.end('go\n');
  const outputs = await Promise.all(racers.map((r) => r.done));
  const wins = outputs.map((stdout) => (JSON.parse(stdout.trim().split('\n').at(-1)!) as { won: number[] }).won);
  const all = wins.flat().sort((a, b) => a - b);
  expect(all).toEqual(Array.from({ length: options.items }, (_, i) => i));
  return wins;
}

/** The definition race-child.mjs uses, for seeding and checking from the test process. */
export function raceTracker(store: Store) {
  return new Tracker(jobDefinition(store));
}

/** A test timeout for {@link processRaces}: room for its five runs of claim-next on a loaded machine. */
export const PROCESS_RACES_TIMEOUT = 240_000;

/** Seeds `items` items, races `processes` children for them by key and by claim-next. */
export async function processRaces(options: { store: 'sqlite' | 'postgres' | 'mongodb' | 'redis'; target: string; make: (table: string) => Store; tag: string }) {
  for (const mode of ['by-key', 'next'] as const) {
    // claim-next must have raced for real: more than one process won something. On a loaded
    // machine one process can drain all 60 before the others run at all; then the race is run
    // again on fresh items (each run is still checked: every item won exactly once)
    for (let run = 1; ; run++) {
      const table = `race_${mode.replace('-', '_')}_${options.tag}${run > 1 ? `_${run}` : ''}`;
      const store = options.make(table);
      const tracker = raceTracker(store);
      for (let id = 0; id < 60; id++) await tracker.track({ n: id });
      const wins = await raceAcrossProcesses({ store: options.store, target: options.target, table, items: 60, processes: 4, mode });
      const stats = await tracker.stats();
      expect(stats.byStatus.running).toBe(60);
      expect(stats.byStatus.queued).toBe(0);
      // a store that holds a connection of its own (SQLite) lets it go before the next run
      await (store as { close?: () => Promise<void> }).close?.();
      const winners = wins.filter((w) => w.length > 0).length;
      if (mode === 'by-key' || winners > 1) break;
      if (run === 5) expect(winners, `in ${run} runs of claim-next one process won every item: the processes never raced`).toBeGreaterThan(1);
      console.warn(`[processRaces] ${options.store}: one process won all 60 items (the others had not started claiming); racing again`);
    }
  }
}

/** Waits until `cond` holds, checking every 20 ms; fails naming `what` after `budgetMs`. */
export async function until(what: string, cond: () => boolean | Promise<boolean>, budgetMs = 20_000): Promise<void> {
  const end = Date.now() + budgetMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`not within ${budgetMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Starts `test/support/wake-child.mjs` (a worker that polls only every `pollMs`) on one store;
 * `lines` collects what it prints, its stderr goes to this process's, and `stop()` ends it
 * (SIGTERM, then SIGKILL if it hangs 30 s) and resolves to its exit code.
 */
export function startWakeChild(kind: string, target: string, table: string, pollMs: number) {
  const child = resolve(import.meta.dirname, 'wake-child.mjs');
  const proc: ChildProcess = spawn(process.execPath, [child, kind, target, table], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, POLL_MS: String(pollMs) } });
  const lines: string[] = [];
  let buffer = '';
  proc.stdout!.on('data', (chunk: Buffer) => {
    const parts = (buffer + chunk.toString()).split('\n');
    buffer = parts.pop()!;
    lines.push(...parts);
  });
  proc.stderr!.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  const exited = new Promise<number | null>((res) => proc.on('exit', (code) => res(code)));
  const stop = async () => {
    proc.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
    if (code === 'hung') proc.kill('SIGKILL');
    return code;
  };
  return { proc, lines, stop };
}
