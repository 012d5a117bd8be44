// The sequential specification of one item, from docs/concepts.md ("One conditional update per
// hand-off"), for the linearizability checker. Items are independent (every hand-off is one
// conditional update of one item), so a history is checked per item key.
//
// What a client cannot see is modelled soundly rather than guessed:
// - lease expiry is judged by the store's clock, so a reap may take an item whenever it is active
//   in the model, and a reap that did not take an item says nothing about it;
// - backoff (`notBefore`) likewise: after a failed attempt that will retry (or a reap, or a
//   release with a delay), a claim by key that returns `null` is allowed until the next claim
//   succeeds; a claim that *succeeds* must still find the item claimable;
// - claim-next (or claimBatch) returning nothing is a statement about every key, so it is not
//   checked; claim-next returning an item is checked on that item like a claim by key;
// - an operation whose outcome is unknown may have taken effect or not; a pending claim-next or
//   reap may have touched any item, so it appears in every item's partition as a pending step.

/**
 * @typedef {{ s: string | null, f: number, a: number, b: boolean }} ItemState
 *   status (`null`: not tracked), fence, attempts, and whether a backoff may still be running
 * @typedef {import('./linearizability.d.mts').Step<any, any>} Step
 * @typedef {import('./linearizability.d.mts').Operation} Operation
 */

/** A canonical string for a key object (field order does not matter). */
export function keyId(key) {
  const entries = Object.entries(key).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(Object.fromEntries(entries.map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v])));
}

const asArray = (v) => (Array.isArray(v) ? v : [v]);

/**
 * The model of one item for a tracker definition (the options given to `new Tracker`: `initial`,
 * `stages`, `retry.maxAttempts`).
 * @param {{ initial: string, stages: Record<string, { from: string | readonly string[], active: string, done: string | readonly string[], failed: string }>, retry?: { maxAttempts?: number } }} definition
 * @returns {import('./linearizability.d.mts').Model<ItemState>}
 */
