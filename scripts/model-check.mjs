#!/usr/bin/env node
/**
 * Model-checks leasehold's lease protocol with SPIN (see docs/protocol.md).
 *
 * 1. The main model, model/leasehold.pml, in two configurations (bounds below): every safety
 *    property in one run per configuration (their conjunction; should it fail, each property
 *    is run alone to name the ones that fail), and every liveness property under weak fairness.
 * 2. Every mutant in model/mutants/: the model with one deliberate mistake. SPIN must find a
 *    counterexample to the property its header names (`expect: name`); a mutant that passes
 *    means that property, as written, cannot catch that mistake. Every property must be the
 *    `expect` of at least one mutant, so each is shown able to fail.
 * 3. Sanity: every labelled transition (`T_claim:`, `T_renew:`, ...) takes effect somewhere in
 *    the main configuration (from pan's report of unreached statements), and the model writes
 *    fences only through the observed `setFence`.
 *
 * Build products go to a temporary folder, removed when everything passed and kept (with the
 * counterexample trails) when something did not. The last line printed is always
 *   model: states=N depth=D properties=P/P hold, mutants caught=M/M
 * with N and D the most states stored and the deepest depth reached by pan in one run of the
 * main configuration. Exits 1 when a property fails or a mutant is not caught, 2 when the tools
 * are missing or the model is malformed.
 *
 * Environment: MODEL_CHECK_JOBS (parallel pan/gcc jobs, default 2), MODEL_CHECK_KEEP=1 (keep
 * the build folder).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const modelPath = join(root, 'model', 'leasehold.pml');
const mutantDir = join(root, 'model', 'mutants');
const JOBS = Math.max(1, Number(process.env.MODEL_CHECK_JOBS) || 2);
/** pan's depth bound (`-m`); a run that reaches it fails, as its search was cut short. */
const MAX_DEPTH = 10_000;
/** pan's hash table: 2^22 slots, ample for the largest run (under 1M states); mutants stop early. */
const HASH_BITS = 22;
const MUTANT_HASH_BITS = 20;

/**
 * The configurations the main model is checked in. `-D` values override the model's defaults
 * (its `#ifndef` block). The first one is "the main model" of the summary line.
 */
const CONFIGS = [
  { name: 'main', about: '1 item, 3 workers, reaper, operator (1 verb), 1 release, 1 renew', defines: [] },
  { name: 'two-items', about: '2 items, 2 workers, reaper; no operator, release or renew', defines: ['-DNITEMS=2', '-DNWORKERS=2', '-DOPS=0', '-DRELEASES=0', '-DRENEWS=0'] },
];
/** Mutants are checked in the main configuration. */
const MUTANT_DEFINES = CONFIGS[0].defines;

const started = performance.now();
let summary = { states: 0, depth: 0 };

function finish(code, { propsOk = 0, propsTotal = 0, caught = 0, mutants = 0 } = {}) {
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`(${secs} s)`);
  console.log(`model: states=${summary.states} depth=${summary.depth} properties=${propsOk}/${propsTotal} hold, mutants caught=${caught}/${mutants}`);
  process.exit(code);
}

function fail(message) {
  console.error(`model-check: ${message}`);
  finish(2);
}

// ---- tools ----
for (const tool of ['spin', 'gcc']) {
  const probe = spawnSync(tool, tool === 'spin' ? ['-V'] : ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    fail(`\`${tool}\` is not on PATH. Install it with \`apt-get install -y ${tool}\` (Debian), or see https://spinroot.com.`);
  }
}

// ---- read the model ----
const model = readFileSync(modelPath, 'utf8');
/** @type {{ name: string, formula: string, liveness: boolean }[]} */
const properties = [];
for (const m of model.matchAll(/^ltl (\w+) \{(.*)\}(.*)$/gm)) {
  properties.push({ name: m[1], formula: m[2].trim(), liveness: /weak fairness/.test(m[3]) });
}
if (properties.length === 0) fail(`no \`ltl\` blocks found in ${modelPath}`);
const safety = properties.filter((p) => !p.liveness);
const liveness = properties.filter((p) => p.liveness);

// the fence observer only sees writes made through setFence: nothing may bypass it
const fenceWrites = [...model.matchAll(/\bfence\[[^\]]+\]\s*(=(?!=)|\+\+|--)/g)];
if (fenceWrites.length !== 1) {
  fail(`the model must write \`fence[...]\` only inside \`setFence\` (found ${fenceWrites.length} writes), or fence_monotone misses some.`);
}

