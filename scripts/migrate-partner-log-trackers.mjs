// Moves the original hand-rolled PartnerLogTracker documents (a Mongoose model's collection) into
// leasehold's MongoStore shape, in place. Stop the old workers first.
//
//   node scripts/migrate-partner-log-trackers.mjs --uri mongodb://... --db fleet \
//     --collection partnerlogtrackers [--dry-run] [--duplicates keep-most-advanced --archive partnerlogtrackers_duplicates]
//
// Idempotent and resumable: documents already in leasehold's shape (they have a `fence`) are
// left alone, and the collection is walked in `_id` order, a bounded batch per command.
// See docs/stores/mongodb.md, "Adopting an existing collection".
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The key fields of the original model. */
export const LEGACY_KEY_FIELDS = ['logId', 'partnerCode', 'aircraftId', 'customerId'];

/** Fields of the original model that leasehold's shape replaces. */
export const LEGACY_FIELDS = ['localFilePath', 'processingStartedAt', 'errorMessage', 'retryCount', 'processed', 'enqueuedAt'];

/** The index the original model declared (Mongoose's default name for it). */
export const LEGACY_INDEX = 'logId_1_partnerCode_1_aircraftId_1_customerId_1_status_1';

/** The owner recorded for items a pre-leasehold worker held when it was stopped. */
export const LEGACY_OWNER = 'pre-leasehold worker';

/** Of two documents with one key, the one further along is kept (then the newer one). */
const PROGRESS = { processed: 5, processing: 4, downloaded: 3, downloading: 2, failed: 1, pending: 0 };

const has = (field) => ({ $eq: [{ $type: `$${field}` }, 'string'] });
const statusIn = (...statuses) => ({ $in: ['$status', statuses] });
const firstOf = (...fields) => fields.reduceRight((rest, field) => ({ $ifNull: [`$${field}`, rest] }), '$$NOW');

/**
 * The pipeline update from the original shape to leasehold's. Items the old code left in
 * `downloading` or `processing` get an already-expired lease, so that the first
 * `tracker.reapStale()` hands them on as a failed attempt; waiting items are claimable at once,
 * oldest first.
 */
export function legacyToLeasehold(keyFields = LEGACY_KEY_FIELDS) {
  const active = statusIn('downloading', 'processing');
  const finished = statusIn('downloaded', 'processed', 'failed');
  return [
    {
      $set: {
        key: Object.fromEntries(keyFields.map((f) => [f, `$${f}`])),
        stage: {
          $switch: {
            branches: [
              { case: statusIn('downloading', 'downloaded'), then: 'download' },
              { case: statusIn('processing', 'processed'), then: 'process' },
              // a failure after the download had a file; before it, none
              { case: statusIn('failed'), then: { $cond: [has('localFilePath'), 'process', 'download'] } },
            ],
            default: null,
          },
        },
        data: { $cond: [has('localFilePath'), { localFilePath: '$localFilePath' }, { $literal: {} }] },
        // claims so far in the current stage: the old code counted processing claims only
        attempts: {
          $switch: {
            branches: [
              { case: statusIn('processing'), then: { $max: [1, { $ifNull: ['$retryCount', 1] }] } },
              { case: statusIn('downloading'), then: 1 },
              { case: statusIn('failed'), then: { $ifNull: ['$retryCount', 0] } },
            ],
            default: 0,
          },
        },
        fence: 0,
        owner: { $cond: [active, LEGACY_OWNER, null] },
        // waiting: claimable now; held: expired; finished: when it finished
        deadline: { $min: [{ $cond: [active, firstOf('processingStartedAt', 'updatedAt'), firstOf('updatedAt', 'createdAt')] }, '$$NOW'] },
        lastError: { $ifNull: ['$errorMessage', null] },
        createdAt: firstOf('createdAt'),
        updatedAt: '$$NOW',
        claimedAt: { $cond: [active, firstOf('processingStartedAt', 'updatedAt'), { $ifNull: ['$processingStartedAt', null] }] },
        finishedAt: { $cond: [finished, firstOf('updatedAt'), null] },
      },
    },
    { $unset: [...keyFields, ...LEGACY_FIELDS] },
  ];
}