export function itemModel(definition) {
  const max = definition.retry?.maxAttempts ?? 5;
  const stages = new Map(
    Object.entries(definition.stages).map(([name, s]) => [name, { name, from: asArray(s.from), active: s.active, done: asArray(s.done), failed: s.failed }]),
  );
  const byActive = new Map([...stages.values()].map((s) => [s.active, s]));
  const stageOf = (name) => {
    const stage = stages.get(name);
    if (!stage) throw new Error(`[item-model] unknown stage \`${name}\` in the history`);
    return stage;
  };
  const ABSENT = Object.freeze({ s: null, f: 0, a: 0, b: false });
  const st = (s, f, a, b) => ({ s, f, a, b });
  const show = (x) => (x.s === null ? 'not tracked' : `${x.s} fence=${x.f} attempts=${x.a}${x.b ? ' (backoff may be running)' : ''}`);

  /** @returns {{ next: ItemState[], why?: string }} */
  function evaluate(x, step) {
    const { kind, input, output, pending } = step;
    const refuse = (why) => ({ next: [], why });
    switch (kind) {
      case 'track': {
        const created = x.s === null;
        const next = created ? st(definition.initial, 0, 0, Boolean(input.delayed)) : x;
        if (pending) return { next: [next] };
        if (output.created !== created) return refuse(created ? 'the item did not exist, so track must create it' : `the item exists (${show(x)}), so track must not create it`);
        if (output.status !== next.s || output.fence !== next.f || output.attempts !== next.a) {
          return refuse(`track returned ${output.status} fence=${output.fence} attempts=${output.attempts}, the item is ${show(next)}`);
        }
        return { next: [next] };
      }
      case 'claim':
      case 'claim-any': {
        const stage = stageOf(input.stage);
        const why =
          x.s === null ? 'the item is not tracked'
          : !stage.from.includes(x.s) ? `status ${x.s} is not a \`from\` status of stage ${stage.name} (${stage.from.join(', ')})`
          : x.a >= max ? `attempts ${x.a} reached maxAttempts ${max}`
          : undefined;
        const won = st(stage.active, x.f + 1, x.a + 1, false);
        if (pending) return why ? refuse(why) : { next: [won] };
        if (output.lease === null) {
          if (!why && !x.b) return refuse(`claim returned null, but the item is claimable at once (${show(x)})`);
          return { next: [x] };
        }
        if (why) return refuse(`claim returned a lease (fence ${output.lease.fence}), but ${why}`);
        if (output.lease.fence !== won.f || output.lease.attempt !== won.a) {
          return refuse(`claim returned fence=${output.lease.fence} attempt=${output.lease.attempt}, expected fence=${won.f} attempt=${won.a}`);
        }
        return { next: [won] };
      }
      case 'renew':
      case 'complete':
      case 'fail':
      case 'release': {
        const stage = stageOf(input.lease.stage);
        const held = x.s === stage.active && x.f === input.lease.fence;
        const why = held ? undefined : `the lease (fence ${input.lease.fence}) is not held: the item is ${show(x)}`;
        let next = x;
        if (kind === 'complete') {
          const to = input.to ?? stage.done[0];
          if (!stage.done.includes(to)) return refuse(`\`${to}\` is not a done status of stage ${stage.name}`);
          next = st(to, x.f, 0, false);
        } else if (kind === 'fail') {
          next = input.retry !== false && x.a < max ? st(stage.from[0], x.f, x.a, true) : st(stage.failed, x.f, x.a, false);
        } else if (kind === 'release') {
          next = st(stage.from[0], x.f, x.a - 1, (input.delayMs ?? 0) > 0);
        }
        if (pending) return held ? { next: [next] } : refuse(why);
        if (!output.ok) return held ? refuse(`${kind} was refused (LeaseLost), but the lease is held: ${show(x)}`) : { next: [x] };
        if (!held) return refuse(`${kind} succeeded, but ${why}`);
        if (output.status !== undefined && output.status !== next.s) return refuse(`${kind} returned status ${output.status}, expected ${next.s}`);
        return { next: [next] };
      }
      case 'reap':
      case 'reap-any': {
        const stage = x.s === null ? undefined : byActive.get(x.s);
        if (!stage) return refuse(`a reap can only take an active item; the item is ${show(x)}`);
        const next = x.a < max ? st(stage.from[0], x.f + 1, x.a, true) : st(stage.failed, x.f + 1, x.a, false);
        if (pending) return { next: [next] };
        if (output.fence !== next.f || output.status !== next.s) return refuse(`reap reported ${output.status} fence=${output.fence}, expected ${next.s} fence=${next.f}`);
        return { next: [next] };
      }
      case 'get': {
        const item = output.item;
        if (item === null) return x.s === null ? { next: [x] } : refuse(`get returned null, but the item is ${show(x)}`);
        if (item.status !== x.s || item.fence !== x.f || item.attempts !== x.a) {
          return refuse(`get returned ${item.status} fence=${item.fence} attempts=${item.attempts}, but the item is ${show(x)}`);
        }
        return { next: [x] };
      }
      default:
        throw new Error(`[item-model] unknown step kind \`${kind}\``);
    }
  }

  const leaseText = (l) => `fence=${l.fence}${l.attempt === undefined ? '' : ` attempt=${l.attempt}`}`;
  /** @param {Step} step */
  function describe(step) {
    const { kind, input, output, pending } = step;
    const out = (text) => `${text} -> ${pending ? '(unknown outcome)' : render(kind, output)}`;
    switch (kind) {
      case 'track':
        return out(`track${input.delayed ? ' (delayed)' : ''}`);
      case 'claim':
        return out(`${input.via ?? 'claim'}(${input.stage}${input.via === undefined ? ', by key' : ''})`);
      case 'claim-any':
        return `${input.via}(${input.stage}) that may have claimed this item -> (unknown outcome)`;
      case 'reap':
        return out('reapStale took this item');
      case 'reap-any':
        return 'reapStale that may have taken this item -> (unknown outcome)';
      case 'complete':
        return out(`${input.via ?? 'complete'}(${leaseText(input.lease)}${input.to ? `, to ${input.to}` : ''})`);
      case 'fail':
        return out(`fail(${leaseText(input.lease)}${input.retry === false ? ', no retry' : ''})`);
      case 'release':
        return out(`release(${leaseText(input.lease)}${input.delayMs ? `, delay ${input.delayMs} ms` : ''})`);
      default:
        return out(`${kind}${input.lease ? `(${leaseText(input.lease)})` : ''}`);
    }
  }

  return {
    partition: (history) => partitionByKey(history),
    init: () => ABSENT,
    step: (x, step) => evaluate(x, step).next,
    hash: (x) => `${x.s}/${x.f}/${x.a}/${x.b ? 1 : 0}`,
    explain: (x, step) => evaluate(x, step).why ?? 'allowed',
    describe,
    describeState: show,
  };
}