// the labelled transitions (T_claim, T_renew, ...): the line each labels, to check that every one
// of them takes effect somewhere in the main configuration (no transition is dead in the model)
const modelLines = model.split('\n');
const labels = [];
modelLines.forEach((line, i) => {
  const m = /\b(T_\w+):(.*)$/.exec(line);
  if (!m) return;
  let at = i;
  if (m[2].trim() === '') while (at + 1 < modelLines.length && modelLines[++at].trim() === '');
  labels.push({ label: m[1], line: at + 1 });
});
if (labels.length === 0) fail('no `T_` transition labels found in the model');

const mutants = readdirSync(mutantDir)
  .filter((f) => f.endsWith('.pml'))
  .sort()
  .map((file) => {
    const text = readFileSync(join(mutantDir, file), 'utf8');
    const expect = /expect:\s*(\w+)/.exec(text)?.[1];
    const switches = [...text.matchAll(/#define (MUTANT_\w+)/g)].map((m) => m[1]);
    if (!expect || !properties.some((p) => p.name === expect)) fail(`${file}: its header must name a property of the model as \`expect: <name>\`.`);
    if (switches.length === 0 || switches.some((s) => !model.includes(s))) fail(`${file}: it must #define a MUTANT_ switch that model/leasehold.pml uses.`);
    return { name: basename(file, '.pml'), file: join(mutantDir, file), expect, liveness: properties.find((p) => p.name === expect).liveness };
  });
const uncovered = properties.filter((p) => !mutants.some((m) => m.expect === p.name));
if (uncovered.length > 0) fail(`no mutant shows that these properties can fail: ${uncovered.map((p) => p.name).join(', ')}`);

// ---- processes ----
function run(cmd, args, cwd) {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, out }));
  });
}

/** spin -a, then gcc: one pan per variant. */
async function build(dir, source, defines, optimize) {
  mkdirSync(dir, { recursive: true });
  const spin = await run('spin', [...defines, '-a', source], dir);
  if (spin.code !== 0 || /error/i.test(spin.out.replace(/^ltl .*$/gm, ''))) throw new Error(`spin -a ${basename(source)} failed:\n${spin.out}`);
  const gcc = await run('gcc', [optimize, '-w', '-DNFAIR=4', '-o', 'pan', 'pan.c'], dir);
  if (gcc.code !== 0) throw new Error(`gcc failed in ${dir}:\n${gcc.out}`);
}

/** Runs pan on one claim; parses what it found. */
async function pan(dir, claim, liveness, hashBits = HASH_BITS) {
  const t0 = performance.now();
  const args = ['-a', ...(liveness ? ['-f'] : []), '-N', claim, `-m${MAX_DEPTH}`, `-w${hashBits}`];
  const { out } = await run(join(dir, 'pan'), args, dir);
  const errors = Number(/errors: (\d+)/.exec(out)?.[1] ?? NaN);
  const states = Number(/(\d+) states, stored/.exec(out)?.[1] ?? 0);
  const depth = Number(/depth reached (\d+)/.exec(out)?.[1] ?? 0);
  const truncated = /max search depth too small|search not completed|error: /.test(out);
  const violation = /assertion violated|acceptance cycle/.test(out);
  return { errors, states, depth, truncated, violation, out, secs: (performance.now() - t0) / 1000, cmd: `./pan ${args.join(' ')}` };
}

async function pool(tasks, size) {
  const results = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(size, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]();
      }
    }),
  );
  return results;
}

// ---- the checks ----
const work = mkdtempSync(join(tmpdir(), 'leasehold-model-'));
/** property name -> list of failures ("config: why") */
const failures = new Map(properties.map((p) => [p.name, []]));
const notCaught = [];
const replay = [];

