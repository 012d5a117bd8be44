import type { Collection, Document } from 'mongodb';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Tracker } from '../src/index.js';
import { MongoStore, type MongoCollection } from '../src/stores/mongodb.js';
import { LEGACY_INDEX, LEGACY_OWNER, migratePartnerLogTrackers } from '../scripts/migrate-partner-log-trackers.mjs';
import { CollectionDouble } from './support/mongo-double.js';

// The migration runs on the in-process double: its index check holds the script to the same
// rule as the store (every command served by an index), and the Tracker then runs on the result.

const minutesAgo = (m: number) => new Date(Date.now() - m * 60_000);

/** Documents as the original hand-rolled PartnerLogTracker model left them (Mongoose timestamps and `__v`). */
function legacy(logId: string, status: string, extra: Document = {}): Document {
  return { logId, partnerCode: 'acme', aircraftId: 'N123', customerId: 'c9', status, createdAt: minutesAgo(60), updatedAt: minutesAgo(30), __v: 0, ...extra };
}

/** The partner-log Tracker of DESIGN.md, on the migrated collection. */
function partnerLogs(collection: CollectionDouble) {
  return new Tracker({
    store: new MongoStore({ collection: collection as unknown as MongoCollection }),
    statuses: ['pending', 'downloading', 'downloaded', 'processing', 'processed', 'failed'] as const,
    initial: 'pending',
    key: z.object({ logId: z.string(), partnerCode: z.string(), aircraftId: z.string(), customerId: z.string() }),
    data: z.object({ localFilePath: z.string().optional(), bytes: z.number().optional() }),
    stages: {
      download: { from: 'pending', active: 'downloading', done: 'downloaded', failed: 'failed' },
      process: { from: 'downloaded', active: 'processing', done: 'processed', failed: 'failed' },
    },
    lease: { ttlMs: 30_000 },
    retry: { maxAttempts: 5, backoff: () => 0 },
  });
}

const key = (logId: string) => ({ logId, partnerCode: 'acme', aircraftId: 'N123', customerId: 'c9' });
const asCollection = (d: CollectionDouble) => d as unknown as Collection<Document>;

async function legacyCollection(docs: Document[]): Promise<CollectionDouble> {
  const double = new CollectionDouble();
  double.admin.insertMany(docs);
  await double.createIndex({ logId: 1, partnerCode: 1, aircraftId: 1, customerId: 1, status: 1 }, { name: LEGACY_INDEX });
  return double;
}

