// A linearizability checker: the Wing–Gong–Lowe search, run per partition (per item key) with
// memoised (linearized set, model state) pairs, as Porcupine and Knossos do it. Plain JavaScript
// with a .d.mts beside it, so that the chaos harness (plain .mjs on dist/) and the TypeScript
// tests share one implementation without a build step.
//
// An operation has a call time and, when it returned, a return time. Real time orders two
// operations only when one returned before the other was called; anything else overlaps, and the
// search tries every order the model allows. An operation whose outcome is unknown (its process
// was killed, or the store call failed) is *pending*: it may have taken effect at any time after
// its call, or never, so the search may place it (with an effect the model allows) or leave it out.

/**
 * @typedef {import('./linearizability.d.mts').Step} Step
 * @typedef {import('./linearizability.d.mts').Model<unknown>} Model
 * @typedef {import('./linearizability.d.mts').CheckOptions} CheckOptions
 * @typedef {import('./linearizability.d.mts').CheckResult} CheckResult
 * @typedef {import('./linearizability.d.mts').PartitionFailure} PartitionFailure
 */

/**
 * Checks a history against a model, partition by partition.
 * @param {Model} model
 * @param {readonly import('./linearizability.d.mts').Operation[]} history
 * @param {CheckOptions} [options]
 * @returns {CheckResult}
 */
export function checkLinearizable(model, history, options = {}) {
  const started = performance.now();
  const toleranceMs = options.toleranceMs ?? 0;
  const budget = options.budget ?? 2_000_000;
  const partitions = model.partition(history);
  const failures = [];
  let explored = 0;
  let steps = 0;
  for (const { key, steps: partSteps } of partitions) {
    steps += partSteps.length;
    const outcome = searchPartition(model, key, partSteps, toleranceMs, budget);
    explored += outcome.explored;
    if (!outcome.ok) failures.push(outcome.failure);
  }
  const origin = history.reduce((min, op) => Math.min(min, op.call), Infinity);
  const report = failures.length === 0 ? '' : failures.map((f) => formatFailure(model, f, origin, options.maxLines ?? 60)).join('\n\n');
  return {
    ok: failures.length === 0,
    partitions: partitions.length,
    operations: history.length,
    steps,
    pending: history.filter((op) => op.pending).length,
    explored,
    failures,
    report,
    ms: performance.now() - started,
  };
}

/**
 * The search for one partition. Steps are kept sorted by call; at each point the candidates are
 * the steps not yet placed that were called before the earliest return among the completed steps
 * not yet placed (so real-time order holds), and each may be placed if the model allows it. A
 * (placed set, state) pair seen before is never explored again: from it the search failed.
 * @param {Model} model
 * @param {string} key
 * @param {readonly Step[]} input
 * @param {number} toleranceMs
 * @param {number} budget
 * @returns {{ ok: true, explored: number } | { ok: false, explored: number, failure: PartitionFailure }}
 */
function searchPartition(model, key, input, toleranceMs, budget) {
  const completedRets = input.filter((s) => !s.pending).map((s) => s.ret);
  // a pending step called after every completed step returned can never be needed
  const lastRet = completedRets.reduce((a, b) => Math.max(a, b), -Infinity);
  const steps = input.filter((s) => !s.pending || s.call - toleranceMs <= lastRet).sort((a, b) => a.call - b.call);
  const n = steps.length;
  const total = completedRets.length;
  if (total === 0) return { ok: true, explored: 0 };

  const placed = new Uint8Array(n);
  const words = new Uint32Array((n + 31) >>> 5);
  const mark = (i, on) => {
    placed[i] = on ? 1 : 0;
    words[i >>> 5] ^= 1 << (i & 31);
  };
  let placedDone = 0;
  const seen = new Set();

  /** Every (step index, next state) the search may take from `state`. */
  const movesFrom = (state) => {
    let minRet = Infinity;
    for (let i = 0; i < n; i++) if (!placed[i] && !steps[i].pending && steps[i].ret < minRet) minRet = steps[i].ret;
    const hash = model.hash(state);
    const classes = new Set();
    const moves = [];
    for (let i = 0; i < n; i++) {
      const step = steps[i];
      if (step.call - toleranceMs > minRet) break;
      if (placed[i]) continue;
      // identical pending steps are interchangeable: only the earliest-called unplaced one is tried
      if (step.pending && step.symmetry !== undefined) {
        if (classes.has(step.symmetry)) continue;
        classes.add(step.symmetry);
      }
      for (const next of model.step(state, step)) {
        // a pending step with no effect is the same as leaving it out
        if (step.pending && model.hash(next) === hash) continue;
        moves.push({ index: i, next });
      }
    }
    return moves;
  };

  const init = model.init(key);
  const stack = [{ state: init, moves: movesFrom(init), next: 0, index: -1 }];
  let best = { done: 0, path: [], state: init, placed: new Uint8Array(n) };
  let explored = 0;
  let gaveUp = false;
  while (stack.length > 0) {
    if (placedDone === total) return { ok: true, explored };
    const top = stack[stack.length - 1];
    if (top.next >= top.moves.length) {
      stack.pop();
      if (top.index >= 0) {
        mark(top.index, false);
        if (!steps[top.index].pending) placedDone--;
      }
      continue;
    }
    const { index, next } = top.moves[top.next++];
    mark(index, true);
    const memo = `${words.join(',')}|${model.hash(next)}`;
    if (seen.has(memo)) {
      mark(index, false);
      continue;
    }
    seen.add(memo);
    if (++explored > budget) {
      gaveUp = true;
      break;
    }
    if (!steps[index].pending) placedDone++;
    stack.push({ state: next, moves: movesFrom(next), next: 0, index });
    if (placedDone > best.done) {
      best = { done: placedDone, path: stack.slice(1).map((f) => ({ step: steps[f.index], state: f.state })), state: next, placed: placed.slice() };
    }
  }
  return { ok: false, explored, failure: describeFailure(model, key, steps, best, toleranceMs, gaveUp) };
}

