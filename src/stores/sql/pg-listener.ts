/**
 * PostgreSQL `LISTEN` for {@link PostgresStore.watch}: one listening connection per pool per
 * process, whatever the number of stores, trackers and workers, taken from the pool while
 * anyone listens and destroyed when the last listener leaves (so that `pool.end()` can
 * finish). A lost connection is replaced with backoff; since notifications sent meanwhile are
 * lost, every listener is then told that something may have changed. Internal.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { StoreChange } from '../../store.js';

/** A notification as `pg` delivers it. */
export interface PgNotification {
  /** The channel it was sent on. */
  readonly channel: string;
  /** Its payload. */
  readonly payload?: string | undefined;
}

/** The part of a `pg` pool client the listener uses. */
export interface PgListenClient {
  /** Runs a simple query (`LISTEN`, `UNLISTEN`). */
  query(text: string): Promise<unknown>;
  /** A notification arrived. */
  on(event: 'notification', listener: (message: PgNotification) => void): unknown;
  /** The connection failed. */
  on(event: 'error', listener: (error: Error) => void): unknown;
  /** The connection ended. */
  on(event: 'end', listener: () => void): unknown;
  /** Gives the client back to the pool; `true` or an error destroys its connection. */
  release(destroy?: Error | boolean): void;
}

/** A pool that lends a client for listening. */
export interface PgConnectable {
  /** Checks a client out of the pool (`pg.Pool#connect`). */
  connect(): Promise<PgListenClient>;
}

type Listener = (change: StoreChange) => void;

/** First and longest delay before connecting again after a lost connection. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5_000;

/**
 * How often the listening connection is checked with a `SELECT 1`, and how long that may take.
 * A connection that a NAT, firewall or load balancer dropped while idle never errors: without
 * the check, no notification would arrive again and nothing would say so. One that does not
 * answer is replaced (and listeners told to look). Internal; tests shorten it.
 */
export const listenCheck = { everyMs: 30_000, timeoutMs: 10_000, probeMs: 5_000 };

/** The listening connection of one pool, and who listens on which channel. */
class PoolListener {
  readonly #pool: PgConnectable;
  readonly #channels = new Map<string, Set<Listener>>();
  #client: PgListenClient | undefined;
  /** Ends the current client for good (set while one is held). */
  #drop: ((error?: Error) => void) | undefined;
  #connecting = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  /** The next check of the held connection (see {@link listenCheck}). */
  #checking: ReturnType<typeof setTimeout> | undefined;
  #delay = RETRY_MIN_MS;
  /** Notifications from other sessions never reached a listening connection (see {@link probe}). */
  #deaf = false;

  constructor(pool: PgConnectable) {
    this.#pool = pool;
  }

