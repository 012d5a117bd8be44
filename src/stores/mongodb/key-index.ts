/**
 * The unique key index `leasehold_key`, and what `init` does when the collection already has one
 * on other key fields (the Tracker's key was reordered, or a field added or removed). Internal.
 * @module
 */
import type { Collection, Document } from 'mongodb';
import { StoreError } from '../../errors.js';

/** The name of the unique index on the key fields. */
export const KEY_INDEX = 'leasehold_key';
/** The name the documented change of key fields gives the index that keeps keys unique meanwhile. */
export const NEXT_KEY_INDEX = 'leasehold_key_next';

/** What creating the key index needs of a collection; `listIndexes` tells a reorder from a change. */
export type KeyIndexCollection = Pick<Collection<Document>, 'createIndex'> & Partial<Pick<Collection<Document>, 'listIndexes' | 'namespace'>>;

/**
 * A server's refusal of an index whose name exists with another key spec (IndexKeySpecsConflict),
 * or with the same key and other options (IndexOptionsConflict).
 */
const specConflict = (error: unknown): boolean => {
  const e = error as { code?: unknown; codeName?: unknown } | null;
  return isKeySpecConflict(error) || e?.code === 85 || e?.codeName === 'IndexOptionsConflict';
};

/** IndexKeySpecsConflict: the name exists with another key spec. */
const isKeySpecConflict = (error: unknown): boolean => {
  const e = error as { code?: unknown; codeName?: unknown } | null;
  return e?.code === 86 || e?.codeName === 'IndexKeySpecsConflict';
};

/**
 * Creates `leasehold_key` on `key.<field>` for each key field, in declaration order. An existing
 * `leasehold_key` on the same fields in another order is kept: it makes the same keys unique and
 * serves the same lookups. One on other fields is not replaced: a unique index decides which
 * items are one, items tracked under the old key may collide under the new, and processes still
 * running the old definition rely on it. `init` then fails, saying how to change it safely.
 */
export async function ensureKeyIndex(collection: KeyIndexCollection, keys: readonly string[]): Promise<void> {
  const spec = Object.fromEntries(keys.map((k) => [`key.${k}`, 1]));
  try {
    await collection.createIndex(spec, { name: KEY_INDEX, unique: true });
    return;
  } catch (error) {
    if (!specConflict(error)) throw error;
    const listed = await listedKeyIndex(collection).catch(() => undefined);
    const wanted = Object.keys(spec);
    if (!listed) {
      // no `leasehold_key` at all: the key fields are indexed under another name (IndexOptionsConflict,
      // "Index already exists with a different name"), and the server's message names that index
      if (!isKeySpecConflict(error)) throw error;
      throw schemaError(changeAdvice(collection, wanted, undefined), error);
    }
    const existing = asKeyIndex(listed);
    // only a plain unique index keeps every key unique: a partial, sparse or collated one (or one
    // that is not unique) would let a key be tracked twice
    if (plain(listed, true) && holds(existing, wanted)) return;
    throw schemaError(sameFields(existing.fields, wanted) ? optionsAdvice(collection, listed) : changeAdvice(collection, wanted, existing.fields), error);
  }
}

interface KeyIndex {
  readonly fields: string[];
  readonly unique: boolean;
}

const asKeyIndex = (index: Document): KeyIndex => ({ fields: Object.keys(index.key as Document), unique: index.unique === true });

/** Whether two lists name the same fields, in any order. */
const sameFields = (fields: readonly string[], wanted: readonly string[]): boolean => fields.length === wanted.length && wanted.every((f) => fields.includes(f));

/** Whether an existing key index serves `wanted`: unique, on the same fields in any order. */
const holds = (index: KeyIndex, wanted: readonly string[]): boolean => index.unique && sameFields(index.fields, wanted);

async function listedKeyIndex(collection: KeyIndexCollection): Promise<Document | undefined> {
  if (typeof collection.listIndexes !== 'function') return undefined;
  return (await collection.listIndexes().toArray()).find((i) => i.name === KEY_INDEX);
}

/** The name of the index serving claim-next (status, then deadline order), backoff, reap and purge. */
export const STATUS_INDEX = 'leasehold_status_deadline';
const STATUS_SPEC = { status: 1, deadline: 1, _id: 1 } as const;

/** Whether an index has exactly this key pattern, in this order. */
const samePattern = (key: Document, spec: Readonly<Record<string, number>>): boolean =>
  JSON.stringify(Object.entries(key)) === JSON.stringify(Object.entries(spec));

/**
 * Whether a listed index is a plain one: no option but those `init` gives (`unique` where
 * allowed). An index with any other option (hidden, partial, sparse, a collation, a TTL) is left
 * to `createIndex`, so that the server refuses it as before rather than `init` accepting an index
 * that claim-next or key lookups cannot use.
 */
const plain = (index: Document, unique: boolean): boolean => optionsOf(index).every((field) => unique && field === 'unique');

/** The fields of a listed index beyond its version, key, name and namespace: its options. */
const optionsOf = (index: Document): string[] => Object.keys(index).filter((field) => !['v', 'key', 'name', 'ns'].includes(field));

/** A refusal of the collection's indexes or options at `init`. */
const schemaError = (message: string, cause?: unknown): StoreError =>
  new StoreError({ operation: 'init', store: 'mongodb', failure: 'schema', cause: new Error(message, cause === undefined ? undefined : { cause }) });

