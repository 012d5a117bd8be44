/**
 * The checks in front of every mutation: the request comes from the dashboard's own page
 * (same origin) and carries the token. Internal.
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
