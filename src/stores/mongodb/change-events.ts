/**
 * What a MongoDB change stream of a tracker's collection carries: the server-side filter down to
 * writes that make an item claimable, and what one event says. Internal.
 * @module
 */
import type { Document } from 'mongodb';
import type { StoreChange } from '../../store.js';

/**
 * The server-side filter: inserts and replacements whose document is in a claimable status,
 * updates that set a claimable status, and updates that move only the deadline of an item
 * waiting in one (a reschedule). A deadline-only update is also what a renewal of a held item
 * looks like, so for those the server looks up the document's status (`updateLookup`); every
 * other write (claims, settles into final statuses) is dropped before any lookup. Only the
 * fields the listener reads are sent.
 */
export function changePipeline(statuses: readonly string[]): Document[] {
  const claimable = { $in: [...statuses] };
  const set = 'updateDescription.updatedFields';
  return [
    {
      $match: {
        $or: [
          { operationType: { $in: ['insert', 'replace'] }, 'fullDocument.status': claimable },
          { operationType: 'update', [`${set}.status`]: claimable },
          { operationType: 'update', [`${set}.status`]: { $exists: false }, [`${set}.deadline`]: { $exists: true }, 'fullDocument.status': claimable },
        ],
      },
    },
    {
      $project: Object.fromEntries(
        ['operationType', 'wallTime', ...['status', 'deadline', 'updatedAt'].flatMap((f) => [`fullDocument.${f}`, `${set}.${f}`])].map((f) => [f, 1]),
      ),
    },
  ];
}

/**
 * What a change event says: the status written, and when the item becomes claimable if later
 * than now. The delay is measured between two server times (the written deadline and the
 * write's `updatedAt`, both `$$NOW`-based) and added to this process's clock, so that clock
 * skew between machines does not move the wake-up.
 */
export function toChange(event: Document): StoreChange {
  const set = (event.updateDescription?.updatedFields ?? {}) as Document;
  const doc = (event.fullDocument ?? {}) as Document;
  const status: unknown = set.status ?? doc.status;
  if (typeof status !== 'string') return {};
  const deadline: unknown = set.deadline ?? doc.deadline;
  const written: unknown = set.updatedAt ?? doc.updatedAt ?? event.wallTime;
  const ms = deadline instanceof Date && written instanceof Date ? deadline.getTime() - written.getTime() : 0;
  return ms > 0 ? { status, at: new Date(Date.now() + ms) } : { status };
}
