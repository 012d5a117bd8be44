/**
 * The dashboard's request handler: the page and its files, a small JSON API over each tracker's
 * indexed reads (`stats`, `find` by status with a limit, `get` by key), and three guarded
 * mutations (retry, cancel, purge). Internal; see `index.ts` for the public surface.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../errors.js';
import type { TrackerDefinition } from '../tracker.js';
import type { TrackerStats } from '../results.js';
import { ASSETS } from './assets.js';
import { checkToken, randomToken, requireSameOrigin, requireToken } from './guard.js';
import { History } from './history.js';
import { HttpError, readBody, SECURITY_HEADERS, sendError, sendJson } from './http.js';
import { learnKey, parseKey, parseLimit, parseStatuses, parseTime } from './input.js';
import type { DashboardHandler, DashboardOptions, DashboardTracker } from './types.js';

/** How often the page polls, in milliseconds (it reads this from `/api/config`). */
const POLL_MS = 2_500;
/** Items a list shows unless asked for another number. */
const DEFAULT_LIMIT = 50;
/** The most a single purge request may delete when it names a limit. */
const MAX_PURGE_LIMIT = 10_000_000;

interface Entry {
  readonly name: string;
  readonly tracker: DashboardTracker;
  readonly def: TrackerDefinition;
  readonly history: History;
  cached: { readonly at: number; readonly value: Promise<TrackerStats<string>> } | undefined;
  asked: number;
  recorded: number;
  lastMs: number;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const clip = (text: string, n = 100) => (text.length > n ? `${text.slice(0, n)}…` : text);

function checkBasePath(value: unknown): string {
  if (value === undefined || value === '' || value === '/') return '';
  if (typeof value !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+\/?$/.test(value)) {
    throw new ConfigError('dashboard.basePath', `expected a path such as \`/admin/leasehold\`, got \`${String(value)}\`.`);
  }
  return value.replace(/\/$/, '');
}

function checkMs(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new ConfigError(option, `expected a whole number of milliseconds, got \`${String(value)}\`.`);
  return value;
}

function checkTrackers(trackers: unknown): Array<[string, DashboardTracker]> {
  if (trackers === null || typeof trackers !== 'object') throw new ConfigError('dashboard.trackers', 'expected an object of trackers by name, such as `{ logs }`.');
  const list = Object.entries(trackers as Record<string, DashboardTracker>);
  if (list.length === 0) throw new ConfigError('dashboard.trackers', 'give at least one tracker, such as `{ trackers: { logs } }`.');
  for (const [name, tracker] of list) {
    if (!NAME.test(name)) throw new ConfigError(`dashboard.trackers.${name}`, 'a tracker name is 1 to 64 letters, digits, `_`, `-` or `.` (it appears in URLs).');
    if (typeof tracker?.stats !== 'function' || typeof tracker.find !== 'function' || typeof tracker.definition !== 'object') {
      throw new ConfigError(`dashboard.trackers.${name}`, 'expected a leasehold Tracker.');
    }
  }
  return list;
}

/** A safe place to send the browser: one leading slash, so never another host. */
const redirect = (res: ServerResponse, to: string) => {
  res.writeHead(308, { ...SECURITY_HEADERS, location: `/${to.replace(/^\/+/, '')}` });
  res.end();
};

const pathOf = (url: string | undefined): URL => {
  const raw = url ?? '/';
  try {
    return new URL(`http://dashboard${raw.startsWith('/') ? raw : `/${raw}`}`);
  } catch {
    throw new HttpError(400, 'malformed request URL.');
  }
};

/**
 * Creates the dashboard as a Node request handler. Mount it anywhere a `(req, res)` handler
 * goes; see `docs/dashboard.md` for node:http, Express, Fastify and Koa.
 *
 * Reads are open to whoever reaches the handler; every mutation is a POST that must come from
 * the page's own origin and carry the token. Start the sampling of the hour chart at once; stop
 * it with `handler.close()`.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createDashboard } from 'leasehold/dashboard';
 *
 * const dashboard = createDashboard({ trackers: { logs }, token: process.env.DASHBOARD_TOKEN });
 * createServer(dashboard).listen(4321, '127.0.0.1');
 * ```
 */
export function createDashboard(options: DashboardOptions): DashboardHandler {
  const list = checkTrackers(options?.trackers);
  const base = checkBasePath(options.basePath);
  const readOnly = options.readOnly === true;
  const token = readOnly ? undefined : (checkToken(options.token) ?? randomToken());
  const cacheMs = checkMs('dashboard.statsCacheMs', options.statsCacheMs, 1_000);
  const sampleMs = checkMs('dashboard.sampleIntervalMs', options.sampleIntervalMs, 5_000);
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>(
    list.map(([name, tracker]) => {
      const def = tracker.definition;
      return [name, { name, tracker, def, history: new History(def, now), cached: undefined, asked: 0, recorded: 0, lastMs: 0 }];
    }),
  );
  const startedAt = now();

  /**
   * One store query serves every poll within `cacheMs`, or within 4 times the last query's
   * duration when that is longer: on a big table (stats takes ~0.3–0.7 s at 1,000,000 PostgreSQL
   * rows) the dashboard never keeps the database busy more than a fifth of the time. Each
   * answer is also a chart sample.
   */
  const statsOf = (entry: Entry): Promise<TrackerStats<string>> => {
    const t = now();
    const fresh = cacheMs === 0 ? 0 : Math.max(cacheMs, 4 * entry.lastMs);
    if (entry.cached && t - entry.cached.at < fresh) return entry.cached.value;
    const asked = ++entry.asked;
    const started = performance.now();
    const value = entry.tracker.stats().then((stats) => {
      entry.lastMs = performance.now() - started;
      // answers may arrive out of order; a later sample must not be followed by an older one
      if (asked > entry.recorded) {
        entry.recorded = asked;
        entry.history.record(stats.byStatus);
      }
      return stats;
    });
    entry.cached = { at: t, value };
    value.catch(() => {
      if (entry.cached?.value === value) entry.cached = undefined;
    });
    return value;
  };
  // a failing store shows on the page through its own polls; the sampler just tries again
  const sample = () => {
    for (const entry of entries.values()) statsOf(entry).catch(() => {});
  };
  sample();
  const timer = sampleMs > 0 ? setInterval(sample, sampleMs) : undefined;
  timer?.unref();

  const config = () => ({
    readOnly,
    startedAt,
    pollMs: POLL_MS,
    sampleIntervalMs: sampleMs,
    trackers: [...entries.values()].map((e) => ({ name: e.name, definition: e.def })),
  });

  const serveAsset = (req: IncomingMessage, res: ServerResponse, path: string, method: string) => {
    const asset = ASSETS.get(path === '/index.html' ? '/' : path);
    if (!asset) throw new HttpError(404, `no such page: \`${clip(path)}\`.`);
    if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, `${method} is not allowed here; use GET.`, { allow: 'GET, HEAD' });
    const headers = { ...SECURITY_HEADERS, 'content-type': asset.type, etag: asset.etag, 'cache-control': 'no-cache' };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': String(asset.body.length) });
    res.end(method === 'HEAD' ? undefined : asset.body);
  };

