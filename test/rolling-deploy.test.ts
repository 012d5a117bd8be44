// Two versions of one definition at once on one store: what a rolling deploy (or a rollback)
// runs for a while. Each version is a Tracker of its own over the same store, as two processes
// of different builds would be.
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryStore } from '../src/stores/memory.js';
import { Tracker, ValidationError } from '../src/index.js';

const statuses = ['new', 'busy', 'done', 'failed'] as const;

function version<D extends z.ZodType>(store: MemoryStore, data: D) {
  return new Tracker({
    store,
    statuses,
    initial: 'new',
    key: z.object({ id: z.string() }),
    data,
    stages: { run: { from: 'new', active: 'busy', done: 'done', failed: 'failed' } },
  });
}

describe('data fields one version declares survive the writes of a version that does not', () => {
  const v1Data = z.object({ url: z.string(), bytes: z.number().optional() });
  const v2Data = z.object({ url: z.string(), bytes: z.number().optional(), checksum: z.string().optional() });

  it('a complete with a data patch keeps the fields its schema strips', async () => {
    const store = new MemoryStore();
    const [v1, v2] = [version(store, v1Data), version(store, v2Data)];
    await v2.track({ id: 'a' }, { url: 'u', checksum: 'sha256:abc' });
    const lease = (await v1.claim('run', { owner: 'old', key: { id: 'a' } }))!;
    // what the old version reads and returns is its own shape
    expect(lease.item.data).toEqual({ url: 'u' });
    const done = await v1.complete(lease, { data: { bytes: 5 } });
    expect(done.data).toEqual({ url: 'u', bytes: 5 });
    expect((await v2.get({ id: 'a' }))!.data).toEqual({ url: 'u', bytes: 5, checksum: 'sha256:abc' });
  });

  it('a worker returning a data patch keeps them too', async () => {
    const store = new MemoryStore();
    const [v1, v2] = [version(store, v1Data), version(store, v2Data)];
    await v2.track({ id: 'b' }, { url: 'u', checksum: 'c' });
    const worker = v1.work('run', async () => ({ data: { bytes: 7 } }), { reapIntervalMs: false });
    await worker.drain();
    await worker.stop();
    expect((await v2.get({ id: 'b' }))!).toMatchObject({ status: 'done', data: { url: 'u', bytes: 7, checksum: 'c' } });
  });

  it('a field the schema declares is never brought back: a union variant left behind stays stripped', async () => {
    const store = new MemoryStore();
    // a member that is no object, wrapped (optional): it declares nothing, and the others still count
    const tracker = version(store, z.union([z.object({ kind: z.literal('url'), url: z.string() }), z.object({ kind: z.literal('file'), path: z.string() }), z.string().optional()]));
    await tracker.track({ id: 'u' }, { kind: 'url', url: 'https://old.example/stale' });
    await tracker.complete((await tracker.claim('run', { owner: 'w', key: { id: 'u' } }))!, { data: { kind: 'file', path: '/tmp/f' } });
    expect((await tracker.get({ id: 'u' }))!.data).toEqual({ kind: 'file', path: '/tmp/f' });
    const raw = await store.find({ key: { id: 'u' } }, { limit: 1 });
    expect(raw[0]!.data).toEqual({ kind: 'file', path: '/tmp/f' });
  });

  it('a lazy data schema is not read before its first write (its getter may name a schema declared later)', async () => {
    const store = new MemoryStore();
    const tracker = version(
      store,
      z.lazy(() => Later),
    );
    const Later = z.object({ url: z.string() });
    await tracker.track({ id: 'l' }, { url: 'u' });
    expect((await tracker.get({ id: 'l' }))!.data).toEqual({ url: 'u' });
  });

  it('a patch that names the field, even as undefined, decides it', async () => {
    const store = new MemoryStore();
    const [v1, v2] = [version(store, v1Data), version(store, v2Data)];
    await v2.track({ id: 'c' }, { url: 'u', checksum: 'c' });
    await v1.complete((await v1.claim('run', { owner: 'old', key: { id: 'c' } }))!, { data: { checksum: undefined } as never });
    expect((await v2.get({ id: 'c' }))!.data).toEqual({ url: 'u' });
  });

});