  add(channel: string, fn: Listener): void {
    let set = this.#channels.get(channel);
    if (!set) {
      set = new Set();
      this.#channels.set(channel, set);
      if (this.#client) this.#client.query(`LISTEN "${channel}"`).catch((error: unknown) => this.#drop?.(asError(error)));
    }
    set.add(fn);
    if (!this.#client && !this.#connecting && !this.#retry && !this.#deaf) void this.#connect();
  }

  remove(channel: string, fn: Listener): void {
    const set = this.#channels.get(channel);
    if (!set?.delete(fn) || set.size > 0) return;
    this.#channels.delete(channel);
    if (this.#channels.size > 0) {
      this.#client?.query(`UNLISTEN "${channel}"`).catch(() => {});
      return;
    }
    clearTimeout(this.#retry);
    this.#retry = undefined;
    this.#drop?.();
  }

  async #connect(): Promise<void> {
    this.#connecting = true;
    let client: PgListenClient;
    try {
      client = await this.#pool.connect();
    } catch {
      this.#connecting = false;
      this.#schedule();
      return;
    }
    this.#connecting = false;
    if (this.#channels.size === 0) {
      client.release(true);
      return;
    }
    let held = true;
    const drop = (error?: Error) => {
      if (!held) return;
      held = false;
      clearTimeout(this.#checking);
      this.#checking = undefined;
      if (this.#client === client) {
        this.#client = undefined;
        this.#drop = undefined;
      }
      // destroy rather than return it: a pooled connection would keep listening
      client.release(error ?? true);
      this.#schedule();
    };
    // a checked-out client that errors with no listener would crash the process
    client.on('error', (error) => drop(error));
    client.on('end', () => drop());
    const probe = `leasehold_probe_${randomUUID()}`;
    const heard = { yes: false, wake: () => {} };
    const arrived = new Promise<void>((resolve) => (heard.wake = resolve));
    client.on('notification', (message) => {
      if (message.channel !== probe) return this.#deliver(message);
      heard.yes = true;
      heard.wake();
    });
    this.#client = client;
    this.#drop = drop;
    try {
      // the probe's channel first: the channels' LISTEN stays the connection's last query
      await client.query(`LISTEN "${probe}"`);
      for (const channel of [...this.#channels.keys()]) await client.query(`LISTEN "${channel}"`);
    } catch (error) {
      drop(asError(error));
      return;
    }
    if (!held) return;
    this.#check(client, () => held, drop);
    this.#delay = RETRY_MIN_MS;
    // what was sent before this LISTEN (at start, or while reconnecting) was not heard: look
    for (const channel of this.#channels.keys()) this.#deliver({ channel });
    void this.#probe(client, probe, arrived, () => heard.yes, () => held, drop);
  }

  /**
   * Sends a notification to the probe's channel from another connection of the pool, as a
   * producer in another process would, and expects the listening connection to hear it. Behind
   * a pooler in transaction mode it never does: the `LISTEN` held for one transaction on a
   * server connection the pooler has since lent to others. Then say so once and stop listening
   * on this pool for good (idle workers poll), rather than leave a `LISTEN` behind on every
   * server connection the pooler lends. Not heard in time, the listening connection is asked a
   * `SELECT 1`, whose answer comes after whatever is pending for it: no answer means a dead
   * connection (replaced, no verdict), an answer without the probe a pooler. A probe that cannot
   * be sent proves nothing.
   */
  async #probe(client: PgListenClient, probe: string, arrived: Promise<void>, heard: () => boolean, holding: () => boolean, drop: (error?: Error) => void): Promise<void> {
    try {
      const sender = await this.#pool.connect();
      try {
        await sender.query(`NOTIFY "${probe}"`);
      } finally {
        sender.release();
      }
    } catch {
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((resolve) => {
      // a turn later: after a stall of the event loop, the socket's data is read before this decides
      timer = setTimeout(() => setImmediate(() => setImmediate(() => resolve('late'))), listenCheck.probeMs);
      timer.unref?.();
    });
    const outcome = await Promise.race([arrived, late]);
    clearTimeout(timer);
    if (outcome !== 'late' || !holding()) return;
    // not heard: a connection that answers a query is given what is pending for it before the
    // answer, so ask. No answer: the connection died (dropped and connected again, no verdict);
    // an answer and still no probe: the notification went to another server connection
    const answered = await this.#answers(client, drop);
    if (!answered || !holding()) return;
    if (heard()) return;
    this.#deaf = true;
    process.stderr.write(
      `[leasehold] [postgres] a notification sent from another connection of the pool did not reach its listening connection within ${listenCheck.probeMs} ms, ` +
        'as behind a pooler in transaction mode (PgBouncer, RDS Proxy), where LISTEN does not work: idle workers of this pool poll instead (up to pollMaxMs). ' +
        'Give the store `notifications: false` to silence this, or give the workers a pool that connects to PostgreSQL directly for wake-ups within milliseconds.\n',
    );
    drop();
  }

  /**
   * Whether `client` answers a `SELECT 1` within {@link listenCheck}.timeoutMs; if not (no answer,
   * or an error), it is dropped. A connection that a NAT, firewall or load balancer dropped while
   * idle never errors: only a query tells.
   */
  async #answers(client: PgListenClient, drop: (error?: Error) => void): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const silent = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), listenCheck.timeoutMs);
      timer.unref?.();
    });
    let failed: Error | undefined;
    const answer = client.query('SELECT 1').then(
      () => true,
      (error: unknown) => ((failed = asError(error)), false),
    );
    const ok = await Promise.race([answer, silent]);
    clearTimeout(timer);
    if (!ok) drop(failed ?? new Error(`[leasehold] [postgres] the listening connection did not answer a check within ${listenCheck.timeoutMs} ms; connecting again`));
    return ok;
  }

  /** Checks the held connection every {@link listenCheck}.everyMs until it is dropped. */
  #check(client: PgListenClient, holding: () => boolean, drop: (error?: Error) => void): void {
    this.#checking = setTimeout(() => {
      this.#checking = undefined;
      if (!holding()) return;
      void this.#answers(client, drop).then((ok) => {
        if (ok && holding()) this.#check(client, holding, drop);
      });
    }, listenCheck.everyMs);
    this.#checking.unref?.();
  }

  #schedule(): void {
    if (this.#channels.size === 0 || this.#retry || this.#client || this.#connecting || this.#deaf) return;
    const delay = this.#delay * (0.75 + Math.random() * 0.5);
    this.#delay = Math.min(RETRY_MAX_MS, this.#delay * 2);
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      void this.#connect();
    }, delay);
    this.#retry.unref?.();
  }

  #deliver(message: PgNotification): void {
    const set = this.#channels.get(message.channel);
    if (!set) return;
    const change = parsePayload(message.payload);
    for (const fn of set) {
      try {
        fn(change);
      } catch {
        // a listener's fault must not reach pg's connection code; polling covers the miss
      }
    }
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/**
 * Reads a payload `<ms>:<status>`: the item is claimable in `ms` milliseconds as the database
 * measured it (0: now). Anything else means "something changed".
 */
export function parsePayload(payload: string | undefined): StoreChange {
  const colon = payload?.indexOf(':') ?? -1;
  if (payload === undefined || colon < 1) return {};
  const ms = Number(payload.slice(0, colon));
  const status = payload.slice(colon + 1);
  if (!Number.isFinite(ms) || status.length === 0) return {};
  if (ms <= 0) return { status };
  const at = new Date(Date.now() + ms);
  // past what a Date holds: a time no one can wait for, read as "something changed"
  return Number.isNaN(at.getTime()) ? {} : { status, at };
}

const listeners = new WeakMap<PgConnectable, PoolListener>();

/** Listens on `channel` through the pool's one listening connection; returns how to stop. */
export function listen(pool: PgConnectable, channel: string, fn: Listener): () => void {
  let listener = listeners.get(pool);
  if (!listener) {
    listener = new PoolListener(pool);
    listeners.set(pool, listener);
  }
  const target = listener;
  // each subscription is its own entry, even when the same function subscribes twice
  const entry: Listener = (change) => fn(change);
  target.add(channel, entry);
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    target.remove(channel, entry);
  };
}

/**
 * The channel of a table: `leasehold.<schema>.<table>` (names are validated identifiers, so
 * it needs no escaping), shortened with a hash past PostgreSQL's 63-byte identifier limit.
 */
export function channelName(schema: string, table: string, hash: (text: string) => string): string {
  const full = `leasehold.${schema}.${table}`;
  return full.length <= 63 ? full : `leasehold.${hash(full)}.${table.slice(0, 40)}`;
}
