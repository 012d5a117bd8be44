/**
 * The page, its script, style and icon: hand-written files under `assets/`, bundled into the
 * package as strings (see `raw.d.ts`), so the dashboard works offline and loads nothing from
 * elsewhere. Internal.
 * @module
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import appCss from './assets/app.css?raw';
import appJs from './assets/app.js?raw';
import favicon from './assets/favicon.svg?raw';
import indexHtml from './assets/index.html?raw';
import { HttpError, SECURITY_HEADERS } from './http.js';

/** One static file. */
export interface Asset {
  /** Its bytes. */
  readonly body: Buffer;
  /** Its content type. */
  readonly type: string;
  /** A strong validator for `If-None-Match`. */
  readonly etag: string;
}

const asset = (text: string, type: string): Asset => {
  const body = Buffer.from(text, 'utf8');
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
};

/** The files by path below the dashboard's base. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ['/', asset(indexHtml, 'text/html; charset=utf-8')],
  ['/app.js', asset(appJs, 'text/javascript; charset=utf-8')],
  ['/app.css', asset(appCss, 'text/css; charset=utf-8')],
  ['/favicon.svg', asset(favicon, 'image/svg+xml')],
]);

/** Answers `GET` (or `HEAD`) of one of the files, with an ETag so that a reload costs a 304. */
export function serveAsset(req: IncomingMessage, res: ServerResponse, path: string, method: string): void {
  const asset = ASSETS.get(path === '/index.html' ? '/' : path);
  if (!asset) throw new HttpError(404, `no such page: \`${path.slice(0, 100)}\`.`);
  if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, `${method} is not allowed here; use GET.`, { allow: 'GET, HEAD' });
  const headers = { ...SECURITY_HEADERS, 'content-type': asset.type, etag: asset.etag, 'cache-control': 'no-cache' };
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  res.writeHead(200, { ...headers, 'content-length': String(asset.body.length) });
  res.end(method === 'HEAD' ? undefined : asset.body);
}