/** Walks the collection in `_id` order, `batchSize` documents per command. */
async function* walk(collection, batchSize, projection) {
  let last;
  for (;;) {
    const filter = last === undefined ? {} : { _id: { $gt: last } };
    const docs = await collection.find(filter, { sort: { _id: 1 }, limit: batchSize, batchSize, projection, readPreference: 'primary' }).toArray();
    if (docs.length === 0) return;
    yield docs;
    last = docs.at(-1)._id;
    if (docs.length < batchSize) return;
  }
}

/**
 * Migrates `collection` in place.
 *
 * @param {import('mongodb').Collection} collection the model's collection (`mongoose.connection.db.collection('partnerlogtrackers')`)
 * @param {{ keyFields?: string[], batchSize?: number, dryRun?: boolean, duplicates?: 'fail' | 'keep-most-advanced', archive?: import('mongodb').Collection, legacyIndexes?: string[], writeConcern?: import('mongodb').WriteConcernSettings, log?: (line: string) => void }} [options]
 */
export async function migratePartnerLogTrackers(collection, options = {}) {
  const keyFields = options.keyFields ?? LEGACY_KEY_FIELDS;
  const batchSize = options.batchSize ?? 500;
  const writeConcern = options.writeConcern ?? { w: 'majority' };
  const log = options.log ?? (() => {});
  // the old index included `status`, so one key may have several documents: the unique key
  // index leasehold creates would refuse them
  const best = new Map();
  const losers = [];
  // a key field missing or null: the Tracker could never read the item back, nor claim it by key
  const incompleteKeys = [];
  const byStatus = {};
  let scanned = 0;
  let legacy = 0;
  const projection = Object.fromEntries(['_id', 'status', 'updatedAt', 'fence', 'key', ...keyFields].map((f) => [f, 1]));
  for await (const docs of walk(collection, batchSize, projection)) {
    for (const doc of docs) {
      scanned++;
      if (doc.fence === undefined) legacy++;
      byStatus[doc.status] = (byStatus[doc.status] ?? 0) + 1;
      const source = doc.fence === undefined ? doc : (doc.key ?? {});
      const missing = keyFields.filter((f) => source[f] === undefined || source[f] === null);
      if (missing.length > 0) incompleteKeys.push({ _id: doc._id, status: doc.status, missing, migrated: doc.fence !== undefined });
      const key = JSON.stringify(keyFields.map((f) => source[f] ?? null));
      const rank = [PROGRESS[doc.status] ?? -1, doc.updatedAt instanceof Date ? doc.updatedAt.getTime() : 0];
      const held = best.get(key);
      if (!held) best.set(key, { id: doc._id, status: doc.status, rank });
      else if (rank[0] > held.rank[0] || (rank[0] === held.rank[0] && rank[1] > held.rank[1])) {
        losers.push({ key, id: held.id, status: held.status });
        best.set(key, { id: doc._id, status: doc.status, rank });
      } else losers.push({ key, id: doc._id, status: doc.status });
    }
  }
  const duplicates = losers.map(({ key, id, status }) => ({ key: JSON.parse(key), _id: id, status, kept: best.get(key).id }));
  const result = { scanned, legacy, byStatus, duplicates, incompleteKeys, removed: 0, migrated: 0, droppedIndexes: [] };
  log(
    `[migrate] ${scanned} documents, ${legacy} in the original shape, ${duplicates.length} duplicate(s) of a key, ` +
      `${incompleteKeys.length} with a key field missing or null: ${JSON.stringify(byStatus)}`,
  );
  if (options.dryRun) return result;
  if (incompleteKeys.length > 0) {
    const shown = incompleteKeys.slice(0, 10).map((d) => `${JSON.stringify(d._id)} (${d.status}, no ${d.missing.join(', ')})`).join('; ');
    throw new Error(
      `[leasehold] [migrate] ${incompleteKeys.length} document(s) have a key field missing or null (${keyFields.join(', ')}): ${shown}. ` +
        'Nothing was changed. A Tracker could not read such an item back or claim it by key: set the missing fields, or archive and delete those documents, then run again.',
    );
  }
  if (duplicates.length > 0) {
    if (options.duplicates !== 'keep-most-advanced') {
      const shown = duplicates.slice(0, 10).map((d) => `${JSON.stringify(d.key)} (${d.status}, kept ${d.kept})`).join('; ');
      throw new Error(
        `[leasehold] [migrate] ${duplicates.length} document(s) share a key with another (${keyFields.join(', ')}): ${shown}. ` +
          "Nothing was changed. Resolve them by hand, or pass `duplicates: 'keep-most-advanced'` (CLI: `--duplicates keep-most-advanced`, with `--archive NAME` to keep copies).",
      );
    }
    for (let i = 0; i < duplicates.length; i += batchSize) {
      const ids = duplicates.slice(i, i + batchSize).map((d) => d._id);
      if (options.archive) {
        const copies = await collection.find({ _id: { $in: ids } }, { limit: ids.length, batchSize: ids.length, readPreference: 'primary' }).toArray();
        // by _id, replacing: a run interrupted between the copy and the delete copies them again
        // on the next run instead of failing on the archive's _id index
        const copy = (doc) => ({ replaceOne: { filter: { _id: doc._id }, replacement: doc, upsert: true } });
        if (copies.length > 0) await options.archive.bulkWrite(copies.map(copy), { writeConcern });
      }
      result.removed += (await collection.deleteMany({ _id: { $in: ids } }, { writeConcern })).deletedCount;
    }
    log(`[migrate] removed ${result.removed} duplicate(s)${options.archive ? ', archived first' : ''}`);
  }
  const pipeline = legacyToLeasehold(keyFields);
  for await (const docs of walk(collection, batchSize, { _id: 1, fence: 1 })) {
    const ids = docs.filter((d) => d.fence === undefined).map((d) => d._id);
    if (ids.length === 0) continue;
    // the guard makes a second run, or a run racing a first, change nothing twice
    const { modifiedCount } = await collection.updateMany({ _id: { $in: ids }, fence: { $exists: false } }, pipeline, { writeConcern });
    result.migrated += modifiedCount;
  }
  for (const name of options.legacyIndexes ?? [LEGACY_INDEX]) {
    try {
      await collection.dropIndex(name);
      result.droppedIndexes.push(name);
    } catch (error) {
      if (error?.codeName !== 'IndexNotFound' && error?.code !== 27) throw error;
    }
  }
  log(`[migrate] migrated ${result.migrated} document(s); dropped ${result.droppedIndexes.join(', ') || 'no index'}. Now call tracker.init() to create leasehold's indexes.`);
  return result;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      uri: { type: 'string', default: process.env.MONGODB_URI },
      db: { type: 'string' },
      collection: { type: 'string', default: 'partnerlogtrackers' },
      'dry-run': { type: 'boolean', default: false },
      duplicates: { type: 'string', default: 'fail' },
      archive: { type: 'string' },
      'batch-size': { type: 'string', default: '500' },
    },
  });
  if (!values.uri || !values.db) {
    console.error('usage: node scripts/migrate-partner-log-trackers.mjs --uri mongodb://... --db NAME [--collection partnerlogtrackers] [--dry-run] [--duplicates keep-most-advanced] [--archive NAME]');
    process.exit(2);
  }
  const { MongoClient } = await import('mongodb');
  const client = await MongoClient.connect(values.uri);
  try {
    const db = client.db(values.db);
    const result = await migratePartnerLogTrackers(db.collection(values.collection), {
      dryRun: values['dry-run'],
      duplicates: values.duplicates === 'keep-most-advanced' ? 'keep-most-advanced' : 'fail',
      batchSize: Number(values['batch-size']),
      ...(values.archive ? { archive: db.collection(values.archive) } : {}),
      log: (line) => console.log(line),
    });
    console.log(JSON.stringify({ ...result, duplicates: result.duplicates.length }));
  } finally {
    await client.close();
  }
}
