/**
 * Redis pub/sub for {@link RedisStore.watch}: one subscribing connection per store (a
 * `duplicate()` of the user's client, since a subscribed connection can run nothing else),
 * opened while anyone listens and closed when the last listener leaves. The client reconnects
 * and subscribes again by itself; messages published meanwhile are lost, so every listener is
 * then told that something may have changed. Internal.
 * @module
 */
import type { StoreChange } from '../../store.js';
import { parsePayload } from '../sql/pg-listener.js';

/** The part of a duplicated ioredis connection the subscriber uses. */
export interface RedisSubscriberConnection {
  /** `SUBSCRIBE channel`. */
  subscribe(channel: string): Promise<unknown>;
  /** `message` (channel, text), `ready` (connected again) and `error` events. */
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  /** Closes the connection after pending replies. */
  quit(): Promise<unknown>;
  /** Closes the connection at once. */
  disconnect(): void;
}

type Listener = (change: StoreChange) => void;

/** The listeners of one store and its subscribing connection while there are any. */
export class Subscriber {
  readonly #open: () => RedisSubscriberConnection;
  readonly #channel: string;
  readonly #listeners = new Set<Listener>();
  #connection: RedisSubscriberConnection | undefined;

  constructor(open: () => RedisSubscriberConnection, channel: string) {
    this.#open = open;
    this.#channel = channel;
  }

  /** Adds a listener; returns how to remove it. */
  listen(fn: Listener): () => void {
    // each subscription is its own entry, even when the same function subscribes twice
    const entry: Listener = (change) => fn(change);
    this.#listeners.add(entry);
    if (!this.#connection) this.#connect();
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      this.#listeners.delete(entry);
      if (this.#listeners.size === 0) this.#close();
    };
  }

  #connect(): void {
    const connection = this.#open();
    this.#connection = connection;
    let subscribing = false;
    const subscribe = () => {
      subscribing = true;
      connection.subscribe(this.#channel).then(
        () => {
          subscribing = false;
          // what was published before the subscription took effect was not heard either
          if (this.#connection === connection) this.#deliver({});
        },
        // refused before the connection was ready (a client with `enableOfflineQueue: false`,
        // which `duplicate()` copies), or closed because the last listener left: 'ready' tries again
        () => {
          subscribing = false;
        },
      );
    };
    // an error with no listener would crash the process; the client reconnects by itself
    connection.on('error', () => {});
    connection.on('message', (channel, message) => {
      if (channel === this.#channel) this.#deliver(parsePayload(String(message)));
    });
    connection.on('ready', () => {
      if (this.#connection !== connection) return;
      // a reconnection: what was published while it was down was not heard, so look, but only
      // once the subscription holds again. The client subscribes again by itself, but after it
      // says 'ready': a look delivered now could be answered by a claim before that, and an item
      // published in between would go unheard. Subscribing once more (harmless) tells when.
      if (!subscribing) subscribe();
    });
    subscribe();
  }

  #close(): void {
    const connection = this.#connection;
    this.#connection = undefined;
    connection?.quit().catch(() => connection.disconnect());
  }

  #deliver(change: StoreChange): void {
    for (const fn of this.#listeners) {
      try {
        fn(change);
      } catch {
        // a listener's fault must not reach the client's event loop; polling covers the miss
      }
    }
  }
}
