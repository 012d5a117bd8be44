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

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2_000;

/** The watcher of one database file. */
class FileWatcher {
  readonly #filename: string;
  readonly #open: OpenWatchConnection;
  readonly #listeners = new Map<Listener, number>();
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
    this.#listeners.set(fn, everyMs);
    if (this.#connection) {
      if (everyMs < this.#everyMs) this.#tick();
    } else if (!this.#opening && !this.#retry) {
      void this.#start();
    }
  }

  remove(fn: Listener): void {
    if (!this.#listeners.delete(fn)) return;
    if (this.#listeners.size > 0) return;
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#close();
    this.#onEmpty();
  }

  async #start(): Promise<void> {
    this.#opening = true;
    let connection: WatchConnection;
    try {
      // the file may not exist yet: the store creates it when a tracker first initialises
      connection = await this.#open(this.#filename);
      this.#version = connection.dataVersion();
    } catch {
      this.#opening = false;
      this.#schedule();
      return;
    }
    this.#opening = false;
    if (this.#listeners.size === 0) {
      connection.close();
      return;
    }
    this.#connection = connection;
    this.#delay = RETRY_MIN_MS;
    this.#tick();
    // commits before the first read were not seen: every listener looks once
    this.#emit();
  }

  /** (Re)starts the timer at the shortest interval any listener asked for. */
  #tick(): void {
    clearInterval(this.#timer);
    this.#everyMs = Math.min(...this.#listeners.values());
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
    for (const fn of this.#listeners.keys()) {
      try {
        fn({});
      } catch {
        // a listener's fault must not stop the others; polling covers the miss
      }
    }
  }

  #close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#everyMs = Number.POSITIVE_INFINITY;
    const connection = this.#connection;
    this.#connection = undefined;
    try {
      connection?.close();
    } catch {
      // closing a broken connection: nothing left to do
    }
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