describe('a redeploy that gives a stage a failed status of its own', () => {
  // v1: both stages park in `failed`; v2: `download` parks in `download_failed`, and `failed` is
  // `process`'s alone
  const statuses2 = ['pending', 'downloading', 'downloaded', 'processing', 'processed', 'download_failed', 'failed'] as const;
  const definition = (store: MemoryStore, downloadFailed: 'failed' | 'download_failed') =>
    new Tracker({
      store,
      statuses: statuses2,
      initial: 'pending',
      key: z.object({ id: z.string() }),
      stages: {
        download: { from: 'pending', active: 'downloading', done: 'downloaded', failed: downloadFailed },
        process: { from: 'downloaded', active: 'processing', done: 'processed', failed: 'failed' },
      },
      retry: { maxAttempts: 1 },
    });

  async function parkedByV1(store: MemoryStore) {
    const v1 = definition(store, 'failed');
    for (const id of ['d1', 'd2']) {
      await v1.track({ id });
      await v1.fail((await v1.claim('download', { owner: 'w', key: { id } }))!, new Error('HTTP 404'));
    }
    await v1.track({ id: 'p1' });
    await v1.complete((await v1.claim('download', { owner: 'w', key: { id: 'p1' } }))!);
    await v1.fail((await v1.claim('process', { owner: 'w', key: { id: 'p1' } }))!, new Error('bad file'));
    // parked before stages were recorded, or by a stage no longer declared: process's now
    await store.insert({ key: { id: 'old' }, status: 'failed', data: {} });
    return definition(store, 'download_failed');
  }

  it('retryAll sends each item back to the stage that parked it, never into another declared stage', async () => {
    const store = new MemoryStore();
    const v2 = await parkedByV1(store);
    expect(await v2.retryAll({ stage: 'process' })).toBe(2);
    expect(await v2.get({ id: 'p1' })).toMatchObject({ status: 'downloaded' });
    expect(await v2.get({ id: 'old' })).toMatchObject({ status: 'downloaded' });
    // download's items were left for download's retry: processing a never-downloaded file is what went wrong before
    expect(await v2.get({ id: 'd1' })).toMatchObject({ status: 'failed', stage: 'download' });
    expect(await v2.retryAll({ stage: 'download' })).toBe(2);
    expect(await v2.get({ id: 'd1' })).toMatchObject({ status: 'pending', attempts: 0 });
  });

  it('retryAll without a stage, and retry by key, do the same', async () => {
    const store = new MemoryStore();
    const v2 = await parkedByV1(store);
    expect(await v2.retry({ id: 'd1' })).toMatchObject({ status: 'pending' });
    expect(await v2.retry({ id: 'd1' })).toBeNull();
    expect(await v2.retry({ id: 'p1' }, { stage: 'download' })).toBeNull();
    expect(await v2.retryAll()).toBe(3);
    expect((await v2.find({ status: 'pending' })).map((item) => item.key.id).sort()).toEqual(['d1', 'd2']);
    expect((await v2.find({ status: 'downloaded' })).map((item) => item.key.id).sort()).toEqual(['old', 'p1']);
  });
});

describe('track of a key tracked before whose stored data the new schema refuses', () => {
  it('says the item exists and nothing was written, so a poller can go on (it read as a broken row to fix or delete)', async () => {
    const store = new MemoryStore();
    const v1 = version(store, z.object({ url: z.string() }));
    const v2 = version(store, z.object({ url: z.string(), checksum: z.string() }));
    await v1.track({ id: 'old' }, { url: 'u' });
    const error = await v2.track({ id: 'old' }, { url: 'u', checksum: 'c' }).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect(error).toMatchObject({ operation: 'track', stored: true, applied: false });
    expect((error as Error).message).toMatch(/tracked before \(it is `new`\), so nothing was written.*`created: false`/);
    expect((await v1.get({ id: 'old' }))!.data).toEqual({ url: 'u' });
  });
});
