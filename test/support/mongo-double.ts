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
      await this.#turn('find', filter, options);
      return this.#select(filter, options.sort, options.limit).map((d) => project(structuredClone(d), options.projection));
    };
    return { toArray: run };
  }

  async deleteMany(filter: Document): Promise<{ deletedCount: number }> {
    await this.#turn('deleteMany', filter);
    const docs = new Set(this.#select(filter));
    const before = this.#docs.length;
    this.#docs.splice(0, this.#docs.length, ...this.#docs.filter((d) => !docs.has(d)));
    return { deletedCount: before - this.#docs.length };
  }

  async findOneAndUpdate(
    filter: Document,
    pipeline: Document[],
    options: { sort?: Record<string, 1 | -1>; upsert?: boolean; includeResultMetadata?: boolean; projection?: Document } = {},
  ): Promise<Document | null> {
    await this.#turn('findOneAndUpdate', filter, options);
    const [doc] = this.#select(filter, options.sort, 1);
    let value: Document | null = null;
    let updatedExisting = false;
    if (doc) {
      value = this.#replace(doc, this.#apply(doc, pipeline));
      updatedExisting = true;
    } else if (options.upsert) {
      // as a server does: the equality fields of the filter (dotted paths as subdocuments) seed the new document
      const seed: Document = { _id: this.#nextId++ };
      for (const [path, v] of Object.entries(filter)) {
        if (path.startsWith('$') || (typeof v === 'object' && v !== null && !(v instanceof Date))) continue;
        const parts = path.split('.');
        let at = seed;
        for (const part of parts.slice(0, -1)) at = (at[part] ??= {}) as Document;
        at[parts.at(-1)!] = v;
      }
      value = this.#insert(this.#apply(seed, pipeline));
    }
    const out = value && project(structuredClone(value), options.projection);
    return options.includeResultMetadata ? { value: out, lastErrorObject: { updatedExisting } } : out;
  }

  async updateMany(filter: Document, pipeline: Document[]): Promise<{ matchedCount: number; modifiedCount: number }> {
    await this.#turn('updateMany', filter);
    const docs = this.#select(filter);
    for (const doc of docs) this.#replace(doc, this.#apply(doc, pipeline));
    return { matchedCount: docs.length, modifiedCount: docs.length };
  }

  async bulkWrite(ops: Array<{ updateOne: { filter: Document; update: Document[] } }>): Promise<{ matchedCount: number }> {
    await this.#turn('bulkWrite', ops[0]?.updateOne.filter ?? {});
    let matchedCount = 0;
    for (const { updateOne } of ops) {
      const [doc] = this.#select(updateOne.filter, undefined, 1);
      if (!doc) continue;
      this.#replace(doc, this.#apply(doc, updateOne.update));
      matchedCount++;
    }
    return { matchedCount };
  }

  aggregate(pipeline: Document[], options: Document = {}) {
    return {
      toArray: async () => {
        await this.#turn('aggregate', {}, options);
        return new Aggregator(pipeline).run(this.#docs.map((d) => structuredClone(d))) as Document[];
      },
    };
  }

  /** Every method yields once first, so that concurrent callers interleave between commands. */
  async #turn(name: string, _filter: Document = {}, _options: Document = {}): Promise<void> {
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
      const clash = this.#docs.find((d) => d._id !== self && fields.every((f) => sameValue(getPath(d, f), getPath(doc, f))));
      if (clash) throw Object.assign(new Error(`E11000 duplicate key error (${fields.join(', ')})`), { code: 11000 });
    }
  }
}

function getPath(doc: Document, path: string): unknown {
  return path.split('.').reduce<unknown>((at, part) => (at && typeof at === 'object' ? (at as Document)[part] : undefined), doc);
}

/** Applies an inclusion (`{ _id: 1 }`) or exclusion (`{ data: 0 }`) projection. */
function project(doc: Document, projection: Document | undefined): Document {
  if (!projection) return doc;
  const entries = Object.entries(projection);
  if (entries.every(([, v]) => v === 0)) {
    for (const [k] of entries) delete doc[k];
    return doc;
  }
  return Object.fromEntries(Object.entries(doc).filter(([k]) => k === '_id' || projection[k] === 1));
}

function sameValue(a: unknown, b: unknown): boolean {
  return a instanceof Date && b instanceof Date ? a.getTime() === b.getTime() : a === b;
}