  const failedStatuses = (def: TrackerDefinition) => [...new Set(def.stages.map((s) => s.failed))];

  const read = async (entry: Entry, op: string, params: URLSearchParams, res: ServerResponse) => {
    const { tracker, def } = entry;
    if (op === 'stats') {
      const stats = await statsOf(entry);
      return sendJson(res, 200, { tracker: entry.name, stats, history: entry.history.series(), at: now() });
    }
    if (op === 'items') {
      const status = params.get('status');
      const statuses = status === null || status === '' ? failedStatuses(def) : parseStatuses(status, def);
      const limit = parseLimit(params.get('limit') ?? undefined, DEFAULT_LIMIT);
      const items = await tracker.find({ status: statuses, limit });
      if (items[0]) learnKey(tracker, items[0].key);
      return sendJson(res, 200, { tracker: entry.name, statuses, limit, items });
    }
    const key = await parseKey(tracker, params.get('key') ?? undefined);
    const item = await tracker.get(key);
    if (!item) throw new HttpError(404, `no item with key ${clip(JSON.stringify(key))} in tracker \`${entry.name}\`.`);
    learnKey(tracker, item.key);
    return sendJson(res, 200, { tracker: entry.name, item });
  };

  const mutate = async (entry: Entry, op: string, req: IncomingMessage, res: ServerResponse) => {
    requireSameOrigin(req);
    const body = await readBody(req);
    requireToken(req, body, token!);
    const { tracker, def } = entry;
    let answer: unknown;
    if (op === 'purge') {
      const [status] = parseStatuses(body.status, def, def.terminalStatuses);
      const finishedBefore = parseTime('finishedBefore', body.finishedBefore);
      const limit = body.limit === undefined || body.limit === '' ? undefined : parseLimit(body.limit, 1, MAX_PURGE_LIMIT);
      const { deleted } = await tracker.purge({ status: status!, ...(finishedBefore ? { finishedBefore } : {}), ...(limit ? { limit } : {}) });
      entry.history.adjust(status!, deleted);
      answer = { deleted };
    } else {
      const key = await parseKey(tracker, body.key);
      if (op === 'retry') {
        const item = await tracker.retry(key);
        if (!item) throw new HttpError(409, `item ${clip(JSON.stringify(key))} is not parked in a failed status (or does not exist); nothing changed.`);
        const parkedIn = def.stages.find((s) => s.name === item.stage)?.failed;
        if (parkedIn) entry.history.adjust(parkedIn, 1);
        answer = { item };
      } else {
        const reason = body.reason === undefined || body.reason === '' ? 'from the dashboard' : body.reason;
        if (typeof reason !== 'string' || reason.length > 500) throw new HttpError(400, '`reason` must be text of at most 500 characters.');
        const item = await tracker.cancel(key, { reason });
        if (!item) throw new HttpError(409, `item ${clip(JSON.stringify(key))} is not waiting or held (done, failed already, or missing); nothing changed.`);
        answer = { item };
      }
    }
    entry.cached = undefined;
    sendJson(res, 200, answer);
  };

