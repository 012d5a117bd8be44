import { Aggregator, find } from 'mingo';
import type { Document } from 'mongodb';

/**
 * An in-process stand-in for the few `Collection` methods MongoStore calls, for machines that
 * cannot run `mongod`. Queries, sorts, pipeline updates (`$$NOW` included) and aggregations are
 * evaluated by mingo, an implementation of the MongoDB query language; each method runs
 * atomically, as a single-document (or per-document) operation does on a server. It lives in
 * test/ only and is never shipped.
 */
export class CollectionDouble {
  readonly #docs: Document[] = [];
  readonly #unique: string[][] = [];
  #nextId = 1;
  /** Methods called so far (the double's "commands"). */
  readonly calls: string[] = [];

  async createIndex(spec: Record<string, 1 | -1>, options: { unique?: boolean } = {}): Promise<string> {
    await this.#turn('createIndex');
    if (options.unique) this.#unique.push(Object.keys(spec));
    return Object.keys(spec).join('_');
  }

  find(filter: Document, options: { sort?: Record<string, 1 | -1>; limit?: number; projection?: Document } = {}) {
    const run = async () => {
      await this.#turn('find');
      return this.#select(filter, options.sort, options.limit).map((d) => structuredClone(d));
    };
    return { toArray: run };
  }

  async findOneAndUpdate(
    filter: Document,
    pipeline: Document[],
    options: { sort?: Record<string, 1 | -1>; upsert?: boolean; includeResultMetadata?: boolean } = {},
  ): Promise<Document | null> {
    await this.#turn('findOneAndUpdate');
    const [doc] = this.#select(filter, options.sort, 1);
    let value: Document | null = null;
    let updatedExisting = false;
    if (doc) {
      value = this.#replace(doc, this.#apply(doc, pipeline));
      updatedExisting = true;
    } else if (options.upsert) {
      const seed = Object.fromEntries(Object.entries(filter).filter(([k, v]) => !k.startsWith('$') && (typeof v !== 'object' || v instanceof Date)));
      value = this.#insert(this.#apply({ _id: this.#nextId++, ...seed }, pipeline));
    }
    const out = value && structuredClone(value);
    return options.includeResultMetadata ? { value: out, lastErrorObject: { updatedExisting } } : out;
  }

  async updateMany(filter: Document, pipeline: Document[]): Promise<{ matchedCount: number; modifiedCount: number }> {
    await this.#turn('updateMany');
    const docs = this.#select(filter);
    for (const doc of docs) this.#replace(doc, this.#apply(doc, pipeline));
    return { matchedCount: docs.length, modifiedCount: docs.length };
  }

  async bulkWrite(ops: Array<{ updateOne: { filter: Document; update: Document[] } }>): Promise<{ matchedCount: number }> {
    await this.#turn('bulkWrite');
    let matchedCount = 0;
    for (const { updateOne } of ops) {
      const [doc] = this.#select(updateOne.filter, undefined, 1);
      if (!doc) continue;
      this.#replace(doc, this.#apply(doc, updateOne.update));
      matchedCount++;
    }
    return { matchedCount };
  }

  aggregate(pipeline: Document[]) {
    return {
      toArray: async () => {
        await this.#turn('aggregate');
        return new Aggregator(pipeline).run(this.#docs.map((d) => structuredClone(d))) as Document[];
      },
    };
  }

  /** Every method yields once first, so that concurrent callers interleave between commands. */
  async #turn(name: string): Promise<void> {
    this.calls.push(name);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  #select(filter: Document, sort?: Record<string, 1 | -1>, limit?: number): Document[] {
    let cursor = find(this.#docs, filter).sort(sort ?? { _id: 1 });
    if (limit) cursor = cursor.limit(limit);
    // mingo returns the stored objects; map back to them by _id
    return cursor.all().map((d) => this.#docs.find((x) => x._id === (d as Document)._id)!);
  }

  #apply(doc: Document, pipeline: Document[]): Document {
    return new Aggregator(pipeline).run([structuredClone(doc)])[0] as Document;
  }

  #insert(doc: Document): Document {
    this.#checkUnique(doc, undefined);
    this.#docs.push(doc);
    return doc;
  }

  #replace(old: Document, next: Document): Document {
    this.#checkUnique(next, old._id);
    this.#docs[this.#docs.indexOf(old)] = next;
    return next;
  }

  #checkUnique(doc: Document, self: unknown): void {
    for (const fields of this.#unique) {
      const clash = this.#docs.find((d) => d._id !== self && fields.every((f) => sameValue(d[f], doc[f])));
      if (clash) throw Object.assign(new Error(`E11000 duplicate key error (${fields.join(', ')})`), { code: 11000 });
    }
  }
}

function sameValue(a: unknown, b: unknown): boolean {
  return a instanceof Date && b instanceof Date ? a.getTime() === b.getTime() : a === b;
}
