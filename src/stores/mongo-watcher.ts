/**
 * MongoDB change streams for {@link MongoStore.watch}: one `collection.watch()` per collection
 * per process, whatever the number of stores, trackers and workers, opened when the first
 * listener arrives and closed when the last one leaves (so that a process can exit). The
 * server filters the stream down to writes that make an item claimable. A stream that breaks
 * is resumed from its resume token, with backoff; where the token cannot be used, a new stream
 * starts and every listener is told that something may have been missed. A server without
 * change streams (a standalone `mongod`) is told once in a log line and never asked again:
 * idle workers then poll. Internal.
 * @module
 */
import type { ChangeStream, Collection, Document, ResumeToken } from 'mongodb';
import { ConfigError } from '../errors.js';
import { describe } from '../validate.js';
import type { Logger } from '../events.js';
import type { StoreChange } from '../store.js';
import { changePipeline, toChange } from './mongodb/change-events.js';

/** Options of {@link MongoStore} about wake-ups (`MongoStoreOptions` extends these). */
export interface MongoWatchOptions {
  /**
   * Wake idle workers in every process at once with a change stream on the collection, while
   * a worker of this process runs: one stream per collection per process, filtered by the
   * server to writes that make an item claimable. Needs a replica set or a sharded cluster; on
   * a standalone server (or a collection without `watch`) idle workers poll
   * (`pollMinMs`/`pollMaxMs`), after one log line saying so. `false`: never open a stream.
   * @default true
   */
  readonly changeStreams?: boolean;
  /**
   * Where the store writes its line when change streams are unavailable, or when a stream has
   * kept failing for 30 s (`warn`).
   * @default a line on stderr
   */
  readonly logger?: Pick<Logger, 'warn'>;
}

/** One listener of a collection's stream. */
export interface WatchSubscription {
  /** The statuses its tracker claims from; read each time the stream (re)starts. */
  readonly claimable: ReadonlySet<string>;
  /** Called with what became claimable, or `{}` (something may have changed: look). */
  readonly fn: (change: StoreChange) => void;
  /** Writes the one line saying that this collection cannot be watched. */
  readonly warn: (message: string) => void;
}

/** The part of a `Collection` a watcher needs. */
export type Watchable = Pick<Collection<Document>, 'watch'> & Partial<Pick<Collection<Document>, 'namespace'>>;

/** First and longest delay before opening a stream again after it broke. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;
/** How long a stream may keep failing (longer than an election) before a log line says so. */
export const STUCK_WARN_MS = 30_000;
/** Resume attempts that fail before a new stream (without the token) is started instead. */
const RESUME_TRIES = 3;
/** InvalidResumeToken, ChangeStreamFatalError (token not found), ChangeStreamHistoryLost. */
const TOKEN_LOST = new Set([260, 280, 286]);
/** Errors no retry can fix: the reason given in the log line. */
const PERMANENT: Record<number, string> = {
  40573: 'the server is a standalone `mongod`; change streams need a replica set or a sharded cluster',
};
/** Unauthorized: the user may not open a change stream. Tried again this rarely (a role or credentials being rotated). */
const DENIED = 13;
export const DENIED_RETRY_MS = 10 * 60_000;

type Stream = ChangeStream<Document, Document>;

/** The change stream of one collection, and who listens. */
class CollectionWatcher {
  readonly #collection: Watchable;
  readonly #subs = new Set<WatchSubscription>();
  readonly #onEmpty: () => void;
  #stream: Stream | undefined;
  /** The statuses the open stream filters on. */
  #filter = '';
  #token: ResumeToken | undefined;
  /** Whether the open stream started without a token (listeners look once it is up). */
  #fresh = false;
  /** Whether the open stream has been answered by the server. */
  #live = false;
  /** Resume attempts in a row that failed before the server answered. */
  #resumeFailures = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #delay = RETRY_MIN_MS;
  /** When the stream last stopped working, while it has not been up since. */
  #failingSince: number | undefined;
  /** Whether this outage has been logged (once per outage). */
  #warned = false;

  constructor(collection: Watchable, onEmpty: () => void) {
    this.#collection = collection;
    this.#onEmpty = onEmpty;
  }

  add(sub: WatchSubscription): void {
    this.#subs.add(sub);
    this.refresh();
  }