  const api = async (req: IncomingMessage, res: ServerResponse, path: string, params: URLSearchParams, method: string) => {
    const get = method === 'GET' || method === 'HEAD';
    if (path === '/config') {
      if (!get) throw new HttpError(405, `${method} is not allowed here; use GET.`, { allow: 'GET, HEAD' });
      return sendJson(res, 200, config());
    }
    const match = /^\/trackers\/([^/]+)\/([a-z]+)$/.exec(path);
    if (!match) throw new HttpError(404, `no such API route: \`${clip(path)}\`.`);
    let name: string;
    try {
      name = decodeURIComponent(match[1]!);
    } catch {
      throw new HttpError(400, 'malformed tracker name in the URL.');
    }
    const entry = entries.get(name);
    if (!entry) throw new HttpError(404, `unknown tracker \`${clip(name, 64)}\`; this dashboard shows: ${[...entries.keys()].join(', ')}.`);
    const op = match[2]!;
    if (op === 'stats' || op === 'items' || op === 'item') {
      if (!get) throw new HttpError(405, `${method} is not allowed here; use GET.`, { allow: 'GET, HEAD' });
      return read(entry, op, params, res);
    }
    if (op === 'retry' || op === 'cancel' || op === 'purge') {
      if (readOnly) throw new HttpError(405, 'this dashboard is read-only: retry, cancel and purge are turned off.', { allow: '' });
      if (method !== 'POST') throw new HttpError(405, `${method} is not allowed here; mutations are POST requests.`, { allow: 'POST' });
      return mutate(entry, op, req, res);
    }
    throw new HttpError(404, `no such API route: \`${clip(path)}\`.`);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => {
    const url = pathOf(req.url);
    let path = url.pathname;
    if (base) {
      if (path === base) return redirect(res, `${base}/${url.search}`);
      if (!path.startsWith(`${base}/`)) {
        if (next) return next();
        throw new HttpError(404, `the dashboard is under ${base}/.`);
      }
      path = path.slice(base.length);
    } else if (path === '/') {
      // mounted by a router that strips its prefix: the page's relative links need the slash
      const original = (req as { originalUrl?: unknown }).originalUrl;
      if (typeof original === 'string') {
        const outer = pathOf(original).pathname;
        if (!outer.endsWith('/')) return redirect(res, `${outer}/${url.search}`);
      }
    }
    const method = (req.method ?? 'GET').toUpperCase();
    if (path.startsWith('/api/')) return api(req, res, path.slice('/api'.length), url.searchParams, method);
    return serveAsset(req, res, path, method);
  };

  const handler = (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void => {
    handle(req, res, next).catch((error: unknown) => sendError(res, error));
  };
  return Object.assign(handler, {
    token,
    close: () => {
      if (timer) clearInterval(timer);
    },
  });
}
