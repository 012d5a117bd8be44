/**
 * A partner API to run locally (node:http on 127.0.0.1): per partner, a paged list of logs that
 * keeps growing while it runs, and each log's binary file. It can be slow, fail a share of
 * requests, cut downloads midway, and serve files that do not parse, so that retries, backoff
 * and checksum checks happen for real.
 */
import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeLog, synthesize } from './log-format';

export interface PartnerApiOptions {
  partners: string[];
  /** Logs the catalog grows to. */
  totalLogs: number;
  /** Share of logs visible at start; the rest appear over `growForMs`. */
  initialShare: number;
  growForMs: number;
  pageSize: number;
  /** Extra latency per request, up to this many ms. */
  slowMs: number;
  /** Share of requests answered 503. */
  failRate: number;
  /** Share of downloads cut midway. */
  cutRate: number;
  /** Share of logs whose file is broken for good (does not parse). */
  brokenRate: number;
}

export interface LogListing {
  logId: string;
  partnerCode: string;
  aircraftId: string;
  customerId: string;
  size: number;
  checksum: string;
}

interface CatalogEntry extends LogListing {
  file: Buffer;
  records: number;
  broken: boolean;
}

export interface PartnerApi {
  url: string;
  /** Log ids whose files are broken for good. */
  broken: ReadonlySet<string>;
  /** Records per log id (what a correct ingestion must write). */
  records: ReadonlyMap<string, number>;
  /** Whether every log is listed by now. */
  fullyListed(): boolean;
  stop(): Promise<void>;
}

export async function startPartnerApi(options: PartnerApiOptions): Promise<PartnerApi> {
  const catalog: CatalogEntry[] = [];
  for (let n = 0; n < options.totalLogs; n++) {
    const partnerCode = options.partners[n % options.partners.length]!;
    const aircraftId = `N${100 + (n % 37)}LH`;
    const log = encodeLog(synthesize(aircraftId, Date.UTC(2026, 10, 1) + n * 3_600_000, 40 + ((n * 53) % 160), n + 1));
    const broken = (n * 7919) % 1000 < options.brokenRate * 1000;
    // a broken file passes its checksum (the partner checksummed the broken bytes) but will not parse
    const file = broken ? Buffer.concat([Buffer.from('XXXX'), log.subarray(4)]) : log;
    catalog.push({
      logId: `${partnerCode}-${String(n).padStart(5, '0')}`,
      partnerCode,
      aircraftId,
      customerId: `cust-${n % 5}`,
      size: file.length,
      checksum: createHash('sha256').update(file).digest('hex'),
      file,
      records: (log.length - 32) / 24,
      broken,
    });
  }
  const byId = new Map(catalog.map((e) => [e.logId, e]));
  const started = Date.now();
  const visible = () => {
    const grown = Math.min(1, (Date.now() - started) / options.growForMs);
    return Math.ceil(options.totalLogs * (options.initialShare + (1 - options.initialShare) * grown));
  };
  const delay = () => new Promise((r) => setTimeout(r, Math.random() * options.slowMs));
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    await delay();
    if (Math.random() < options.failRate) return json(res, 503, { error: 'partner API overloaded, try again' });
    const list = url.pathname.match(/^\/partners\/([\w-]+)\/logs$/);
    if (list) {
      const page = Number(url.searchParams.get('page') ?? '0');
      const mine = catalog.slice(0, visible()).filter((e) => e.partnerCode === list[1]);
      const slice = mine.slice(page * options.pageSize, (page + 1) * options.pageSize);
      const logs: LogListing[] = slice.map(({ logId, partnerCode, aircraftId, customerId, size, checksum }) => ({ logId, partnerCode, aircraftId, customerId, size, checksum }));
      return json(res, 200, { logs, nextPage: (page + 1) * options.pageSize < mine.length ? page + 1 : null });
    }
    const file = url.pathname.match(/^\/partners\/([\w-]+)\/logs\/([\w-]+)\/file$/);
    const entry = file && byId.get(file[2]!);
    if (!entry) return json(res, 404, { error: 'no such log' });
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': entry.file.length });
    const cut = Math.random() < options.cutRate ? Math.floor(entry.file.length / 2) : entry.file.length;
    for (let at = 0; at < cut; at += 1024) {
      res.write(entry.file.subarray(at, Math.min(cut, at + 1024)));
      if (options.slowMs) await new Promise((r) => setImmediate(r));
    }
    if (cut < entry.file.length) res.destroy(); // the connection drops midway
    else res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    broken: new Set(catalog.filter((e) => e.broken).map((e) => e.logId)),
    records: new Map(catalog.map((e) => [e.logId, e.records])),
    fullyListed: () => visible() >= options.totalLogs,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
