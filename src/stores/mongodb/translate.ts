/**
 * How {@link MongoStore} says the store interface's conditions and changes in MongoDB's query
 * and update language, and reads a document back as a stored item. Pure functions of their
 * arguments: values only ever reach the server as values (`$literal` in update pipelines), never
 * as operators. Internal.
 * @module
 */
import type { Document, Filter } from 'mongodb';
import { ConfigError } from '../../errors.js';
import type { Change, Condition, KeyValues, NewItem, StoredItem, UpdateOptions } from '../../store.js';

/** A value the update pipeline must take as it is (a string starting with `$` is not a field path). */
export const lit = (value: unknown) => ({ $literal: value });

/** The filter of a condition; `keys` are the key fields (needed when the condition has a key). */
export function toFilter(cond: Partial<Condition>, keys: readonly string[]): Filter<Document> {
  // with a ref the _id names the document and the key only targets a shard: a stored key that
  // lacks a field (a hand-made or legacy document) must not make its own lease unsettleable
  const filter: Document = cond.key ? keyFilter(cond.key, keys, cond.ref !== undefined) : {};
  if (cond.ref !== undefined) filter._id = cond.ref;
  const status: Document = {};
  if (cond.status && cond.status.length > 0) status.$in = [...cond.status];
  if (cond.notStatus && cond.notStatus.length > 0) status.$nin = [...cond.notStatus];
  if (Object.keys(status).length > 0) filter.status = status;
  if (cond.stage !== undefined) filter.stage = cond.stage;
  // $nin also matches a null or missing stage
  else if (cond.notStage && cond.notStage.length > 0) filter.stage = { $nin: [...cond.notStage] };
  if (cond.fence !== undefined) filter.fence = cond.fence;
  if (cond.deadline === 'passed') filter.$expr = { $lte: ['$deadline', '$$NOW'] };
  else if (cond.deadline === 'future') filter.$expr = { $gt: ['$deadline', '$$NOW'] };
  else if (cond.deadline?.before instanceof Date) filter.deadline = { $lt: cond.deadline.before };
  else if (cond.deadline) filter.$expr = { $lt: ['$deadline', { $add: ['$$NOW', cond.deadline.before.ms] }] };
  return filter;
}

/**
 * `{ 'key.<field>': value }` for each key field. With `beside` (the condition also names the
 * document by `_id`), a field whose stored value is not a scalar is left out instead of refused.
 */
export function keyFilter(key: KeyValues, keys: readonly string[], beside = false): Document {
  // the Tracker already rejects non-scalars; a store used directly must not pass operators either
  return Object.fromEntries(
    keys.flatMap((k) => {
      const value = key[k];
      const scalar = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || value instanceof Date;
      if (scalar) return [[`key.${k}`, value]];
      if (beside) return [];
      throw new ConfigError(`key.${k}`, `[mongodb] key values must be scalars (string, number, boolean, Date), got \`${typeof value}\`: pass the key as the Tracker validates it; operator objects are never sent.`);
    }),
  );
}

/**
 * Whether a document an update returned may still match `cond`, judged by its status and fence
 * alone: `false` only where it cannot.
 */
export function mayMatch(cond: Partial<Condition>, doc: Document): boolean {
  if (cond.status && cond.status.length > 0 && !cond.status.includes(doc.status)) return false;
  if (cond.notStatus?.includes(doc.status)) return false;
  return cond.fence === undefined || doc.fence === cond.fence;
}

/**
 * The document field an update asked for {@link UpdateOptions.priorDeadline} copies the deadline
 * into, in the same command: `findOneAndUpdate` can answer with the document as it is after the
 * update or before it, never both, so the old deadline has to be in the new document. It stays
 * there (the deadline before the last such update: a claim while something listens to
 * `claimed`); the store reads it only from that update's own answer, never into an item.
 */
export const PRIOR_DEADLINE = 'priorDeadline';

