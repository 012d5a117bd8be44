/**
 * The dashboard's request handler: checks its options, serves the page and its files, and
 * routes the JSON API (`routes.ts`) for each tracker. Internal; see `index.ts` for the public
 * surface.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConfigError } from '../errors.js';
import { describe } from '../validate.js';
import { serveAsset } from './assets.js';
import { Entry } from './entry.js';
import { checkToken, hostMatcher, randomToken, requireHost } from './guard.js';
import { HttpError, SECURITY_HEADERS, sendError, sendJson } from './http.js';
import { mutate, read } from './routes.js';
import type { DashboardHandler, DashboardOptions, DashboardTracker } from './types.js';

/** How often the page polls, in milliseconds (it reads this from `/api/config`). */
const POLL_MS = 2_500;

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const clip = (text: string, n = 100) => (text.length > n ? `${text.slice(0, n)}…` : text);

function checkBasePath(value: unknown): string {
  if (value === undefined || value === '' || value === '/') return '';
  if (typeof value !== 'string' || !/^(\/[A-Za-z0-9._~-]+)+\/?$/.test(value)) {
    throw new ConfigError('dashboard.basePath', `expected a path such as \`/admin/leasehold\`, got ${describe(value)}.`);
  }
  return value.replace(/\/$/, '');
}

function checkMs(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new ConfigError(option, `expected a whole number of milliseconds, got ${describe(value)}.`);
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

// a wall clock stepped back would keep cached counts for as long
const monotonic = () => performance.now();

/**
 * Creates the dashboard as a Node request handler. Mount it anywhere a `(req, res)` handler
 * goes; see `docs/dashboard.md` for node:http, Express, Fastify and Koa.
 *
 * Reads are open to whoever reaches the handler (put your authentication in front, and list
 * `allowedHosts` where it listens on a loopback address without any); every mutation is a POST
 * that must come from the page's own origin and carry the token. The sampling of the hour chart
 * starts at once; stop it with `handler.close()`.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createDashboard } from 'leasehold/dashboard';
 *
 * createServer(createDashboard({ trackers: { logs }, allowedHosts: ['127.0.0.1:4321', 'localhost:4321'] })).listen(4321, '127.0.0.1');
 * ```
 */
export function createDashboard(options: DashboardOptions): DashboardHandler {
  const list = checkTrackers(options?.trackers);
  const base = checkBasePath(options.basePath);
  const readOnly = options.readOnly === true;
  const token = readOnly ? undefined : (checkToken(options.token) ?? randomToken());
  const cacheMs = checkMs('dashboard.statsCacheMs', options.statsCacheMs, 1_000);
  const sampleMs = checkMs('dashboard.sampleIntervalMs', options.sampleIntervalMs, 5_000);
  const now = options.now ?? (() => Date.now());
  const hosts = options.allowedHosts === undefined ? undefined : { allowed: hostMatcher('dashboard.allowedHosts', options.allowedHosts), names: options.allowedHosts.join(', ') };
  const entries = new Map(list.map(([name, tracker]) => [name, new Entry(name, tracker, now, cacheMs, options.now ?? monotonic)]));
  const startedAt = now();

  // a failing store shows on the page through its own polls; the sampler just tries again
  const sample = () => {
    for (const entry of entries.values()) entry.stats().catch(() => {});
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
      return read(entry, op, params, res, now);
    }
    if (op === 'retry' || op === 'cancel' || op === 'purge') {
      if (readOnly) throw new HttpError(405, 'this dashboard is read-only: retry, cancel and purge are turned off.', { allow: '' });
      if (method !== 'POST') throw new HttpError(405, `${method} is not allowed here; mutations are POST requests.`, { allow: 'POST' });
      return mutate(entry, op, req, res, token!);
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
    if (hosts) requireHost(req, hosts.allowed, hosts.names);
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
