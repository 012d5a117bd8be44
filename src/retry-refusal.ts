/**
 * Why an operator's retry of one item changed nothing, for the surfaces that say so (the CLI and
 * the dashboard). `tracker.retry` answers `null` and stays one conditional update; a surface then
 * reads the item once and asks this what to tell the operator. Internal.
 * @module
 */

/** What `retryRefusal` found. */
export type RetryRefusal =
  /** No item with that key. */
  | { readonly why: 'missing' }
  /** The item is in a status no stage fails into (or parked where a retry cannot tell it is). */
  | { readonly why: 'not-parked'; readonly status: string; readonly failedStatuses: readonly string[] }
  /**
   * In a failed status under a declared stage whose items are not parked there: it is also a
   * status a stage claims from or completes into, and the item waits or finished there.
   */
  | { readonly why: 'not-parked-here'; readonly status: string; readonly stage: string }
  /** Parked by another stage than the one named. */
  | { readonly why: 'other-stage'; readonly status: string; readonly parkedBy: string }
  /**
   * Parked with no stage recorded (or one no longer declared) in a failed status that several
   * stages share, with no stage named, or with one that does not fail into it: name one of
   * `owners`.
   */
  | { readonly why: 'pick-stage'; readonly status: string; readonly recorded: string | null; readonly owners: readonly string[] }
  /**
   * Recorded under a stage no longer declared, in a failed status that a stage also claims from
   * or completes into: it may be waiting there, not parked, so a retry does not move it.
   */
  | { readonly why: 'unclear'; readonly status: string; readonly recorded: string | null };

interface Definition {
  readonly stages: ReadonlyArray<{ readonly name: string; readonly failed: string }>;
}

/**
 * Why `retry(key, { stage })` changed nothing, given the item as read afterwards (`null`: none).
 */
export function retryRefusal(def: Definition, item: { readonly status: string; readonly stage: string | null } | null, stage: string | undefined): RetryRefusal {
  if (!item) return { why: 'missing' };
  const failedStatuses = [...new Set(def.stages.map((s) => s.failed))];
  const owners = def.stages.filter((s) => s.failed === item.status).map((s) => s.name);
  if (owners.length === 0) return { why: 'not-parked', status: item.status, failedStatuses };
  const declared = item.stage !== null && def.stages.some((s) => s.name === item.stage);
  if (declared) {
    // the stage's retry takes it from its failed status and from statuses only ever parked in
    return stage !== undefined && item.stage !== stage ? { why: 'other-stage', status: item.status, parkedBy: item.stage! } : { why: 'not-parked-here', status: item.status, stage: item.stage! };
  }
  // no stage recorded, or a renamed one: the retry needs a stage that fails into this status
  if (stage === undefined ? owners.length > 1 : !owners.includes(stage)) return { why: 'pick-stage', status: item.status, recorded: item.stage, owners };
  return { why: 'unclear', status: item.status, recorded: item.stage };
}