describe('scripts/migrate-partner-log-trackers.mjs', () => {
  it('moves the original documents into leasehold\'s shape; a Tracker then reaps what old workers held and drains everything', async () => {
    const double = await legacyCollection([
      legacy('L1', 'pending', { retryCount: 0 }),
      legacy('L2', 'downloading', { updatedAt: minutesAgo(10) }),
      legacy('L3', 'downloaded', { localFilePath: '/var/logs/L3.bin', enqueuedAt: minutesAgo(29) }),
      legacy('L4', 'processing', { localFilePath: '/var/logs/L4.bin', processingStartedAt: minutesAgo(5), retryCount: 2 }),
      legacy('L5', 'processed', { localFilePath: '/var/logs/L5.bin', processed: true, retryCount: 1 }),
      legacy('L6', 'failed', { localFilePath: '/var/logs/L6.bin', errorMessage: 'parse error at byte 12', retryCount: 3 }),
      legacy('L7', 'failed', { errorMessage: 'partner 503' }),
    ]);
    const result = await migratePartnerLogTrackers(asCollection(double));
    expect(result).toMatchObject({ scanned: 7, legacy: 7, migrated: 7, duplicates: [], removed: 0, droppedIndexes: [LEGACY_INDEX] });

    const [l4] = double.admin.find({ 'key.logId': 'L4' });
    expect(l4).toMatchObject({ key: key('L4'), status: 'processing', stage: 'process', data: { localFilePath: '/var/logs/L4.bin' }, attempts: 2, fence: 0, owner: LEGACY_OWNER, lastError: null, finishedAt: null, __v: 0 });
    expect(l4!.deadline.getTime()).toBeLessThan(Date.now());
    for (const field of ['logId', 'partnerCode', 'aircraftId', 'customerId', 'localFilePath', 'processingStartedAt', 'errorMessage', 'retryCount', 'processed', 'enqueuedAt']) {
      expect(l4).not.toHaveProperty(field);
    }
    expect(double.admin.find({ 'key.logId': 'L6' })[0]).toMatchObject({ status: 'failed', stage: 'process', lastError: 'parse error at byte 12', attempts: 3 });
    expect(double.admin.find({ 'key.logId': 'L7' })[0]).toMatchObject({ status: 'failed', stage: 'download', lastError: 'partner 503', data: {} });
    expect(double.admin.find({ 'key.logId': 'L1' })[0]).toMatchObject({ status: 'pending', stage: null, attempts: 0, owner: null, data: {} });

    const logs = partnerLogs(double);
    await logs.init();
    expect(double.indexes.map((i) => i.name)).toEqual(['_id_', 'leasehold_key', 'leasehold_status_deadline']);
    const before = await logs.stats();
    expect(before.byStatus).toEqual({ pending: 1, downloading: 1, downloaded: 1, processing: 1, processed: 1, failed: 2 });
    expect(before.expiredLeases).toBe(2);
    expect(await logs.get(key('L3'))).toMatchObject({ status: 'downloaded', data: { localFilePath: '/var/logs/L3.bin' } });

    // what the stopped workers held is handed on as a failed attempt
    const reaped: Array<{ key: unknown; owner: string }> = [];
    logs.on('reaped', (e) => reaped.push({ key: e.key, owner: e.owner }));
    expect(await logs.reapStale()).toEqual({ retried: 2, failed: 0 });
    expect(reaped).toEqual(expect.arrayContaining([{ key: key('L2'), owner: LEGACY_OWNER }, { key: key('L4'), owner: LEGACY_OWNER }]));
    expect(await logs.get(key('L4'))).toMatchObject({ status: 'downloaded', lastError: 'lease expired', fence: 1 });

    const downloaded: string[] = [];
    for (let lease = await logs.claim('download', { owner: 'w' }); lease; lease = await logs.claim('download', { owner: 'w' })) {
      downloaded.push(lease.key.logId);
      await logs.complete(lease, { data: { localFilePath: `/var/logs/${lease.key.logId}.bin`, bytes: 10 } });
    }
    expect(downloaded.sort()).toEqual(['L1', 'L2']);
    const processed: string[] = [];
    for (let lease = await logs.claim('process', { owner: 'w' }); lease; lease = await logs.claim('process', { owner: 'w' })) {
      processed.push(lease.key.logId);
      expect(lease.item.data.localFilePath).toBe(`/var/logs/${lease.key.logId}.bin`);
      await logs.complete(lease);
    }
    expect(processed.sort()).toEqual(['L1', 'L2', 'L3', 'L4']);
    expect((await logs.stats()).byStatus).toMatchObject({ processed: 5, failed: 2, pending: 0, downloading: 0, downloaded: 0, processing: 0 });
    // a parked item remembers its stage: an operator retry sends it back to where it failed
    expect(await logs.retry(key('L6'))).toMatchObject({ status: 'downloaded', attempts: 0 });
    expect(await logs.retry(key('L7'))).toMatchObject({ status: 'pending' });

    // a second run changes nothing
    expect(await migratePartnerLogTrackers(asCollection(double))).toMatchObject({ scanned: 7, legacy: 0, migrated: 0, droppedIndexes: [] });
  });

  it('refuses keys held by several documents unless asked to keep the most advanced one (archived first)', async () => {
    const double = await legacyCollection([
      legacy('D1', 'failed', { errorMessage: 'old failure' }),
      legacy('D1', 'processed', { localFilePath: '/var/logs/D1.bin', processed: true }),
      legacy('D1', 'pending'),
      legacy('D2', 'pending'),
    ]);
    const error = await migratePartnerLogTrackers(asCollection(double)).catch((e: unknown) => e);
    expect(String(error)).toMatch(/2 document\(s\) share a key .*\["D1","acme","N123","c9"\].*keep-most-advanced/);
    expect(double.admin.find({ fence: { $exists: true } })).toEqual([]);
    expect(await migratePartnerLogTrackers(asCollection(double), { dryRun: true })).toMatchObject({ scanned: 4, migrated: 0, byStatus: { failed: 1, processed: 1, pending: 2 } });

    const archive = new CollectionDouble();
    const result = await migratePartnerLogTrackers(asCollection(double), { duplicates: 'keep-most-advanced', archive: asCollection(archive) });
    expect(result).toMatchObject({ removed: 2, migrated: 2 });
    expect(archive.admin.find().map((d) => d.status).sort()).toEqual(['failed', 'pending']);
    const logs = partnerLogs(double);
    await logs.init();
    expect(await logs.get(key('D1'))).toMatchObject({ status: 'processed', data: { localFilePath: '/var/logs/D1.bin' } });
    expect((await logs.claim('download', { owner: 'w' }))?.key).toEqual(key('D2'));
  });

  it('an archiving run interrupted between the copy and the delete is simply run again', async () => {
    const double = await legacyCollection([legacy('D1', 'failed'), legacy('D1', 'processed'), legacy('D1', 'pending'), legacy('D2', 'pending')]);
    const archive = new CollectionDouble('archive');
    const options = { duplicates: 'keep-most-advanced', archive: asCollection(archive) } as const;
    double.failNext('deleteMany', Object.assign(new Error('connection reset'), { name: 'MongoNetworkError' }));
    await expect(migratePartnerLogTrackers(asCollection(double), options)).rejects.toThrow('connection reset');
    expect(archive.admin.find()).toHaveLength(2);
    // the archive's _id index would refuse a second insert of the same copies
    expect(await migratePartnerLogTrackers(asCollection(double), options)).toMatchObject({ removed: 2, migrated: 2 });
    expect(archive.admin.find().map((d) => d.status).sort()).toEqual(['failed', 'pending']);
    expect(await migratePartnerLogTrackers(asCollection(double), options)).toMatchObject({ scanned: 2, removed: 0, migrated: 0 });
  });

  it('reports documents with a key field missing or null in the dry run, and refuses to migrate them', async () => {
    const without = (doc: Document, field: string) => Object.fromEntries(Object.entries(doc).filter(([f]) => f !== field));
    const double = await legacyCollection([without(legacy('K1', 'downloading'), 'customerId'), legacy('K2', 'pending', { aircraftId: null }), legacy('K3', 'pending')]);
    const dry = await migratePartnerLogTrackers(asCollection(double), { dryRun: true });
    expect(dry).toMatchObject({
      scanned: 3,
      incompleteKeys: [
        { status: 'downloading', missing: ['customerId'], migrated: false },
        { status: 'pending', missing: ['aircraftId'], migrated: false },
      ],
    });
    const error = await migratePartnerLogTrackers(asCollection(double)).catch((e: unknown) => e);
    expect(String(error)).toMatch(/2 document\(s\) have a key field missing or null .*\(downloading, no customerId\).*\(pending, no aircraftId\).*Nothing was changed/);
    expect(double.admin.find({ fence: { $exists: true } })).toEqual([]);
  });

  it('a Tracker on the unmigrated collection cannot start: the unique key index refuses what the old index allowed', async () => {
    const double = await legacyCollection([legacy('X', 'pending'), legacy('X', 'processed')]);
    await migratePartnerLogTrackers(asCollection(double), { dryRun: true });
    // without the migration every document lacks `key`: they all collide on the unique index
    await expect(partnerLogs(double).init()).rejects.toThrow(/duplicate key/);
  });
});