/**
 * What could not be placed at the deepest point the search reached: the candidates there (and why
 * the model refused each), the completed step that had to come next at the latest, and the rest.
 * @returns {PartitionFailure}
 */
function describeFailure(model, key, steps, best, toleranceMs, gaveUp) {
  const open = steps.filter((_, i) => !best.placed[i]);
  const remaining = open.filter((s) => !s.pending);
  const blocking = remaining.reduce((a, b) => (b.ret < a.ret ? b : a), remaining[0]);
  const candidates = open
    .filter((s) => !s.pending && s.call - toleranceMs <= (blocking?.ret ?? Infinity))
    .map((s) => {
      const allowed = model.step(best.state, s).length > 0;
      return { step: s, reason: allowed ? 'allowed here, but every order after it reaches a dead end' : model.explain(best.state, s) };
    });
  // the steps the model refused are the ones that could not be placed
  const unplaced = candidates.filter((c) => c.reason !== 'allowed here, but every order after it reaches a dead end');
  return { key, steps, prefix: best.path, state: best.state, blocking, candidates, unplaced, remaining, gaveUp };
}

const ms = (t, origin) => (Number.isFinite(t) ? (t - origin).toFixed(1) : '…');

/**
 * A readable account of one failed partition.
 * @param {Model} model
 * @param {PartitionFailure} failure
 * @param {number} origin
 * @param {number} maxLines
 */
export function formatFailure(model, failure, origin, maxLines = 60) {
  const line = (step) =>
    `[${step.process}] ${model.describe(step)}   (call ${ms(step.call, origin)} ms, ${step.pending ? 'no return' : `return ${ms(step.ret, origin)} ms`}; op ${step.id})`;
  const out = [];
  out.push(
    failure.gaveUp
      ? `NOT CHECKED: key ${failure.key}: the search gave up (budget) after placing ${failure.prefix.length} of ${failure.steps.length} steps`
      : `NOT LINEARIZABLE: key ${failure.key} (${failure.steps.length} steps, ${failure.steps.filter((s) => s.pending).length} without a known outcome)`,
  );
  const prefix = failure.prefix;
  out.push(`  longest linearizable prefix (${prefix.length} steps, state after each):`);
  const shown = prefix.length > maxLines ? prefix.slice(prefix.length - maxLines) : prefix;
  if (shown.length < prefix.length) out.push(`    … ${prefix.length - shown.length} earlier steps`);
  for (const { step, state } of shown) out.push(`    ${line(step)}  => ${model.describeState(state)}`);
  out.push(`  state at that point: ${model.describeState(failure.state)}`);
  out.push('  could not be placed next:');
  for (const { step, reason } of failure.candidates) out.push(`    ${line(step)}\n        ${reason}`);
  if (failure.blocking) out.push(`  must be placed before anything called after it returned: ${line(failure.blocking)}`);
  const rest = failure.remaining.filter((s) => !failure.candidates.some((c) => c.step === s));
  if (rest.length) {
    out.push(`  still to place (${rest.length}):`);
    const few = Math.min(maxLines, 15);
    for (const step of rest.slice(0, few)) out.push(`    ${line(step)}`);
    if (rest.length > few) out.push(`    … ${rest.length - few} more`);
  }
  return out.join('\n');
}