function render(kind, output) {
  if (kind === 'claim') return output.lease ? `lease ${`fence=${output.lease.fence} attempt=${output.lease.attempt}`}` : 'null';
  if (kind === 'track') return `${output.created ? 'created' : 'existing'} ${output.status} fence=${output.fence} attempts=${output.attempts}`;
  if (kind === 'reap') return `${output.status} fence=${output.fence}`;
  if (kind === 'get') return output.item ? `${output.item.status} fence=${output.item.fence} attempts=${output.item.attempts}` : 'null';
  if ('ok' in output) return output.ok ? `ok${output.status ? ` (${output.status})` : ''}` : 'LeaseLost';
  return JSON.stringify(output);
}

/**
 * Splits recorded operations into one partition per item key. Batch operations become one step
 * per key (each within the batch's call and return: the batch's atomicity as a whole is not
 * checked). Pending claim-next and reaps become a pending step in every key's partition.
 * @param {readonly Operation[]} history
 * @returns {Array<{ key: string, steps: Step[] }>}
 */
export function partitionByKey(history) {
  /** @type {Map<string, Step[]>} */
  const parts = new Map();
  const add = (key, step) => {
    const id = keyId(key);
    let list = parts.get(id);
    if (!list) parts.set(id, (list = []));
    list.push(step);
  };
  const everywhere = [];
  const make = (op, suffix, kind, input, output, pending, ret = op.ret) => ({
    id: suffix === '' ? op.id : `${op.id}#${suffix}`,
    process: op.process,
    kind,
    input,
    output: pending ? undefined : output,
    pending,
    call: op.call,
    ret: pending ? Infinity : ret ?? Infinity,
    // `via` names the call; steps that differ only in it have the same effect
    symmetry: pending ? `${kind}:${JSON.stringify({ ...input, via: undefined })}` : undefined,
    source: op,
  });
  const lease = (l) => ({ stage: l.stage, fence: l.fence, attempt: l.attempt });
  for (const op of history) {
    const { input, output, pending } = op;
    switch (op.op) {
      case 'track':
        add(input.key, make(op, '', 'track', { delayed: Boolean(input.delayed) }, output, pending));
        break;
      case 'claim':
        if (input.key !== undefined) add(input.key, make(op, '', 'claim', { stage: input.stage }, output && { lease: output.lease && lease(output.lease) }, pending));
        else if (pending) everywhere.push({ op, kind: 'claim-any', input: { stage: input.stage, via: 'claim-next' } });
        else if (output.lease) add(output.lease.key, make(op, '', 'claim', { stage: input.stage, via: 'claim-next' }, { lease: lease(output.lease) }, false));
        break;
      case 'claimBatch':
        if (pending) everywhere.push({ op, kind: 'claim-any', input: { stage: input.stage, via: 'claimBatch' } });
        else output.leases.forEach((l, i) => add(l.key, make(op, String(i), 'claim', { stage: input.stage, via: 'claimBatch' }, { lease: lease(l) }, false)));
        break;
      case 'renew':
        // a renew changes nothing the model tracks: without an outcome it says nothing
        if (!pending) add(input.lease.key, make(op, '', 'renew', { lease: lease(input.lease) }, output, false));
        break;
      case 'complete':
        add(input.lease.key, make(op, '', 'complete', { lease: lease(input.lease), to: input.to }, output, pending));
        break;
      case 'completeBatch':
        input.leases.forEach((l, i) => {
          // a lease missing from the results has no known outcome
          const result = pending ? undefined : output.results[i] ?? undefined;
          add(l.key, make(op, String(i), 'complete', { lease: lease(l), to: input.to, via: 'completeBatch' }, result, result === undefined));
        });
        break;
      case 'fail':
        add(input.lease.key, make(op, '', 'fail', { lease: lease(input.lease), retry: input.retry }, output, pending));
        break;
      case 'release':
        add(input.lease.key, make(op, '', 'release', { lease: lease(input.lease), delayMs: input.delayMs ?? 0 }, output, pending));
        break;
      case 'reapStale': {
        const reaped = output?.reaped ?? [];
        reaped.forEach((r, i) => add(r.key, make(op, String(i), 'reap', {}, { fence: r.fence, status: r.status }, false, r.time ?? op.ret)));
        if (pending) everywhere.push({ op, kind: 'reap-any', input: {}, except: new Set(reaped.map((r) => keyId(r.key))) });
        break;
      }
      case 'get':
        // a read without an outcome has no effect
        if (!pending) add(input.key, make(op, '', 'get', {}, output, false));
        break;
      default:
        throw new Error(`[item-model] unknown operation \`${op.op}\` in the history`);
    }
  }
  for (const [id, steps] of parts) {
    for (const { op, kind, input, except } of everywhere) {
      if (!except?.has(id)) steps.push(make(op, `any:${id}`, kind, input, undefined, true));
    }
  }
  return [...parts].map(([key, steps]) => ({ key, steps }));
}
