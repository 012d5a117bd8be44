/**
 * `serveDashboard`: the dashboard on a server of its own, the way `npx leasehold dashboard`
 * runs it. Internal; see `index.ts`.
 * @module
 */
import { createServer } from 'node:http';
import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import { describe } from '../validate.js';
import { hostMatcher, requireHost } from './guard.js';
import { createDashboard } from './handler.js';
import { sendError } from './http.js';
import type { ServeDashboardOptions, ServedDashboard } from './types.js';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/i;

/** A host name as a URL writes it: an IPv6 address in brackets. */
const urlHost = (host: string) => (isIP(host) === 6 ? `[${host}]` : host);

/** `host:port` as a URL writes it. */
const hostPort = (host: string, port: number) => `${urlHost(host)}:${port}`;

/**
 * The `Host` headers a dashboard served on a loopback `host` and `port` answers: the loopback
 * names and `host` itself, with the port. On port 80 also without it, since a browser leaves
 * the scheme's default port out of `Host` (`http://127.0.0.1/` sends `Host: 127.0.0.1`). The
 * server speaks plain HTTP only, so 443 is no default port for it. Internal.
 */
export function allowedHosts(host: string, port: number): ReadonlySet<string> {
  const names = ['127.0.0.1', 'localhost', '::1', host === '[::1]' ? '::1' : host];
  return new Set(names.flatMap((h) => (port === 80 ? [hostPort(h, port), urlHost(h)] : [hostPort(h, port)])).map((h) => h.toLowerCase()));
}

/**
 * Serves the dashboard on its own `node:http` server, on 127.0.0.1:4321 by default.
 *
 * On a loopback address it answers only requests addressed to a loopback name (`Host`
 * 127.0.0.1, localhost or [::1]) or to one of `allowedHosts` (a reverse proxy's), so that a web
 * page cannot reach it by DNS rebinding. On any other address every item's data is readable by
 * whoever reaches the port (the token guards only changes): a warning is printed.
 *
 * @example
 * ```ts
 * const dashboard = await serveDashboard({ trackers: { logs } });
 * console.log(`dashboard: ${dashboard.openUrl}`);   // the URL carries the token for the page
 * process.once('SIGINT', () => void dashboard.close());
 * ```
 */
export async function serveDashboard(options: ServeDashboardOptions): Promise<ServedDashboard> {
  const port = options.port ?? 4321;
  const host = options.host ?? '127.0.0.1';
  const warn = options.warn ?? ((message: string) => console.warn(message));
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new ConfigError('dashboard.port', `expected a TCP port from 0 to 65535, got ${describe(port)}.`);
  if (typeof host !== 'string' || host === '') throw new ConfigError('dashboard.host', `expected an address such as \`127.0.0.1\`, got ${describe(host)}.`);
  const loopback = LOOPBACK.test(host);
  // the Host check is made here, where the loopback names are known once the port is
  const extra = options.allowedHosts === undefined ? undefined : hostMatcher('dashboard.allowedHosts', options.allowedHosts);
  const { allowedHosts: _checkedHere, ...rest } = options;
  const handler = createDashboard(rest);
  let allowed: ReadonlySet<string> = new Set();
  const checked = loopback || extra !== undefined;

  const answers = (named: string) => allowed.has(named.toLowerCase()) || extra?.(named) === true;
  const server = createServer((req, res) => {
    try {
      if (checked) requireHost(req, answers, [...allowed, ...(options.allowedHosts ?? [])].join(', '));
    } catch (error) {
      return sendError(res, error);
    }
    handler(req, res);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => (server.off('error', reject), resolve()));
    });
  } catch (error) {
    handler.close();
    const code = (error as { code?: string }).code;
    const why = code === 'EADDRINUSE' ? `port ${port} is in use; pass another port (\`port\`, or \`--port\` on the command line; 0 picks a free one)` : (error as Error).message;
    throw new ConfigError('dashboard.port', `cannot listen on ${hostPort(host, port)}: ${why}.`);
  }
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  // the loopback names and the printed address are answered too (with `allowedHosts` beyond loopback)
  allowed = allowedHosts(shown, actual);
  // as a browser writes it: the default port left out
  const url = `http://${actual === 80 ? urlHost(shown) : hostPort(shown, actual)}/`;
  if (!loopback) {
    warn(
      `[leasehold] [dashboard] WARNING: listening on ${hostPort(host, actual)}: whoever reaches this port can read every item (a token guards only retry, cancel and purge). ` +
        (options.token === undefined && handler.token ? 'Mutations need the random token in the printed URL. ' : '') +
        'Bind 127.0.0.1 (the default) and use an SSH tunnel, or put the dashboard behind your own authentication.',
    );
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    openUrl: handler.token ? `${url}#token=${encodeURIComponent(handler.token)}` : url,
    token: handler.token,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        handler.close();
        server.close(() => resolve());
        // the page keeps a connection open between polls; don't wait for it to time out
        server.closeAllConnections();
      })),
  };
}
