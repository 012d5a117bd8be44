/**
 * The options of `RedisStore`. Re-exported by `leasehold/redis`.
 * @module
 */
import type { RedisClient, RedisReplicas } from './client.js';

/** How sure the store must be that an acknowledged claim survives a crash. */
export type RedisDurability = 'strict' | 'relaxed';

/**
 * Options of {@link RedisStore}.
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis';
 * new RedisStore({ client: new Redis(process.env.REDIS_URL!), prefix: 'partner_log_trackers' });
 * ```
 */
export interface RedisStoreOptions {
  /**
   * An `ioredis` client (`new Redis(...)`, a Sentinel client, or `new Cluster(...)`). BullMQ
   * runs on `ioredis`, so an application that uses it already has a configured one. Its
   * `keyPrefix` goes before every key of the store, and a call it sends again after a reconnect
   * (`autoResendUnfulfilledCommands`) is answered as it ran, not run twice.
   */
  readonly client: RedisClient;
  /**
   * Names the store's keys: each is `{prefix}:...` (after the client's `keyPrefix`, if it has
   * one). The braces make `prefix` the Redis Cluster hash tag, so all of a store's keys live in
   * one slot and every script runs on one shard. Any text without `{` or `}`.
   */
  readonly prefix: string;
  /**
   * `strict`: `init()` reads the server's `appendonly`, `appendfsync` and
   * `no-appendfsync-on-rewrite` and refuses to start (`ConfigError`) unless they are `yes`,
   * `always` and `no`, the settings under which a claim the server acknowledged survives a crash
   * (with `replicas`: unless the server is a primary with `appendonly yes` and that many replicas
   * online). `relaxed`: no check; after a crash the last writes
   * may be lost (a claim handed out again, a completion redone); fencing still prevents two
   * holders from both settling. See the Redis store guide.
   * @default 'strict'
   */
  readonly durability?: RedisDurability;
  /**
   * Wake idle workers in every process at once with pub/sub: a script that makes an item
   * claimable also `PUBLISH`es on `{prefix}:wake`, and while a worker of this process runs, one
   * duplicate connection per store subscribes. `false`: no messages; idle workers poll.
   * @default true
   */
  readonly notifications?: boolean;
  /**
   * Send `WAIT count timeoutMs` after every write, in the same pipeline (one round trip), and
   * fail the call unless `count` replicas confirmed it: then a claim the store answered is on
   * the primary and `count` replicas before the worker starts, so a Sentinel or Cluster
   * failover to one of them keeps it. With this option `init()` checks replication and
   * `appendonly yes` instead of `appendfsync` (see the Redis store guide). The client needs
   * `pipeline()`.
   * @default undefined (no WAIT)
   */
  readonly replicas?: RedisReplicas;
}