  remove(sub: WatchSubscription): void {
    if (!this.#subs.delete(sub) || this.#subs.size > 0) return;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#close();
    this.#onEmpty();
  }

  /** Opens the stream, or reopens it where the listeners' statuses grew (a store initialised). */
  refresh(): void {
    if (this.#subs.size === 0 || this.#retry || unwatchable.has(this.#collection)) return;
    const until = denied.get(this.#collection);
    if (until !== undefined && performance.now() < until) {
      this.#schedule(until - performance.now());
      return;
    }
    const statuses = [...new Set([...this.#subs].flatMap((s) => [...s.claimable]))].sort();
    // nothing is claimable before a store knows its tracker's stages (init)
    if (statuses.length === 0 || (this.#stream && statuses.join('\0') === this.#filter)) return;
    this.#close();
    const token = this.#token;
    let stream: Stream;
    try {
      // a wider filter resumes where the narrower stream stopped: nothing falls in between
      stream = this.#collection.watch<Document, Document>(changePipeline(statuses), { fullDocument: 'updateLookup', ...(token ? { resumeAfter: token } : {}) });
    } catch (error) {
      this.#failed(undefined, error);
      return;
    }
    this.#stream = stream;
    this.#filter = statuses.join('\0');
    this.#fresh = token === undefined;
    this.#live = false;
    // the driver sets a token once the server answered the stream's first command
    stream.on('resumeTokenChanged', (next) => this.#up(stream, next));
    stream.on('change', (event) => {
      if (this.#stream !== stream) return;
      this.#up(stream, stream.resumeToken ?? (event._id as ResumeToken));
      if (event.operationType !== 'invalidate') this.#emit(toChange(event));
    });
    // the driver has given up resuming by itself (or never started): this listener also keeps
    // an unhandled 'error' from crashing the process once the stream is closed
    stream.on('error', (error) => this.#failed(stream, error));
    // the driver emits `close` before the `error` that caused it (its cursor cleans up first):
    // handled a turn later, a close with an error is handled as that error (a standalone
    // server's 40573, a missing privilege), and only a close without one as a bare close
    stream.on('close', () => setImmediate(() => this.#failed(stream, undefined)));
  }

  #up(stream: Stream, token: ResumeToken | undefined): void {
    if (this.#stream !== stream) return;
    if (token !== undefined && token !== null) this.#token = token;
    this.#live = true;
    this.#delay = RETRY_MIN_MS;
    this.#resumeFailures = 0;
    this.#failingSince = undefined;
    this.#warned = false;
    denied.delete(this.#collection);
    if (!this.#fresh) return;
    this.#fresh = false;
    // changes before this stream started were not seen (at first start, or with the token lost)
    this.#emit({});
  }

  #failed(stream: Stream | undefined, error: unknown): void {
    if (stream && this.#stream !== stream) return;
    const resumeFailed = stream ? !this.#fresh && !this.#live : this.#token !== undefined;
    this.#close();
    const code = (error as { code?: unknown } | undefined)?.code;
    const reason = typeof code === 'number' ? PERMANENT[code] : undefined;
    if (code === DENIED) {
      // a grant being rotated may come back: said once, tried again every ten minutes (by
      // whichever watcher of the collection runs then: a worker started meanwhile waits too)
      const said = denied.has(this.#collection);
      denied.set(this.#collection, performance.now() + DENIED_RETRY_MS);
      if (!said) {
        [...this.#subs][0]?.warn(
          `[leasehold] [mongodb] no change stream on \`${this.#collection.namespace ?? 'the collection'}\`: the user may not open one on it (the \`changeStream\` and \`find\` actions). Idle workers poll instead (\`pollMinMs\`/\`pollMaxMs\`), and the stream is tried again every ${DENIED_RETRY_MS / 60_000} minutes; \`changeStreams: false\` silences this.`,
        );
      }
      this.#schedule(DENIED_RETRY_MS);
      return;
    }
    if (reason || /only supported on replica sets/i.test(String((error as Error | undefined)?.message))) {
      unwatchable.add(this.#collection);
      const line = `[leasehold] [mongodb] no change stream on \`${this.#collection.namespace ?? 'the collection'}\`: ${reason ?? PERMANENT[40573]}. Idle workers poll instead (\`pollMinMs\`/\`pollMaxMs\`); \`changeStreams: false\` silences this.`;
      [...this.#subs][0]?.warn(line);
      return;
    }
    this.#stuck(error);
    if (resumeFailed) this.#resumeFailures++;
    if ((typeof code === 'number' && TOKEN_LOST.has(code)) || this.#resumeFailures >= RESUME_TRIES) {
      // the oplog no longer holds the token (or it cannot be resumed from): start anew; the new
      // stream tells every listener to look, and polling covered the gap meanwhile
      this.#token = undefined;
      this.#resumeFailures = 0;
    }
    this.#schedule();
  }

  /**
   * Says once per outage that the stream has kept failing for {@link STUCK_WARN_MS}: idle workers
   * then wait for their poll, and an error that is not transient (a missing privilege the server
   * reports under another code, a pipeline it refuses) would otherwise go unnoticed for good.
   */
  #stuck(error: unknown): void {
    const now = performance.now();
    this.#failingSince ??= now;
    if (this.#warned || now - this.#failingSince < STUCK_WARN_MS) return;
    this.#warned = true;
    const e = error as { code?: unknown; codeName?: unknown; message?: unknown } | undefined;
    const cause = e?.message ? `${e.codeName ?? e.code ?? 'error'}: ${String(e.message)}` : 'closed without an error';
    const seconds = Math.round((now - this.#failingSince) / 1000);
    [...this.#subs][0]?.warn(
      `[leasehold] [mongodb] the change stream on \`${this.#collection.namespace ?? 'the collection'}\` has kept failing for ${seconds} s (last: ${cause}). Idle workers poll meanwhile (\`pollMinMs\`/\`pollMaxMs\`); the stream is retried every ${RETRY_MAX_MS / 1000} s at most, and this is said again only after it has worked.`,
    );
  }

  #schedule(after?: number): void {
    if (this.#subs.size === 0 || this.#retry) return;
    const delay = after ?? this.#delay * (0.75 + Math.random() * 0.5);
    if (after === undefined) this.#delay = Math.min(RETRY_MAX_MS, this.#delay * 2);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.refresh();
    }, delay);
    this.#retry.unref?.();
  }

  #emit(change: StoreChange): void {
    for (const sub of this.#subs) {
      if (change.status !== undefined && !sub.claimable.has(change.status)) continue;
      try {
        sub.fn(change);
      } catch {
        // a listener's fault must not reach the driver's stream; polling covers the miss
      }
    }
  }

  #close(): void {
    const stream = this.#stream;
    this.#stream = undefined;
    this.#filter = '';
    stream?.close().catch(() => {});
  }
}

const watchers = new WeakMap<Watchable, CollectionWatcher>();
const firstByClient = new WeakMap<object, Map<string, unknown>>();

/**
 * The first `Collection` object seen for its client and namespace, which the stream of that
 * collection is keyed on: stores given separate `db.collection(name)` objects of one collection
 * share one stream. A collection that shows no client or namespace is its own key.
 */
function streamKey(collection: Watchable): Watchable {
  const { client, namespace } = collection as { client?: unknown; namespace?: unknown };
  if (client === null || typeof client !== 'object' || typeof namespace !== 'string') return collection;
  return firstOf(firstByClient, client, namespace, () => collection);
}

/** The value kept for `owner` and `name`, made by `make` the first time. */
function firstOf<T>(cache: WeakMap<object, Map<string, unknown>>, owner: object, name: string, make: () => T): T {
  let names = cache.get(owner);
  if (!names) cache.set(owner, (names = new Map()));
  if (!names.has(name)) names.set(name, make());
  return names.get(name) as T;
}
/** Collections whose server said it has no change streams: never asked again. */
const unwatchable = new WeakSet<Watchable>();
/** Collections whose change stream the user was refused (Unauthorized): when to try again (monotonic ms). */
const denied = new WeakMap<Watchable, number>();

/**
 * Listens to the collection's one change stream; returns how to stop. Each call is its own
 * subscription, even for the same function.
 */
export function watchCollection(given: Watchable, sub: WatchSubscription): () => void {
  const collection = streamKey(given);
  let watcher = watchers.get(collection);
  if (!watcher) {
    watcher = new CollectionWatcher(collection, () => {
      if (watchers.get(collection) === watcher) watchers.delete(collection);
    });
    watchers.set(collection, watcher);
  }
  const target = watcher;
  const entry: WatchSubscription = { ...sub };
  target.add(entry);
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    target.remove(entry);
  };
}

/**
 * The `watch` of a store on `collection`, or `undefined` where it cannot watch (no
 * `collection.watch`, or `changeStreams: false`). `claimable` is the store's own set, which
 * grows when trackers initialise it.
 */
export function storeWatch(
  collection: Partial<Watchable>,
  claimable: ReadonlySet<string>,
  options: MongoWatchOptions,
): ((fn: (change: StoreChange) => void) => () => void) | undefined {
  const enabled = options.changeStreams ?? true;
  if (typeof enabled !== 'boolean') throw new ConfigError('changeStreams', `[mongodb] expected \`true\` or \`false\`, got ${describe(enabled)}.`);
  if (!enabled || typeof collection.watch !== 'function') return undefined;
  const logger = options.logger;
  const warn = (line: string) => (logger?.warn ? logger.warn({ store: 'mongodb' }, line) : process.stderr.write(`${line}\n`));
  return (fn) => watchCollection(collection as Watchable, { claimable, fn, warn });
}

/** A store on the collection learnt its claimable statuses: widen the stream's filter. */
export function rewatch(collection: object): void {
  watchers.get(streamKey(collection as Watchable))?.refresh();
}

const byName = new WeakMap<object, Map<string, unknown>>();

/**
 * One `Collection` object per `Db` and name, so that stores made from a `Db` and a name share
 * one stream (the driver's `db.collection(name)` makes a new object on every call).
 */
export function sharedCollection<C>(db: { collection(name: string): C }, name: string): C {
  return firstOf(byName, db, name, () => db.collection(name));
}
