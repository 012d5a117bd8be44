/**
 * The checks in front of every mutation: the request comes from the dashboard's own page
 * (same origin) and carries the token; and the `Host` check in front of every request, where
 * one is asked for. Internal.
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ConfigError } from '../errors.js';
import { HttpError } from './http.js';

/** The header a mutation carries its token in. */
export const TOKEN_HEADER = 'x-leasehold-token';

/** A random token for a dashboard started without one. */
export function randomToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Checks a token given in the options. */
export function checkToken(token: unknown): string | undefined {
  if (token === undefined) return undefined;
  if (typeof token !== 'string' || token.length < 16 || /\s/.test(token)) {
    throw new ConfigError('dashboard.token', 'expected a string of at least 16 characters without spaces (a long random secret such as `openssl rand -hex 16` prints).');
  }
  return token;
}

/** Whether `entry` is a host name as a browser sends it in `Host`: a name or `[IPv6]`, with or without a port up to 65535. */
export function isHostName(entry: unknown): entry is string {
  return typeof entry === 'string' && /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i.test(entry) && Number(/:(\d+)$/.exec(entry)?.[1] ?? 1) <= 65_535;
}

/**
 * Checks `allowedHosts` and returns whether a `Host` header is one of them: an entry with a port
 * (`dash.example.com:8080`, `[::1]:4321`) matches exactly, one without matches that name on any
 * port; an entry on port 80 or 443 also matches the name alone, as browsers send `Host` there.
 * Names are compared without case.
 */
export function hostMatcher(option: string, entries: unknown): (host: string) => boolean {
  if (!Array.isArray(entries) || entries.length === 0 || !entries.every(isHostName)) {
    throw new ConfigError(option, 'expected a list of host names as a browser sends them in `Host`, each with or without a port, such as `["dash.example.com", "127.0.0.1:4321"]` (no scheme, no path).');
  }
  const exact = new Set<string>();
  const anyPort = new Set<string>();
  for (const entry of entries as string[]) {
    const name = entry.toLowerCase();
    (/:\d+$/.test(name) ? exact : anyPort).add(name);
    // the scheme's default port is left out of `Host`
    if (/:(80|443)$/.test(name)) exact.add(name.replace(/:\d+$/, ''));
  }
  return (header) => {
    const host = header.toLowerCase();
    return exact.has(host) || anyPort.has(host.replace(/:\d+$/, ''));
  };
}

/** Refuses a request addressed to a host the dashboard does not answer (DNS rebinding). */
export function requireHost(req: IncomingMessage, allowed: (host: string) => boolean, names: string): void {
  const host = String(req.headers.host ?? '');
  if (!allowed(host)) {
    throw new HttpError(403, `unexpected Host header \`${host.slice(0, 100)}\`; this dashboard answers ${names}. Open it at one of those, or add the name it is reached by (a reverse proxy's) to \`allowedHosts\` (\`--allowed-host\`).`);
  }
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** Whether `given` is the token, compared in constant time. */
function tokenMatches(given: unknown, token: string): boolean {
  return typeof given === 'string' && timingSafeEqual(digest(given), digest(token));
}

/**
 * Refuses a request that another site could have made a browser send: its `Origin` (or, when a
 * browser sends none, `Referer`) must name the host the request was sent to (`Host`).
 */
export function requireSameOrigin(req: IncomingMessage): void {
  const host = String(req.headers.host ?? '').toLowerCase();
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') {
    throw new HttpError(403, `cross-origin request refused (Sec-Fetch-Site: ${String(site).slice(0, 40)}); mutations come only from the dashboard's own page.`);
  }
  const claimed = req.headers.origin ?? req.headers.referer;
  let from = '';
  try {
    from = claimed && claimed !== 'null' ? new URL(claimed).host.toLowerCase() : '';
  } catch {
    from = '';
  }
  if (!from) {
    throw new HttpError(403, 'mutation refused: the request has no Origin or Referer header; send it from the dashboard page, or set Origin to the dashboard\'s own address.');
  }
  if (!host || from !== host) {
    throw new HttpError(403, `cross-origin request refused: Origin \`${from.slice(0, 100)}\` is not this dashboard's host \`${host.slice(0, 100)}\`.`);
  }
}

/** Refuses a mutation without the token (header, or a `token` form field). */
export function requireToken(req: IncomingMessage, body: Readonly<Record<string, unknown>>, token: string): void {
  const header = req.headers[TOKEN_HEADER];
  const given = header ?? body.token;
  if (given === undefined) throw new HttpError(401, `mutation refused: no token; send it in the \`${TOKEN_HEADER}\` header (the page asks for it once).`);
  if (!tokenMatches(given, token)) throw new HttpError(401, 'mutation refused: wrong token.');
}
