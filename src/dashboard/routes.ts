/**
 * The JSON API over one tracker: three reads (the store's indexed queries: `stats`, `find` by
 * status with a limit, `get` by key) and three mutations (retry, cancel, purge) behind the
 * same-origin and token checks. Internal.
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { issuesText } from '../errors.js';
import type { Entry } from './entry.js';
import { requireSameOrigin, requireToken } from './guard.js';
import { HttpError, readBody, sendJson } from './http.js';
import { learnKey, parseKey, parseLimit, parseOneStatus, parseStage, parseStatuses, parseTime } from './input.js';
import { retryRefusal } from '../retry-refusal.js';

/** Items a list shows unless asked for another number. */
const DEFAULT_LIMIT = 50;
/** The most a single purge request may delete when it names a limit. */
const MAX_PURGE_LIMIT = 10_000_000;

const clip = (text: string, n = 100) => (text.length > n ? `${text.slice(0, n)}…` : text);

/** `GET stats | items | item`. */
export async function read(entry: Entry, op: 'stats' | 'items' | 'item', params: URLSearchParams, res: ServerResponse, now: () => number): Promise<void> {
  const { tracker, def } = entry;
  if (op === 'stats') {
    const stats = await entry.stats();
    return sendJson(res, 200, { tracker: entry.name, stats, history: entry.history.series(), at: now() });
  }
  if (op === 'items') {
    const status = params.get('status');
    const statuses = status === null || status === '' ? entry.failedStatuses : parseStatuses(status, def);
    const limit = parseLimit(params.get('limit') ?? undefined, DEFAULT_LIMIT);
    // an item that no longer fits the schema is listed apart, with its problem: it is what an
    // operator looks for, and it must not hide the others
    const invalid: Array<{ key: unknown; status: string; stage: string | null; problem: string }> = [];
    const items = await tracker.find({
      status: statuses,
      limit,
      onInvalid: (error, { status, stage }) => void invalid.push({ key: error.key, status, stage, problem: clip(issuesText(error.issues), 300) }),
    });
    if (items[0]) learnKey(tracker, items[0].key);
    // a list row leaves out `data` (the item route has it): up to 500 items of up to 1 MB each,
    // polled every few seconds, for a table that never shows it
    const rows = items.map(({ data: _data, ...row }) => row);
    return sendJson(res, 200, { tracker: entry.name, statuses, limit, items: rows, invalid });
  }
  const key = await parseKey(tracker, params.get('key') ?? undefined);
  const item = await tracker.get(key);
  if (!item) throw new HttpError(404, `no item with key ${clip(JSON.stringify(key))} in tracker \`${entry.name}\`.`);
  learnKey(tracker, item.key);
  return sendJson(res, 200, { tracker: entry.name, item });
}

/**
 * An operator verb's outcome, or the warning of one that was written although the item it
 * changed no longer fits the schema (a `ValidationError` with `applied`): a change that took
 * effect is answered as one, with the warning, not refused.
 */
async function orApplied<T>(call: Promise<T>): Promise<T | { readonly warning: string }> {
  try {
    return await call;
  } catch (error) {
    // by name, not instanceof: the trackers may come from another copy of leasehold
    const e = error as { name?: unknown; applied?: unknown; message?: unknown } | null;
    if (e?.name === 'ValidationError' && e.applied === true) return { warning: String(e.message) };
    throw error;
  }
}

