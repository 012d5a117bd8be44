/**
 * PostgreSQL's batch settle: updates of one shape (see {@link shapeOf}) in one `UPDATE`, each
 * row under its own guard. Internal.
 * @module
 */
import type { Change, GuardedUpdate } from '../../store.js';
import { encodeData } from './compile.js';
import { utcText } from './pg-dialect.js';

/**
 * The statement that settles `updates` (all of one shape, each on a different row), each row
 * under its own guard. Row ids go as one array, sorted; a value that differs between rows
 * (fences, and sometimes statuses or delays) goes as an array beside it, read at the row's
 * position in the id array, which `width_bucket` finds by binary search; a value shared by the
 * whole batch (the usual case) goes once. The rows are found by primary key (`id = ANY(ids)`)
 * and nothing is joined: a join with `unnest(...)` was planned as a nested loop that walked the
 * whole array again for every row. The statement stays the same size whatever the batch size,
 * so its prepared plan is reused. Each returned row carries its `id`, which says which update it
 * answers.
 */
export function settleStatement(table: string, batch: readonly GuardedUpdate[], columns: string): { text: string; values: unknown[] } {
  const updates = ascending(batch);
  const first = updates[0]!;
  const params: unknown[] = [intArray(updates.map((u) => u.guard.ref))];
  const ids = '$1::bigint[]';
  // the row's entry in the per-row arrays: for a value equal to a threshold, width_bucket
  // returns that threshold's (1-based) position
  const position = `width_bucket(t.id, ${ids})`;
  const column = (type: string, pick: (u: GuardedUpdate) => unknown) => {
    const values = updates.map(pick);
    if (values.some((v) => v !== values[0])) {
      params.push(type === 'bigint' ? intArray(values) : values);
      return `($${params.length}::${type}[])[${position}]`;
    }
    params.push(values[0]);
    return `$${params.length}::${type}`;
  };
  const guard = [`t.id = ANY(${ids})`, `t.fence = ${column('bigint', (u) => u.guard.fence)}`, `t.status = ${column('text', (u) => u.guard.status)}`];
  if (first.guard.expired) guard.push('t.deadline <= now()');
  const c = first.change;
  const assign = ['updated_at = now()'];
  if (c.status !== undefined) assign.push(`status = ${column('text', (u) => u.change.status)}`);
  if (c.stage !== undefined) assign.push(`stage = ${column('text', (u) => u.change.stage)}`);
  if (c.owner !== undefined) assign.push(`owner = ${column('text', (u) => u.change.owner ?? null)}`);
  if (c.bumpFence) assign.push('fence = t.fence + 1');
  if (c.attempts === 'increment') assign.push('attempts = t.attempts + 1', 'claimed_at = now()');
  if (c.attempts === 'decrement') assign.push('attempts = GREATEST(t.attempts - 1, 0)');
  if (c.attempts === 'reset') assign.push('attempts = 0');
  if (c.deadline) {
    if ('at' in c.deadline) assign.push(`deadline = ${column('timestamptz', (u) => utcText((u.change.deadline as { at: Date }).at))}`);
    else assign.push(`deadline = now() + ${column('float8', (u) => (u.change.deadline as { ms: number }).ms)} * interval '1 millisecond'`);
  }
  if (c.data !== undefined) assign.push(`data = ${column('jsonb', (u) => encodeData(u.change.data))}`);
  if (c.lastError !== undefined) assign.push(`last_error = ${column('text', (u) => u.change.lastError)}`);
  if (c.finished !== undefined) assign.push(`finished_at = ${c.finished ? 'now()' : 'NULL'}`);
  const text = `UPDATE ${table} AS t SET ${assign.join(', ')} WHERE ${guard.join(' AND ')} RETURNING ${columns}`;
  return { text, values: params };
}

/**
 * Splits a batch into statements: one per shape of change (see {@link shapeOf}; a
 * `completeBatch` has one shape, a `failBatch` at most two), except that a row's next update
 * goes to a statement that runs after the one holding its previous update, so that each
 * statement names a row once and the updates of one row apply in the order given. Returns the
 * indexes into `updates` of each statement, in the order to run them.
 */
export function statementsOf(updates: readonly GuardedUpdate[]): number[][] {
  const statements: number[][] = [];
  // per shape, the positions in `statements` of its statements; per row, its latest statement
  const byShape = new Map<string, number[]>();
  const latest = new Map<string, number>();
  // a batch's changes are often one shared object (see `completionChange`): its shape is made once
  let last: { change: Change; expired: boolean; shape: string } | undefined;
  updates.forEach(({ guard, change }, i) => {
    const expired = guard.expired === true;
    if (last?.change !== change || last.expired !== expired) last = { change, expired, shape: shapeOf(change, expired) };
    const shape = last.shape;
    const ref = String(guard.ref);
    const after = latest.get(ref) ?? -1;
    let positions = byShape.get(shape);
    if (!positions) byShape.set(shape, (positions = []));
    let at = positions.find((p) => p > after);
    if (at === undefined) {
      at = statements.push([]) - 1;
      positions.push(at);
    }
    statements[at]!.push(i);
    latest.set(ref, at);
  });
  return statements;
}

/**
 * The updates in ascending order of row id (ids are integers, as numbers or digit strings, and
 * distinct within a statement): `width_bucket` needs its thresholds sorted. Claims come back in
 * deadline order, often already ascending, which costs one pass.
 */
function ascending(batch: readonly GuardedUpdate[]): readonly GuardedUpdate[] {
  // ids below 2^53 (all of them, in practice) compare as numbers; past that, as BigInts
  let ids: Array<number | bigint> = batch.map((u) => Number(u.guard.ref));
  if (!ids.every((id) => Number.isSafeInteger(id))) ids = batch.map((u) => toBigInt(u.guard.ref));
  let sorted = true;
  for (let i = 1; i < ids.length && sorted; i++) sorted = ids[i - 1]! < ids[i]!;
  if (sorted) return batch;
  const order = batch.map((_, i) => i).sort((a, b) => (ids[a]! < ids[b]! ? -1 : ids[a]! > ids[b]! ? 1 : 0));
  return order.map((i) => batch[i]!);
}

function toBigInt(id: unknown): bigint {
  try {
    return BigInt(id as string | number);
  } catch {
    // not an integer: the statement's `::bigint[]` cast refuses it with the server's error
    return 0n;
  }
}

/** Which parts a change sets (not their values): updates of one shape share one statement. */
export function shapeOf(c: Change, expired: boolean): string {
  const deadline = c.deadline === undefined ? '-' : 'at' in c.deadline ? 'a' : 'm';
  return (
    `${c.status !== undefined ? 1 : 0}${c.stage !== undefined ? 1 : 0}${c.owner !== undefined ? 1 : 0}${c.data !== undefined ? 1 : 0}` +
    `${c.lastError !== undefined ? 1 : 0}${c.bumpFence ? 1 : 0}${c.attempts ?? '-'}${deadline}${c.finished ?? '-'}${expired ? 1 : 0}`
  );
}

/**
 * An array of integers (row ids, fences) as a PostgreSQL array literal: the common case, built
 * without `pg`'s general array serializer; anything else is left to `pg`.
 */
function intArray(values: readonly unknown[]): unknown {
  for (const v of values) {
    if (!(typeof v === 'number' ? Number.isSafeInteger(v) : typeof v === 'string' && DIGITS.test(v))) return values;
  }
  return `{${values.join(',')}}`;
}
const DIGITS = /^-?\d{1,19}$/;
