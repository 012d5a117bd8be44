/**
 * PostgreSQL's batch settle: updates of one shape (see {@link shapeOf}) in one
 * `UPDATE … FROM unnest(arrays)`, each row under its own guard. Internal.
 * @module
 */
import type { Change, GuardedUpdate } from '../../store.js';
import { encodeData } from './compile.js';

/**
 * The statement that settles `updates` (all of one shape), each row under its own guard. Keys
 * and fences go as one array per column; a value shared by the whole batch (the usual case for
 * statuses and delays) goes once. The statement stays the same size whatever the batch size, so
 * its prepared plan is reused. Each returned row carries `leasehold_idx`, its entry of `indexes`.
 */
export function settleStatement(table: string, updates: readonly GuardedUpdate[], indexes: readonly number[], columns: string): { text: string; values: unknown[] } {
  const first = updates[0]!;
  const params: unknown[] = [];
  const unnested: string[] = [];
  const names: string[] = [];
  const perRow = (name: string, type: string, values: readonly unknown[]) => {
    params.push(type === 'int' || type === 'bigint' ? intArray(values) : values);
    unnested.push(`$${params.length}::${type}[]`);
    names.push(`"${name}"`);
    return `v."${name}"`;
  };
  const column = (name: string, type: string, pick: (u: GuardedUpdate) => unknown) => {
    const values = updates.map(pick);
    if (values.some((v) => v !== values[0])) return perRow(name, type, values);
    params.push(values[0]);
    return `$${params.length}::${type}`;
  };
  const idx = perRow('idx', 'int', indexes);
  // the row id (the lease's ref) is the primary key: the narrowest index to find each row by
  const refs = perRow('ref', 'bigint', updates.map((u) => u.guard.ref));
  // `= ANY` on the same array makes the planner look rows up by primary key instead of
  // hashing every row of the status (it cannot see how short an unnest is)
  const guard = [`t.id = ${refs}`, `t.id = ANY($${params.length}::bigint[])`];
  guard.push(`t.fence = ${perRow('fence', 'bigint', updates.map((u) => u.guard.fence))}`);
  guard.push(`t.status = ${column('from_status', 'text', (u) => u.guard.status)}`);
  if (first.guard.expired) guard.push('t.deadline <= now()');
  const c = first.change;
  const assign = ['updated_at = now()'];
  if (c.status !== undefined) assign.push(`status = ${column('to_status', 'text', (u) => u.change.status)}`);
  if (c.stage !== undefined) assign.push(`stage = ${column('stage', 'text', (u) => u.change.stage)}`);
  if (c.owner !== undefined) assign.push(`owner = ${column('owner', 'text', (u) => u.change.owner ?? null)}`);
  if (c.bumpFence) assign.push('fence = t.fence + 1');
  if (c.attempts === 'increment') assign.push('attempts = t.attempts + 1', 'claimed_at = now()');
  if (c.attempts === 'decrement') assign.push('attempts = GREATEST(t.attempts - 1, 0)');
  if (c.attempts === 'reset') assign.push('attempts = 0');
  if (c.deadline) {
    if ('at' in c.deadline) assign.push(`deadline = ${column('deadline_at', 'timestamptz', (u) => (u.change.deadline as { at: Date }).at.toISOString())}`);
    else assign.push(`deadline = now() + ${column('delay_ms', 'float8', (u) => (u.change.deadline as { ms: number }).ms)} * interval '1 millisecond'`);
  }
  if (c.data !== undefined) assign.push(`data = ${column('data', 'jsonb', (u) => encodeData(u.change.data))}`);
  if (c.lastError !== undefined) assign.push(`last_error = ${column('last_error', 'text', (u) => u.change.lastError)}`);
  if (c.finished !== undefined) assign.push(`finished_at = ${c.finished ? 'now()' : 'NULL'}`);
  const text =
    `UPDATE ${table} AS t SET ${assign.join(', ')} FROM unnest(${unnested.join(', ')}) AS v(${names.join(', ')}) ` +
    `WHERE ${guard.join(' AND ')} RETURNING ${idx} AS leasehold_idx, ${columns}`;
  return { text, values: params };
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
 * An array of integers (row ids, fences, indexes) as a PostgreSQL array literal: the common
 * case, built without `pg`'s general array serializer; anything else is left to `pg`.
 */
function intArray(values: readonly unknown[]): unknown {
  for (const v of values) {
    if (!(typeof v === 'number' ? Number.isSafeInteger(v) : typeof v === 'string' && DIGITS.test(v))) return values;
  }
  return `{${values.join(',')}}`;
}
const DIGITS = /^-?\d{1,19}$/;

