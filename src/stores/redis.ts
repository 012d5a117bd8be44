/**
 * `RedisStore`: items in Redis, through an `ioredis` client you pass in (`ioredis` is a peer
 * dependency): every operation is one Lua script run with `EVALSHA`, timed by the server's
 * `TIME`. For teams whose queue already lives in Redis, such as BullMQ's users.
 *
 * @module leasehold/redis
 */
import { createHash, randomBytes } from 'node:crypto';
import { ConfigError, notInitialised } from '../errors.js';
import { describe, requireKnownOptions } from '../validate.js';
import type {
  Change,
  Condition,
  FindOptions,
  GuardedUpdate,
  InsertResult,
  KeyField,
  NewItem,
  Returning,
  Store,
  StoreCapabilities,
  StoreChange,
  StoreSchema,
  StoredItem,
  StoreStats,
  UpdateOptions,
} from '../store.js';
import { canonicalKey, decodeItem, encodeChange, encodeCondition, encodeData, keyOrder } from './redis/codec.js';
import type { RedisClient } from './redis/client.js';
import { requireDurableServer, requireReplicas } from './redis/durability.js';
import { SCRIPTS, type ScriptName } from './redis/scripts.js';
import type { RedisDurability, RedisStoreOptions } from './redis/options.js';
import { Subscriber } from './redis/subscriber.js';

export type { RedisClient, RedisPipeline, RedisReplicas } from './redis/client.js';
export type { RedisConfigReader } from './redis/durability.js';
export type { RedisSubscriberConnection } from './redis/subscriber.js';
export type { RedisDurability, RedisStoreOptions } from './redis/options.js';

/**
 * Scripts that write items: each call has an id (see "Resent calls" in scripts.ts); with
 * `replicas`, each is followed by `WAIT`. Not `init`, which runs the same however often it is
 * sent, and whose one write, the record of the key fields, the next `init` makes again alike if a
 * failover lost it.
 */
const WRITES: ReadonlySet<ScriptName> = new Set(['insert', 'update', 'updateEach', 'delete']);

/** Writes that may record what they did under their call id, for a resend of the call to find. */
const RECORDED: ReadonlySet<ScriptName> = new Set(['update', 'delete']);

const SHAS = Object.fromEntries(Object.entries(SCRIPTS).map(([name, text]) => [name, createHash('sha1').update(text).digest('hex')])) as Record<ScriptName, string>;

type Row = Array<string | null>;

/** The server and key prefix of a standalone ioredis client, or `undefined` (see `RedisStore.location`). */
function locationOf(client: unknown, base: string): string | undefined {
  const c = client as { isCluster?: unknown; options?: { host?: unknown; port?: unknown; path?: unknown; db?: unknown; sentinels?: unknown } };
  const o = c.options;
  if (c.isCluster === true || !o || (Array.isArray(o.sentinels) && o.sentinels.length > 0)) return undefined;
  const where = typeof o.path === 'string' && o.path !== '' ? `unix:${o.path}` : typeof o.host === 'string' && o.host !== '' ? `${o.host}:${String(o.port)}` : undefined;
  return where === undefined ? undefined : `redis://${where}/${String(o.db ?? 0)}#${base}`;
}

/**
 * A store in Redis through `ioredis`. Each item is a hash; each status a sorted set of item ids
 * scored by deadline, which serves claim-next, backoff, reap and purge alike; the key's
 * canonical JSON maps to the item id in one more hash. Every operation is one Lua script, so
 * each transition is atomic on the server, and lease and backoff times come from its `TIME`.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * const store = new RedisStore({ client: new Redis(process.env.REDIS_URL!), prefix: 'partner_log_trackers' });
 * ```
 */
export class RedisStore implements Store {
  readonly name = 'redis';
  /**
   * `redis://<host>:<port or socket>/<db>#<key prefix>` of a standalone client (see
   * `Store.location`); absent for a Cluster or Sentinel client, whose server it cannot tell.
   */
  readonly location?: string;
  /** Batch claims and settles are one script each. */
  readonly capabilities: StoreCapabilities = Object.freeze({ batchClaim: true, batchSettle: true, priorDeadline: true });
  readonly #client: RedisClient;
  /** `{prefix}:` after the client's `keyPrefix`: every key of the store starts with it. */
  readonly #base: string;
  /** `{prefix}:ids`, the one key a script declares: ioredis adds the `keyPrefix` itself. */
  readonly #ids: string;
  readonly #durability: RedisDurability;
  readonly #notifications: boolean;
  readonly #replicas: { count: number; timeoutMs: number } | undefined;
  /** Statuses some stage claims from (of every tracker that initialised this store). */
  readonly #claimable = new Set<string>();
  #claimableJson = '[]';
  /** Ids of calls whose replies arrived (or that failed for good): the next write deletes their records. */
  #answered: string[] = [];
  /** The key fields in the store's key order (see `keyOrder`). */
  #keys: KeyField[] | undefined;
  #checked: Promise<void> | undefined;

