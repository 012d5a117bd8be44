import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { expect, it } from 'vitest';

// The SPIN model of the lease protocol (model/leasehold.pml, docs/protocol.md): every property
// holds on the model, and every mutant (the model with one deliberate mistake) is caught.

const onPath = (cmd: string, args: string[]) => {
  const probe = spawnSync(cmd, args, { encoding: 'utf8' });
  return !probe.error && probe.status === 0;
};
const haveSpin = onPath('spin', ['-V']);
// SPIN writes the verifier in C, so gcc is needed as well
const haveGcc = onPath('gcc', ['--version']);
const haveTools = haveSpin && haveGcc;

if (!haveTools) {
  const bar = '='.repeat(100);
  const why = haveSpin
    ? 'MODEL CHECK SKIPPED: gcc is not installed (SPIN needs it to compile its verifier); install it with `apt-get install -y gcc` (Debian)'
    : 'MODEL CHECK SKIPPED: spin is not installed; install it with `apt-get install -y spin` (Debian) or see https://spinroot.com';
  console.warn(`\n${bar}\n${why}\n${bar}\n`);
}

/** Runs the script to the end (it takes tens of seconds); resolves with its exit code and output. */
function modelCheck(): Promise<{ code: number | null; out: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [resolve(import.meta.dirname, '../scripts/model-check.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, out }));
  });
}

it.skipIf(!haveTools)('every property holds on the protocol model and every mutant is caught (npm run model-check)', async () => {
  const { code, out } = await modelCheck();
  const lines = out.trimEnd().split('\n');
  const last = lines[lines.length - 1] ?? '';
  const m = /^model: states=(\d+) depth=(\d+) properties=(\d+)\/(\d+) hold, mutants caught=(\d+)\/(\d+)$/.exec(last);
  expect(m, `unexpected last line; output was:\n${out}`).not.toBeNull();
  const [states, depth, held, properties, caught, mutants] = m!.slice(1).map(Number) as [number, number, number, number, number, number];
  expect(states).toBeGreaterThan(0);
  expect(depth).toBeGreaterThan(0);
  expect(properties).toBeGreaterThan(0);
  expect(held, out).toBe(properties);
  expect(mutants).toBeGreaterThan(0);
  expect(caught, out).toBe(mutants);
  expect(code, out).toBe(0);
}, 600_000);