function configTask(config, index) {
  return async () => {
    const dir = join(work, `config-${config.name}`);
    mkdirSync(dir, { recursive: true });
    // the conjunction of every safety property, as one extra claim over the model's own macros
    const check = join(dir, 'check.pml');
    writeFileSync(check, `#include "${modelPath}"\nltl all_safety { ${safety.map((p) => `(${p.formula})`).join(' && ')} }\n`);
    await build(dir, check, config.defines, '-O1');
    const runs = [['all_safety', false], ...liveness.map((p) => [p.name, true])];
    for (const [claim, live] of runs) {
      const r = await pan(dir, claim, live);
      if (index === 0) summary = { states: Math.max(summary.states, r.states), depth: Math.max(summary.depth, r.depth) };
      if (index === 0 && claim === 'all_safety') deadTransitions(r.out);
      const ok = r.errors === 0 && !r.truncated;
      const names = claim === 'all_safety' ? safety.map((p) => p.name) : [claim];
      console.log(`${ok ? 'ok  ' : 'FAIL'} [${config.name}] ${names.join(', ')}: states=${r.states} depth=${r.depth} (${r.secs.toFixed(1)} s)`);
      if (ok) continue;
      if (claim !== 'all_safety') {
        failures.get(claim).push(`${config.name}: ${r.truncated ? 'search incomplete' : 'counterexample'}`);
        replay.push(`cd ${dir} && spin -t -p -g ${config.defines.join(' ')} check.pml   # ${claim}`);
        continue;
      }
      // name the failing safety properties, one run each
      for (const p of safety) {
        const one = await pan(dir, p.name, false);
        if (one.errors === 0 && !one.truncated) continue;
        failures.get(p.name).push(`${config.name}: ${one.truncated ? 'search incomplete' : 'counterexample'}`);
        console.log(`FAIL [${config.name}] ${p.name}: ${one.truncated ? 'search incomplete (raise -m or -w)' : 'counterexample found'}`);
        if (!one.truncated) {
          // keep one trail per property
          await run('cp', ['check.pml.trail', `${p.name}.trail`], dir);
          replay.push(`cd ${dir} && spin -k ${p.name}.trail -t -p -g ${config.defines.join(' ')} check.pml   # ${p.name}`);
        }
      }
    }
  };
}

/** Fails the run when pan reports the statement of a labelled transition as never reached. */
function deadTransitions(out) {
  const unreached = new Set([...out.matchAll(/leasehold\.pml:(\d+), state/g)].map((m) => Number(m[1])));
  const dead = labels.filter((l) => unreached.has(l.line));
  for (const l of dead) console.log(`FAIL transition ${l.label} (model line ${l.line}) never takes effect in the main configuration: a property cannot be trusted on a dead transition`);
  deadCount = dead.length;
}
let deadCount = 0;

function mutantTask(mutant) {
  return async () => {
    const dir = join(work, `mutant-${mutant.name}`);
    // only the expected property's claim: a smaller, faster build
    await build(dir, mutant.file, [...MUTANT_DEFINES, '-DCHECK_ONE', `-DCHECK_${mutant.expect}`], '-O0');
    const r = await pan(dir, mutant.expect, mutant.liveness, MUTANT_HASH_BITS);
    const caught = r.errors > 0 && r.violation;
    console.log(`${caught ? 'ok  ' : 'FAIL'} mutant ${mutant.name}: ${caught ? `${mutant.expect} fails at depth ${r.depth}, as expected` : `${mutant.expect} was NOT violated`} (${r.secs.toFixed(1)} s)`);
    if (!caught) notCaught.push(mutant.name);
    else if (process.env.MODEL_CHECK_KEEP) {
      replay.push(`cd ${dir} && spin ${[...MUTANT_DEFINES, '-DCHECK_ONE', `-DCHECK_${mutant.expect}`].join(' ')} -k ${mutant.name}.pml.trail -t -p -g ${mutant.file}   # mutant ${mutant.name}`);
    }
  };
}

console.log(`model-check: ${properties.length} properties (${properties.map((p) => p.name).join(', ')}), ${mutants.length} mutants, ${JOBS} jobs`);
for (const c of CONFIGS) console.log(`  config ${c.name}: ${c.about}`);
try {
  await pool([...CONFIGS.map(configTask), ...mutants.map(mutantTask)], JOBS);
} catch (error) {
  console.error(`model-check: ${error.message}\n(build folder kept: ${work})`);
  finish(2);
}

const propsOk = properties.filter((p) => failures.get(p.name).length === 0).length;
const allGood = propsOk === properties.length && notCaught.length === 0 && deadCount === 0;
if (!allGood) {
  for (const [name, why] of failures) if (why.length > 0) console.log(`property ${name} FAILS (${why.join('; ')})`);
  if (deadCount > 0) console.log(`${deadCount} labelled transition(s) never take effect in the main configuration`);
  if (notCaught.length > 0) console.log(`mutants NOT caught: ${notCaught.join(', ')} (the property each names cannot see its mistake)`);
  for (const line of replay) console.log(`replay: ${line}`);
  console.log(`build folder kept: ${work}`);
} else if (process.env.MODEL_CHECK_KEEP) {
  for (const line of replay) console.log(`replay: ${line}`);
  console.log(`build folder kept: ${work}`);
} else {
  rmSync(work, { recursive: true, force: true });
}
finish(allGood ? 0 : 1, { propsOk, propsTotal: properties.length, caught: mutants.length - notCaught.length, mutants: mutants.length });
