/**
 * What a guarded update of a batch did when its command failed: a failover or a dropped
 * connection can fail a `findOneAndUpdate` whether or not the server applied it. Read back by
 * `_id`, the document tells, because every change a batch sends moves its item out of the
 * guard's state (a settle changes the status; a reap changes the status and the fence). Internal.
 * @module
 */
import type { Document } from 'mongodb';
import type { Change, LeaseGuard } from '../../store.js';

/**
 * - `applied`: the document is in the state the change leaves (status and fence), so the
 *   change was applied;
 * - `pending`: the document is still in the guard's state, so it was not, and the guarded
 *   update may be sent again (it cannot apply twice: it moves the item out of that state);
 * - `lost`: neither (or the document is gone): the guard no longer holds, which is what a retry
 *   would report too;
 * - `unknown`: a change that leaves status and fence as they are cannot be told from its guard.
 */
export type FailedUpdateOutcome = 'applied' | 'pending' | 'lost' | 'unknown';

/**
 * Tells what a failed guarded update did from its document read back afterwards (`null`: gone).
 * An item another client moved to the same state (a second reaper, at the same fence) counts as
 * applied: the two cannot be told apart, and either way the item is where this change puts it.
 */
export function failedUpdateOutcome(doc: Document | null, guard: LeaseGuard, change: Change): FailedUpdateOutcome {
  const status = change.status ?? guard.status;
  const fence = guard.fence + (change.bumpFence ? 1 : 0);
  const held = doc !== null && doc.status === guard.status && doc.fence === guard.fence;
  if (status === guard.status && fence === guard.fence) return held ? 'unknown' : 'lost';
  if (doc !== null && doc.status === status && doc.fence === fence) return 'applied';
  return held ? 'pending' : 'lost';
}