/**
 * The update pipeline of a change: times from the server (`$$NOW`), values as literals. With
 * `priorDeadline`, it also copies the deadline from before the change into {@link PRIOR_DEADLINE}:
 * within one `$set` stage every `$field` is read from the document as the stage received it.
 */
export function updatePipeline(change: Change, priorDeadline = false): Document[] {
  const $set: Document = { updatedAt: '$$NOW' };
  if (priorDeadline) $set[PRIOR_DEADLINE] = '$deadline';
  if (change.status !== undefined) $set.status = lit(change.status);
  if (change.stage !== undefined) $set.stage = lit(change.stage);
  if (change.owner !== undefined) $set.owner = lit(change.owner);
  if (change.bumpFence) $set.fence = { $add: ['$fence', 1] };
  if (change.attempts === 'increment') Object.assign($set, { attempts: { $add: ['$attempts', 1] }, claimedAt: '$$NOW' });
  if (change.attempts === 'decrement') $set.attempts = { $max: [{ $subtract: ['$attempts', 1] }, 0] };
  if (change.attempts === 'reset') $set.attempts = 0;
  if (change.deadline) $set.deadline = 'at' in change.deadline ? lit(change.deadline.at) : { $add: ['$$NOW', change.deadline.ms] };
  if (change.data !== undefined) $set.data = lit(change.data);
  if (change.lastError !== undefined) $set.lastError = lit(change.lastError);
  if (change.finished !== undefined) $set.finishedAt = change.finished ? '$$NOW' : null;
  return [{ $set }];
}

/**
 * The answer of an update as a stored item; with `priorDeadline`, the update copied the deadline
 * from before it into {@link PRIOR_DEADLINE} (see {@link updatePipeline}) and the item carries it.
 */
export function toUpdatedItem(keys: readonly string[], doc: Document, priorDeadline = false): StoredItem {
  const item = toStoredItem(keys, doc);
  return priorDeadline ? Object.assign(item, { priorDeadline: doc[PRIOR_DEADLINE] as Date }) : item;
}

/** A document as a stored item, its key in the order of `keys` (never {@link PRIOR_DEADLINE}). */
export function toStoredItem(keys: readonly string[], doc: Document): StoredItem {
  const key = (doc.key ?? {}) as Record<string, unknown>;
  return {
    ref: doc._id,
    key: Object.fromEntries(keys.map((k) => [k, key[k]])) as KeyValues,
    status: doc.status,
    stage: doc.stage ?? null,
    data: doc.data,
    attempts: doc.attempts,
    fence: doc.fence,
    owner: doc.owner ?? null,
    deadline: doc.deadline,
    lastError: doc.lastError ?? null,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    claimedAt: doc.claimedAt ?? null,
    finishedAt: doc.finishedAt ?? null,
  };
}

/**
 * The update of an insert-if-absent (an upsert on the key): an upsert's new document holds only
 * `_id` and the key, so every field is set there, and an existing item keeps each of its own, a
 * stored `null` included.
 */
export function insertPipeline(item: NewItem): Document[] {
  const created = { $eq: [{ $type: '$status' }, 'missing'] };
  const fill = (field: string, value: unknown) => ({ [field]: { $cond: [created, value, `$${field}`] } });
  const deadline = !item.deadline ? '$$NOW' : 'at' in item.deadline ? lit(item.deadline.at) : { $add: ['$$NOW', item.deadline.ms] };
  return [
    {
      $set: {
        ...fill('key', lit(item.key)),
        ...fill('status', lit(item.status)),
        ...fill('stage', null),
        ...fill('data', lit(item.data)),
        ...fill('attempts', 0),
        ...fill('fence', 0),
        ...fill('owner', null),
        ...fill('deadline', deadline),
        ...fill('lastError', null),
        ...fill('createdAt', '$$NOW'),
        ...fill('updatedAt', '$$NOW'),
        ...fill('claimedAt', null),
        ...fill('finishedAt', null),
      },
    },
  ];
}