  /**
   * Calls `listener` when any process makes an item claimable in this store (see the
   * `notifications` option), and once after each (re)connection of the subscribing connection.
   * Absent when `notifications` is `false`.
   */
  readonly watch?: (listener: (change: StoreChange) => void) => () => void;

  constructor(options: RedisStoreOptions) {
    requireKnownOptions('', options ?? null, ['client', 'prefix', 'durability', 'notifications', 'replicas'], REDIS);
    const { client, prefix } = options;
    if (!client) {
      throw new ConfigError('client', '[redis] Missing required option `client`: pass an `ioredis` client (`new Redis(url)` or `new Cluster(nodes)`).');
    }
    if (typeof client.evalsha !== 'function') {
      const nodeRedis = typeof (client as { evalSha?: unknown }).evalSha === 'function' ? ' (this looks like a node-redis client, which leasehold does not drive)' : '';
      throw new ConfigError('client', `[redis] expected an \`ioredis\` client (\`new Redis(url)\` or \`new Cluster(nodes)\`): the one given has no \`evalsha\`${nodeRedis}.`);
    }
    if (typeof prefix !== 'string' || !/^[^{}]{1,200}$/.test(prefix)) {
      throw new ConfigError('prefix', `[redis] expected 1 to 200 characters without \`{\` or \`}\` (the prefix becomes the Cluster hash tag), got ${describe(prefix)}.`);
    }
    const durability = options.durability ?? 'strict';
    if (durability !== 'strict' && durability !== 'relaxed') {
      throw new ConfigError('durability', `[redis] expected \`'strict'\` or \`'relaxed'\`, got ${describe(durability)}.`);
    }
    const notifications = options.notifications ?? true;
    if (typeof notifications !== 'boolean') {
      throw new ConfigError('notifications', `[redis] expected \`true\` or \`false\`, got ${describe(notifications)}.`);
    }
    if (options.replicas !== undefined) {
      requireKnownOptions('replicas', options.replicas, ['count', 'timeoutMs'], REDIS);
      const { count, timeoutMs = 1_000 } = options.replicas;
      if (!Number.isInteger(count) || count < 1) throw new ConfigError('replicas.count', `[redis] expected a positive integer, got ${describe(count)}.`);
      if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new ConfigError('replicas.timeoutMs', `[redis] expected a positive integer of milliseconds, got ${describe(timeoutMs)}.`);
      if (typeof client.pipeline !== 'function') throw new ConfigError('replicas', '[redis] the client has no `pipeline()`: pass an `ioredis` client.');
      this.#replicas = Object.freeze({ count, timeoutMs });
    }
    this.#client = client;
    this.#base = `${keyPrefixOf(client)}{${prefix}}:`;
    this.location = locationOf(client, this.#base);
    this.#ids = `{${prefix}}:ids`;
    this.#durability = durability;
    this.#notifications = notifications;
    if (notifications && typeof client.duplicate === 'function') {
      // one subscribing connection per store, whatever the number of trackers and workers; the
      // channel is the full name the scripts publish on, as ioredis does not prefix channels
      const subscriber = new Subscriber(() => client.duplicate(), `${this.#base}wake`);
      this.watch = (listener) => subscriber.listen(listener);
    }
  }

  async init(schema: StoreSchema): Promise<void> {
    if (this.#durability === 'strict') {
      // once per store: a refusal is not cached, so a fixed server is accepted on the next try
      this.#checked ??= (this.#replicas ? requireReplicas(this.#client, this.#replicas.count) : requireDurableServer(this.#client)).catch((error: unknown) => {
        this.#checked = undefined;
        throw error;
      });
      await this.#checked;
    }
    // loaded now so that the first call of each operation is one round trip too
    await Promise.all(Object.values(SCRIPTS).map((text) => this.#client.script('LOAD', text)));
    const unprefixed = this.#ids.slice(0, -'ids'.length);
    const [recorded, split, count] = (await this.#run('init', JSON.stringify(schema.keyFields.map(({ name }) => name)), unprefixed)) as [string, number, number];
    if (split === 1) throw splitLayout(this.#base, unprefixed);
    if (split === 2) throw counterLost(this.#base, count);
    for (const status of schema.claimable ?? []) this.#claimable.add(status);
    this.#claimableJson = this.#notifications ? JSON.stringify([...this.#claimable]) : '[]';
    this.#keys = keyOrder(
      schema.keyFields.map(({ name, type }) => ({ name, type })),
      parseNames(recorded, this.#base),
      { store: this.#base, items: count },
    );
  }

  async insert(item: NewItem): Promise<InsertResult> {
    const keys = this.#ready('insert');
    const deadline = !item.deadline ? ['', ''] : 'at' in item.deadline ? ['at', item.deadline.at.getTime()] : ['ms', item.deadline.ms];
    const [created, row] = (await this.#run('insert', canonicalKey(keys, item.key), item.status, encodeData(item.data), ...deadline)) as [number, Row];
    return { item: decodeItem(keys, row), created: created === 1 };
  }

  async update(cond: Condition, change: Change, options: UpdateOptions = {}): Promise<StoredItem[]> {
    const keys = this.#ready('update');
    const args = [JSON.stringify(encodeCondition(keys, cond)), JSON.stringify(encodeChange(change)), limitOf(options.limit), options.returning ?? 'item'];
    // only when asked: the script then appends each item's deadline from before the change
    const rows = (await this.#run('update', ...args, ...(options.priorDeadline ? ['1'] : []))) as Row[];
    if (!options.priorDeadline) return rows.map((row) => decodeItem(keys, row));
    return rows.map((row) => Object.assign(decodeItem(keys, row.slice(0, -1)), { priorDeadline: new Date(Number(row.at(-1))) }));
  }

  async updateEach(updates: readonly GuardedUpdate[], options: { returning?: Returning } = {}): Promise<Array<StoredItem | null>> {
    const keys = this.#ready('updateEach');
    if (updates.length === 0) return [];
    const list = updates.map(({ guard, change }) => [
      encodeCondition(keys, { ref: guard.ref, key: guard.key, status: [guard.status], fence: guard.fence, ...(guard.expired ? { deadline: 'passed' as const } : {}) }),
      encodeChange(change),
    ]);
    const rows = (await this.#run('updateEach', JSON.stringify(list), options.returning ?? 'item')) as Array<Row | null>;
    return updates.map((_, i) => (rows[i] ? decodeItem(keys, rows[i]) : null));
  }

  async find(cond: Partial<Condition>, options: FindOptions = {}): Promise<StoredItem[]> {
    const keys = this.#ready('find');
    const rows = (await this.#run('find', JSON.stringify(encodeCondition(keys, cond)), limitOf(options.limit), options.returning ?? 'item')) as Row[];
    return rows.map((row) => decodeItem(keys, row));
  }

  async delete(cond: Condition, options: { limit: number }): Promise<number> {
    const keys = this.#ready('delete');
    return Number(await this.#run('delete', JSON.stringify(encodeCondition(keys, cond)), limitOf(options.limit)));
  }

  async stats(): Promise<StoreStats> {
    this.#ready('stats');
    const flat = (await this.#run('stats')) as Array<string | number>;
    const byStatus: Record<string, { total: number; future: number }> = {};
    for (let i = 0; i + 2 < flat.length; i += 3) byStatus[String(flat[i])] = { total: Number(flat[i + 1]), future: Number(flat[i + 2]) };
    return { byStatus };
  }

  /**
   * One script call: `EVALSHA`; if the node lost the script (a restart, `SCRIPT FLUSH`, a Cluster
   * node other than the one `init` loaded it on), `EVAL` with its text, sent the same way (to the
   * node of the store's slot), which also caches it there.
   */
  async #run(name: ScriptName, ...args: Array<string | number>): Promise<unknown> {
    const write = WRITES.has(name);
    // one id for the call, the same in a fallback to EVAL and in whatever the client resends
    const id = write ? randomBytes(9).toString('base64url') : '';
    const answered = write ? this.#answered.splice(0) : [];
    const argv = [this.#ids, this.#base, this.#claimableJson, id, answered.join(','), ...args];
    const replicas = this.#replicas;
    const call = (text: boolean) => {
      if (replicas && write) return this.#waited(name, text, argv, replicas);
      return text ? this.#client.eval(SCRIPTS[name], 1, ...argv) : this.#client.evalsha(SHAS[name], 1, ...argv);
    };
    try {
      const reply = await call(false).catch((error: unknown) => {
        if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
        return call(true);
      });
      // answered: the client sends it no more, so its record can go
      if (RECORDED.has(name)) this.#answered.push(id);
      return reply;
    } catch (error) {
      // these records may not have been deleted; the next write tries again. This call's own
      // record stays until it expires: a call that failed here (a command timeout) may still sit
      // in the client's queue and be sent again after a reconnection, and must find it
      this.#answered.push(...answered);
      throw error;
    }
  }

  /** The script and `WAIT` in one pipeline; fails unless enough replicas confirmed the write. */
  async #waited(name: ScriptName, text: boolean, argv: Array<string | number>, replicas: { count: number; timeoutMs: number }): Promise<unknown> {
    const pipeline = this.#client.pipeline!();
    const replies = (await (text ? pipeline.eval(SCRIPTS[name], 1, ...argv) : pipeline.evalsha(SHAS[name], 1, ...argv)).wait(replicas.count, replicas.timeoutMs).exec()) ?? [];
    const [[scriptError, result] = [null, undefined], [waitError, confirmed] = [null, 0]] = replies;
    if (scriptError) throw scriptError;
    if (waitError) throw waitError;
    if (Number(confirmed) < replicas.count) {
      // the primary applied it: a claim stays held until its lease expires and is reaped
      throw new Error(
        `WAIT timed out: ${Number(confirmed)} of ${replicas.count} replicas confirmed the write within ${replicas.timeoutMs} ms, so a failover could lose it; ` +
          'the primary applied it (a claim is reaped when its lease expires). Check the replicas (INFO replication) or lower `replicas.count`',
      );
    }
    return result;
  }

  #ready(operation: string): KeyField[] {
    if (!this.#keys) throw notInitialised('redis', operation);
    return this.#keys;
  }
}

/**
 * The client's `keyPrefix` (`ioredis` `options.keyPrefix`, on a `Cluster` too). ioredis adds it
 * only to the keys a command declares, for a script `KEYS[1]`; the scripts build every other key
 * from `ARGV[1]`, which must carry it as well, or two applications kept apart by `keyPrefix`
 * would share their items.
 */
function keyPrefixOf(client: RedisClient): string {
  const keyPrefix = client.options?.keyPrefix ?? '';
  if (typeof keyPrefix !== 'string') throw new ConfigError('client', '[redis] the client\'s `keyPrefix` is not a string: pass a string `keyPrefix`, or none.');
  // the hash tag is the text between the first `{` and the next `}`; after an empty `{}` Redis
  // hashes the whole key, which would spread the store over slots
  if (/^[^{]*\{\}/.test(keyPrefix)) {
    throw new ConfigError('client', `[redis] the client's \`keyPrefix\` \`${keyPrefix}\` has an empty hash tag \`{}\`, which would spread the store's keys over Cluster slots: remove the \`{}\`.`);
  }
  return keyPrefix;
}

/**
 * The refusal of a store whose items an earlier version wrote outside the client's `keyPrefix`
 * (it prefixed `{p}:ids` only): the store would find ids without items.
 */
function splitLayout(base: string, unprefixed: string): ConfigError {
  const keyPrefix = base.slice(0, -unprefixed.length);
  return new ConfigError(
    'client',
    `[redis] the client has \`keyPrefix\` \`${keyPrefix}\`, and this store's items were written by a leasehold version that put it on \`${base}ids\` only: ` +
      `its items, sorted sets and counter are under \`${unprefixed}\`, where another application with the same \`prefix\` shares them. ` +
      'Stop every process of the older version, then move them under the keyPrefix as the Redis store guide shows ("A client with a keyPrefix").',
  );
}

function counterLost(base: string, count: number): Error {
  return new Error(
    `[redis] \`${base}ids\` maps ${count} key(s) but there is no id counter \`${base}seq\` (deleted, evicted, or lost in a partial restore): new items would take ids items hold. ` +
      'Set it to the highest id before starting any process, as the Redis store guide shows ("A lost id counter").',
  );
}

/** How the store names itself in `requireKnownOptions`'s messages. */
const REDIS = { name: 'redis', class: 'RedisStore' };

/** The `{p}:keyfields` record: a JSON list of field names. */
function parseNames(reply: string, base: string): string[] {
  let names: unknown;
  try {
    names = JSON.parse(reply);
  } catch {
    names = undefined;
  }
  if (!Array.isArray(names) || !names.every((name) => typeof name === 'string')) {
    throw new Error(
      `\`${base}keyfields\` holds \`${reply}\`, not a JSON list of key field names (edited by hand?): set it to the key's field names in the order of the values in the keys of \`${base}ids\``,
    );
  }
  return names;
}

/** A limit as the scripts read it: -1 for none. */
function limitOf(limit: number | undefined): number {
  return limit === undefined ? -1 : Math.max(0, Math.floor(limit));
}
