/**
 * Responses and request bodies for the dashboard: security headers on everything, JSON errors
 * that carry a message and never a stack, and bodies read with a size limit. Internal.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** An answer with a 4xx/5xx status and a message meant for the person using the dashboard. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/**
 * Sent with every response. No inline script or style can run (the page's script and style are
 * files served here), nothing is loaded from elsewhere, and no other site may frame the page.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // the same-origin check reads Referer when a browser sends no Origin
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Sends `value` as JSON; `<` is escaped so that no HTML parser could ever see a tag in it. */
export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const body = Buffer.from(JSON.stringify(value).replace(/</g, '\\u003c'));
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': String(body.length),
    ...headers,
  });
  res.end(body);
}

/**
 * Sends an error as `{ error }` JSON. Leasehold's own errors about the input (a key that fails
 * its schema, an option out of range) are the caller's fault: 400; a stored item that no longer
 * fits the schema is 422. A failing store is 503. Any
 * other error is logged here and answered with a bare 500: its message and stack stay private.
 */
export function sendError(res: ServerResponse, error: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const name = (error as { name?: unknown } | null)?.name;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof HttpError) return sendJson(res, error.status, { error: message }, error.headers);
  // by name, not instanceof: the trackers may come from another copy of leasehold (ESM and CJS)
  // an item read back that no longer fits the schema is no fault of the request: 422, with why
  if (name === 'ValidationError' && (error as { stored?: unknown }).stored === true) return sendJson(res, 422, { error: message });
  if (name === 'ValidationError' || name === 'ConfigError') return sendJson(res, 400, { error: message });
  if (name === 'StoreError') return sendJson(res, 503, { error: message });
  console.error('[leasehold] [dashboard] unexpected error:', error);
  sendJson(res, 500, { error: '[leasehold] [dashboard] internal error; the server log has the details.' });
}

/** The most a mutation's body may hold. */
export const MAX_BODY_BYTES = 16 * 1024;

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Parses a body by its content type: JSON object, or a form (`a=1&b=2`), or empty. */
function parseBody(type: string, text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  if (type === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(text));
  if (type === 'application/json' || type === '') {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new HttpError(400, 'the request body is not valid JSON; send an object such as {"key":{"id":"a1"}}.');
    }
    if (!isPlainObject(value)) throw new HttpError(400, 'the request body must be a JSON object, such as {"key":{"id":"a1"}}.');
    return value;
  }
  throw new HttpError(415, `unsupported content type \`${type.slice(0, 80)}\`; send application/json or application/x-www-form-urlencoded.`);
}

/**
 * Reads a mutation's body. A framework's body parser may have read the stream already
 * (Express `express.json()`, Koa `bodyparser`): its `req.body` is used then.
 */
export async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const parsed = (req as { body?: unknown }).body;
  if (isPlainObject(parsed) && (Object.keys(parsed).length > 0 || req.readableEnded)) return parsed;
  if (typeof parsed === 'string') return parseBody(type, parsed);
  if (req.readableEnded) return {};
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) throw new HttpError(413, `the request body is larger than ${MAX_BODY_BYTES} bytes.`, { connection: 'close' });
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the request body is larger than ${MAX_BODY_BYTES} bytes.`, { connection: 'close' });
    chunks.push(chunk as Buffer);
  }
  return parseBody(type, Buffer.concat(chunks).toString('utf8'));
}
