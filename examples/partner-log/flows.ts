/**
 * The two flows of the original system, on leasehold: a poller that lists partner logs again
 * and again and tracks each one, and workers that download (pending → downloading →
 * downloaded) and process (downloaded → processing → processed) them.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import { NonRetryableError, type KeyOf, type Worker } from 'leasehold';
import { decodeLog, LogFormatError } from './log-format';
import { freezeIfAsked } from './pause';
import type { LogListing } from './partner-api';
import type { Results } from './results';
import type { PartnerLogs } from './tracker';

/** What flows tell the orchestrator (over IPC when they run in child processes). */
export type Report =
  | { type: 'tracked' | 'seenAgain' | 'retried' | 'leaseLost' | 'apiError' | 'ready' | 'reaped' }
  | { type: 'records' | 'refused'; n: number }
  | { type: 'claimed'; waitedMs: number }
  | { type: 'frozen'; key: LogKey; fence: number };

/** A log's key, as the tracker's key schema reads it. */
type LogKey = KeyOf<PartnerLogs>;

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const stop = () => (clearTimeout(timer), resolve());
    // the listener goes with the sleep: the poller sleeps thousands of times on one signal
    const timer = setTimeout(() => (signal.removeEventListener('abort', stop), resolve()), ms);
    signal.addEventListener('abort', stop, { once: true });
  });

/** Lists every partner's logs, page by page, again and again; tracking a log twice is harmless. */
export async function runPoller(tracker: PartnerLogs, options: { apiUrl: string; partners: string[]; signal: AbortSignal; report: (r: Report) => void }) {
  const { apiUrl, partners, signal, report } = options;
  while (!signal.aborted) {
    for (const partner of partners) {
      for (let page: number | null = 0; page !== null && !signal.aborted; ) {
        let body: { logs: LogListing[]; nextPage: number | null };
        try {
          const res = await fetch(`${apiUrl}/partners/${partner}/logs?page=${page}`, { signal });
          if (!res.ok) throw new Error(`partner API answered ${res.status}`);
          body = (await res.json()) as typeof body;
        } catch {
          if (!signal.aborted) report({ type: 'apiError' });
          break; // the next round lists this partner again
        }
        for (const { logId, partnerCode, aircraftId, customerId, size, checksum } of body.logs) {
          const { created } = await tracker.track({ logId, partnerCode, aircraftId, customerId }, { size, checksum });
          report({ type: created ? 'tracked' : 'seenAgain' });
        }
        page = body.nextPage;
      }
    }
    await sleep(150, signal);
  }
}

/** Starts the download and process workers of one process. */
export function startWorkers(
  tracker: PartnerLogs,
  results: Results,
  options: { apiUrl: string; dataDir: string; concurrency: number; owner: string; report: (r: Report) => void },
): Worker[] {
  const { apiUrl, dataDir, concurrency, owner, report } = options;
  // how long each log waited, claimable, for a worker (store clock)
  tracker.on('claimed', (e) => report({ type: 'claimed', waitedMs: e.waitedMs }));
  tracker.on('failed', (e) => e.willRetry && report({ type: 'retried' }));
  tracker.on('leaseLost', () => report({ type: 'leaseLost' }));
  // every worker reaps expired leases (those of killed workers) by default
  tracker.on('reaped', () => report({ type: 'reaped' }));
  // the completion is recorded only once the store accepted it: a second one would be a duplicate
  tracker.on('completed', (e) => {
    // (a failed insert is said, not left to crash the worker as an unhandled rejection)
    if (e.stage === 'process') results.completed(e.key.logId, e.fence).catch((error: unknown) => console.error(`could not record the completion of ${e.key.logId}:`, error));
  });

  const download = tracker.work(
    'download',
    async (lease) => {
      const { logId, partnerCode } = lease.key;
      // lease.signal aborts the transfer if the lease is lost while the file streams
      const res = await fetch(`${apiUrl}/partners/${partnerCode}/logs/${logId}/file`, { signal: lease.signal });
      if (!res.ok || !res.body) throw new Error(`partner API answered ${res.status} for ${logId}`);
      // a file per fence: two holders of one log never write the same file
      const part = join(dataDir, `${logId}.${lease.fence}.part`);
      const hash = createHash('sha256');
      let bytes = 0;
      const measure = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          hash.update(chunk);
          bytes += chunk.length;
          callback(null, chunk);
        },
      });
      try {
        await pipeline(Readable.fromWeb(res.body as ReadableStream<Uint8Array>), measure, createWriteStream(part));
        const checksum = hash.digest('hex');
        if (bytes !== lease.item.data.size || checksum !== lease.item.data.checksum) {
          throw new Error(`download of ${logId} incomplete or corrupt: ${bytes}/${lease.item.data.size} bytes`);
        }
      } catch (error) {
        await rm(part, { force: true });
        throw error;
      }
      const localFilePath = join(dataDir, `${logId}.${lease.fence}.bin`);
      await rename(part, localFilePath);
      return { data: { localFilePath } };
    },
    { concurrency, owner: `${owner}/download` },
  );

  const process = tracker.work(
    'process',
    async (lease) => {
      const file = await readFile(lease.item.data.localFilePath!);
      let log;
      try {
        log = decodeLog(file);
      } catch (error) {
        // a file that does not parse will not parse next time either: park it
        if (error instanceof LogFormatError) throw new NonRetryableError(`${lease.key.logId}: ${error.message}`);
        throw error;
      }
      // parsing a real log takes a while; the heartbeat keeps the lease alive meanwhile
      await new Promise((r) => setTimeout(r, log.records.length / 4));
      lease.signal.throwIfAborted();
      // the demo's pause (pause.ts): once per run a process freezes here, between its last look
      // at the lease and the write, for longer than the lease; only the fence protects the write
      await freezeIfAsked(lease.key, lease.fence);
      const written = await results.write(lease.key.logId, lease.fence, log.records);
      report({ type: 'records', n: written });
      // rows a newer fence had already written: this holder is stale, and its writes are refused
      if (written < log.records.length) report({ type: 'refused', n: log.records.length - written });
      return { data: { records: log.records.length } };
    },
    { concurrency, owner: `${owner}/process` },
  );
  return [download, process];
}
