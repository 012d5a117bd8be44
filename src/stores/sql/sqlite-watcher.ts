/**
 * SQLite changes made by other processes, for {@link SqliteStore.watch}: one connection per
 * database file per process reads `PRAGMA data_version` on a short timer while anyone
 * listens. The value changes when another connection commits (any table, any change), so
 * listeners learn that something changed, not what; SQLite has no notifications to carry
 * more, and the check costs microseconds (it reads the WAL index in shared memory). Internal.
 * @module
 */
import { resolve } from 'node:path';
import type { StoreChange } from '../../store.js';

/** The connection a watcher reads `data_version` on. */
export interface WatchConnection {
  /** `PRAGMA data_version`. */
  dataVersion(): number;
  /** Closes it. */
  close(): void;
}

/** Opens a watch connection on an existing database file. */
export type OpenWatchConnection = (filename: string) => Promise<WatchConnection>;

type Listener = (change: StoreChange) => void;

/** A listener's interval, when it was last woken, and the wake-up it is owed (see `#deliver`). */
interface Subscription {
  readonly everyMs: number;
  last: number;
  owed: ReturnType<typeof setTimeout> | undefined;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2_000;

/** The watcher of one database file. */
class FileWatcher {
  readonly #filename: string;
  readonly #open: OpenWatchConnection;
  readonly #listeners = new Map<Listener, Subscription>();
  readonly #onEmpty: () => void;
  #connection: WatchConnection | undefined;
  #version = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #everyMs = Number.POSITIVE_INFINITY;
  #opening = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #delay = RETRY_MIN_MS;

  constructor(filename: string, open: OpenWatchConnection, onEmpty: () => void) {
    this.#filename = filename;
    this.#open = open;
    this.#onEmpty = onEmpty;
  }

  add(fn: Listener, everyMs: number): void {
    this.#listeners.set(fn, { everyMs, last: Number.NEGATIVE_INFINITY, owed: undefined });
    if (this.#connection) {
      if (everyMs < this.#everyMs) this.#tick();
    } else if (!this.#opening && !this.#retry) {
      void this.#start();
    }
  }

  remove(fn: Listener): void {
    const subscription = this.#listeners.get(fn);
    if (!subscription) return;
    this.#listeners.delete(fn);
    clearTimeout(subscription.owed);
    if (this.#listeners.size > 0) {
      // the fastest listener may have left: check no more often than the others ask
      if (this.#connection && this.#shortest() > this.#everyMs) this.#tick();
      return;
    }
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#close();
    // a connection still opening stays this file's one: `#start` closes it and lets go of the
    // watcher then. Let go of now, the next listener would open a second connection beside it
    // (a worker started and stopped in one turn of the event loop did, once per cycle, and each
    // left a file descriptor that SQLite keeps until the store's own connection closes)
    if (!this.#opening) this.#onEmpty();
  }

  async #start(): Promise<void> {
    this.#opening = true;
    let connection: WatchConnection | undefined;
    try {
      // the file may not exist yet: the store creates it when a tracker first initialises
      connection = await this.#open(this.#filename);
      this.#version = connection.dataVersion();
    } catch {
      closeQuietly(connection);
      this.#opening = false;
      if (this.#listeners.size === 0) this.#onEmpty();
      else this.#schedule();
      return;
    }
    this.#opening = false;
    if (this.#listeners.size === 0) {
      connection.close();
      this.#onEmpty();
      return;
    }
    this.#connection = connection;
    this.#delay = RETRY_MIN_MS;
    this.#tick();
    // commits before the first read were not seen: every listener looks once
    this.#emit();
  }

  /** The shortest interval any listener asked for. */
  #shortest(): number {
    return Math.min(...[...this.#listeners.values()].map((s) => s.everyMs));
  }

  /** (Re)starts the timer at the shortest interval any listener asked for. */
  #tick(): void {
    clearInterval(this.#timer);
    this.#everyMs = this.#shortest();
    this.#timer = setInterval(() => this.#check(), this.#everyMs);
    // a running worker keeps the process alive, not its watcher
    this.#timer.unref?.();
  }

  #check(): void {
    const connection = this.#connection;
    if (!connection) return;
    let version: number;
    try {
      version = connection.dataVersion();
    } catch {
      // the file was removed or the connection broke: open it again later
      this.#close();
      this.#schedule();
      return;
    }
    if (version === this.#version) return;
    this.#version = version;
    this.#emit();
  }

  #emit(): void {
    for (const [fn, subscription] of this.#listeners) this.#deliver(fn, subscription);
  }

  /**
   * Wakes `fn` at most once per its own interval: the file is checked at the shortest interval
   * any store on it asked for, and a store that asked for a longer one (an idle table beside a
   * busy one) would otherwise claim on every commit to the file. A change within the interval is
   * owed, and delivered when it ends.
   */
  #deliver(fn: Listener, subscription: Subscription): void {
    const wait = subscription.last + subscription.everyMs - performance.now();
    if (wait > 0) {
      subscription.owed ??= setTimeout(() => {
        subscription.owed = undefined;
        if (this.#listeners.get(fn) === subscription) this.#deliver(fn, subscription);
      }, wait);
      subscription.owed.unref?.();
      return;
    }
    subscription.last = performance.now();
    try {
      fn({});
    } catch {
      // a listener's fault must not stop the others; polling covers the miss
    }
  }

  #close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#everyMs = Number.POSITIVE_INFINITY;
    const connection = this.#connection;
    this.#connection = undefined;
    closeQuietly(connection);
  }

  #schedule(): void {
    if (this.#listeners.size === 0 || this.#retry) return;
    const delay = this.#delay;
    this.#delay = Math.min(RETRY_MAX_MS, this.#delay * 2);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#start();
    }, delay);
    this.#retry.unref?.();
  }
}

/** Closes `connection`, if any; closing a broken one leaves nothing to do. */
function closeQuietly(connection: WatchConnection | undefined): void {
  try {
    connection?.close();
  } catch {
    // closing a broken connection: nothing left to do
  }
}

const watchers = new Map<string, FileWatcher>();

/**
 * Watches a database file for commits by other connections, checking every `everyMs`; the
 * listener gets `{}` ("something changed") each time. One watcher per file per process.
 * Returns how to stop.
 */
export function watchFile(filename: string, everyMs: number, open: OpenWatchConnection, fn: Listener): () => void {
  const path = resolve(filename);
  let watcher = watchers.get(path);
  if (!watcher) {
    watcher = new FileWatcher(path, open, () => {
      if (watchers.get(path) === watcher) watchers.delete(path);
    });
    watchers.set(path, watcher);
  }
  const target = watcher;
  const entry: Listener = (change) => fn(change);
  target.add(entry, everyMs);
  return () => target.remove(entry);
}