/** `POST retry | cancel | purge`: same origin and the token first, then the body. */
export async function mutate(entry: Entry, op: 'retry' | 'cancel' | 'purge', req: IncomingMessage, res: ServerResponse, token: string): Promise<void> {
  requireSameOrigin(req);
  const body = await readBody(req);
  requireToken(req, body, token);
  const { tracker, def } = entry;
  let answer: unknown;
  if (op === 'purge') {
    const status = parseOneStatus(body.status, def, def.terminalStatuses);
    const finishedBefore = parseTime('finishedBefore', body.finishedBefore);
    const limit = body.limit === undefined || body.limit === null || body.limit === '' ? undefined : parseLimit(body.limit, 1, MAX_PURGE_LIMIT);
    const { deleted } = await tracker.purge({ status, ...(finishedBefore ? { finishedBefore } : {}), ...(limit ? { limit } : {}) });
    entry.history.adjust(status, deleted);
    answer = { deleted };
  } else if (op === 'retry') {
    const key = await parseKey(tracker, body.key);
    const stage = parseStage(body.stage, def);
    const item = await orApplied(tracker.retry(key, stage === undefined ? {} : { stage }));
    if (!item) throw await retryRefused(entry, key, stage);
    if ('warning' in item) answer = { item: null, warning: item.warning };
    else {
      const parkedIn = def.stages.find((s) => s.name === item.stage)?.failed;
      if (parkedIn) entry.history.adjust(parkedIn, 1);
      answer = { item };
    }
  } else {
    const key = await parseKey(tracker, body.key);
    const reason = body.reason === undefined || body.reason === '' ? 'from the dashboard' : body.reason;
    if (typeof reason !== 'string' || reason.length > 500) throw new HttpError(400, '`reason` must be text of at most 500 characters.');
    const item = await orApplied(tracker.cancel(key, { reason }));
    if (!item) throw new HttpError(409, `item ${clip(JSON.stringify(key))} is not waiting or held (done, failed already, or missing); nothing changed.`);
    answer = 'warning' in item ? { item: null, warning: item.warning } : { item };
  }
  entry.invalidate();
  sendJson(res, 200, answer);
}

/**
 * The answer to a retry that changed nothing: the item is read once more to say why (the retry
 * itself was one conditional update). 404 when there is no such item, else 409.
 */
async function retryRefused(entry: Entry, key: Record<string, unknown>, stage: string | undefined): Promise<HttpError> {
  const item = `item ${clip(JSON.stringify(key))}`;
  let now: { status: string; stage: string | null } | null;
  try {
    now = await entry.tracker.get(key);
  } catch {
    // unreadable (its key or data no longer fits): still not retried, for a reason the item page shows
    return new HttpError(409, `${item} was not retried, and it cannot be read to say why; nothing changed.`);
  }
  const refusal = retryRefusal(entry.def, now, stage);
  switch (refusal.why) {
    case 'missing':
      return new HttpError(404, `no item ${clip(JSON.stringify(key))} in tracker \`${entry.name}\`; nothing changed.`);
    case 'not-parked':
      return new HttpError(409, `${item} is \`${refusal.status}\`, not parked in a failed status (${refusal.failedStatuses.join(', ')}); nothing changed.`);
    case 'not-parked-here':
      return new HttpError(409, `${item} is \`${refusal.status}\` under stage \`${refusal.stage}\`, and items also wait or finish in \`${refusal.status}\` (a stage claims from or completes into it), so it is not parked there; nothing changed.`);
    case 'other-stage':
      return new HttpError(409, `${item} was parked by stage \`${refusal.parkedBy}\`, not \`${stage}\`: retry it without a stage, or with \`${refusal.parkedBy}\`; nothing changed.`);
    case 'pick-stage':
      return new HttpError(
        409,
        `${item} is \`${refusal.status}\` with ${refusal.recorded === null ? 'no stage recorded' : `stage \`${refusal.recorded}\` recorded, which this tracker no longer declares`}, ` +
          `and \`${refusal.status}\` is the failed status of ${refusal.owners.length > 1 ? 'stages' : 'stage'} ${refusal.owners.join(', ')}: send \`stage\` with the one it should go back to; nothing changed.`,
      );
    case 'unclear':
      return new HttpError(
        409,
        `${item} is \`${refusal.status}\` ${refusal.recorded === null ? 'with no stage recorded' : `under stage \`${refusal.recorded}\`, which this tracker no longer declares,`} and items also wait in \`${refusal.status}\`, so retry cannot tell that it was parked; nothing changed.`,
      );
  }
}