/** The collection's name for the shell commands in messages. */
const shellName = (collection: KeyIndexCollection): string => collection.namespace?.split('.').slice(1).join('.') || 'COLLECTION';

/**
 * Creates the two indexes leasehold needs where they are missing: `leasehold_key` (see
 * {@link ensureKeyIndex}) and `leasehold_status_deadline`. Those already there, as `listIndexes`
 * shows them, are not created again, so that `init` on a set-up collection sends no
 * `createIndex`: a user whose role may only read (the `read` role lists indexes) can open it for
 * `leasehold stats`, `find` or a dashboard. Only a plain index counts as there (see `plain`);
 * where the indexes cannot be listed (no collection yet, or a `Collection` subset without
 * `listIndexes`), both are created as before.
 */
export async function ensureIndexes(collection: KeyIndexCollection, keys: readonly string[]): Promise<void> {
  const present = typeof collection.listIndexes === 'function' ? await collection.listIndexes().toArray().catch(() => undefined) : undefined;
  refuseCollation(collection, present);
  const listedKey = present?.find((i) => i.name === KEY_INDEX);
  const keyIndex = listedKey && plain(listedKey, true) ? asKeyIndex(listedKey) : undefined;
  if (!keyIndex || !holds(keyIndex, keys.map((k) => `key.${k}`))) await ensureKeyIndex(collection, keys);
  if (!present?.some((i) => i.name === STATUS_INDEX && plain(i, false) && samePattern(i.key as Document, STATUS_SPEC))) {
    await collection.createIndex({ ...STATUS_SPEC }, { name: STATUS_INDEX });
  }
}

/**
 * Refuses a collection with a default collation other than `simple`, which every index of it
 * (`_id_` included, where `listIndexes` shows it) and every query inherits: keys, statuses and
 * stages would compare by it (case-insensitively, say), so two keys leasehold tells apart would
 * be one item.
 */
function refuseCollation(collection: KeyIndexCollection, present: Document[] | undefined): void {
  const collation = present?.find((i) => i.name === '_id_')?.collation as Document | undefined;
  if (!collation || collation.locale === 'simple') return;
  const name = collection.namespace ?? 'the collection';
  const shown = Object.entries(collation)
    .filter(([field]) => ['locale', 'strength', 'caseLevel', 'numericOrdering'].includes(field))
    .map(([field, value]) => `${field}: ${JSON.stringify(value)}`)
    .join(', ');
  throw schemaError(
    `[mongodb] \`${name}\` has a default collation ({ ${shown} }), which its indexes and queries inherit: keys, statuses and stages would compare by it (two keys that differ only in case could be one item). ` +
      'Use a collection without a default collation (created without `collation`, or with `{ locale: "simple" }`).',
  );
}

/** The message of a key index on the key fields with other options: which, and what to do. */
function optionsAdvice(collection: KeyIndexCollection, index: Document): string {
  const name = shellName(collection);
  const options = optionsOf(index).filter((field) => field !== 'unique');
  const what = [index.unique === true ? '' : 'it is not unique', options.length ? `it has ${options.map((o) => `\`${o}\``).join(', ')}` : ''].filter(Boolean).join(', and ');
  return (
    `[mongodb] the index \`${KEY_INDEX}\` exists on the key fields, but ${what}: leasehold needs it unique with no other option, ` +
    'or a key could be tracked twice. With the workers stopped, drop it ' +
    `(\`db.getCollection(${JSON.stringify(name)}).dropIndex('${KEY_INDEX}')\`) and run \`tracker.init()\`, which creates it (it fails if items repeat a key: resolve them first)`
  );
}

/** The message of a key index on other fields: what differs, and the commands that change it. */
function changeAdvice(collection: KeyIndexCollection, wanted: readonly string[], existing: readonly string[] | undefined): string {
  const db = `db.getCollection(${JSON.stringify(shellName(collection))})`;
  const fields = (list: readonly string[]) => list.map((f) => f.replace(/^key\./, '')).join(', ');
  // the last field descending: the same uniqueness, but a key pattern of its own, so that it
  // can exist beside `leasehold_key` before and after the swap
  const next = `{ ${wanted.map((f, i) => `${JSON.stringify(f)}: ${i === wanted.length - 1 ? -1 : 1}`).join(', ')} }`;
  return (
    `[mongodb] the unique index \`${KEY_INDEX}\` exists with other key fields (IndexKeySpecsConflict): ` +
    `${existing ? `it has (${fields(existing)})` : 'its key differs'}, the Tracker declares (${fields(wanted)}). ` +
    'leasehold does not replace a unique index by itself. With the workers of the old definition stopped, replace it so that keys stay unique throughout: ' +
    `\`${db}.createIndex(${next}, { name: '${NEXT_KEY_INDEX}', unique: true })\` (it fails if items collide under the new key: resolve them first), ` +
    `\`${db}.dropIndex('${KEY_INDEX}')\`, then \`tracker.init()\` (it creates \`${KEY_INDEX}\` on the new fields), then \`${db}.dropIndex('${NEXT_KEY_INDEX}')\`. ` +
    'See docs/stores/mongodb.md, "Changing the key fields"'
  );
}
