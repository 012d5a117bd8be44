import { request } from 'node:http';
import { z } from 'zod';
import { Tracker } from '../../src/index.js';
import { MemoryStore } from '../../src/stores/memory.js';

/**
 * The status code of a request to 127.0.0.1:`port` sent with the `Host` header `host` (as a
 * browser reaching the server under another name would send it), and optionally as a POST of
 * `body` with extra headers.
 */
export function statusFor(port: number | string, host: string, path = '/api/config', post?: { body: string; headers: Record<string, string> }): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: post ? 'POST' : 'GET', headers: { host, ...post?.headers } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(post?.body);
  });
}

/** A memory tracker whose data has a schema (`{ n: number }`), and its store, to edit an item by hand into a shape the schema refuses. */
export function trackerWithData() {
  const store = new MemoryStore();
  const tracker = new Tracker({
    store,
    statuses: ['queued', 'running', 'done', 'failed'],
    initial: 'queued',
    key: z.object({ id: z.string() }),
    data: z.object({ n: z.number() }),
    stages: { run: { from: 'queued', active: 'running', done: 'done', failed: 'failed' } },
  });
  /** Writes data the schema refuses into the item `id` (in `status`), as a hand edit would. */
  const spoil = (id: string, status: string, data: unknown) => store.update({ key: { id }, status: [status] }, { status, data }, { limit: 1 });
  return { store, tracker, spoil };
}
