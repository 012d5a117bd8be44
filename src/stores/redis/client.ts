/**
 * The client shapes `RedisStore` needs, as the minimal structural types an `ioredis` 5
 * `Redis` (standalone or Sentinel) or `Cluster` fits as it is, so that the core does not depend
 * on the driver package. Internal; re-exported from `leasehold/redis`.
 * @module
 */
import type { RedisConfigReader } from './durability.js';
import type { RedisSubscriberConnection } from './subscriber.js';

/**
 * The part of an `ioredis` client the store uses: a `Redis` (standalone or Sentinel) or a
 * `Cluster` from `ioredis` 5 fits as it is.
 */
export interface RedisClient extends RedisConfigReader {
  /** `EVALSHA sha numkeys ...keys ...args`. */
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  /** `EVAL text numkeys ...keys ...args`: after `NOSCRIPT`, runs the script and caches it on that node. */
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
  /** `SCRIPT LOAD text`. */
  script(subcommand: 'LOAD', script: string): Promise<unknown>;
  /**
   * A new connection with the same options (`ioredis`' `duplicate()`): `watch` subscribes on
   * one, as a subscribed connection can run nothing else.
   */
  duplicate(): RedisSubscriberConnection;
  /** A pipeline (`ioredis`' `pipeline()`): with `replicas`, each write and its `WAIT` go in one. */
  pipeline?(): RedisPipeline;
  /**
   * The client's options (`ioredis`' `options`): the store reads `keyPrefix`, which ioredis adds
   * only to the one key a script declares, and adds it to the others itself.
   */
  readonly options?: {
    /** The prefix ioredis puts before the keys it is given (its `keyPrefix` option). */
    readonly keyPrefix?: string | undefined;
  };
}

/** The part of an `ioredis` pipeline the store uses with the `replicas` option. */
export interface RedisPipeline {
  /** Queues `EVALSHA`. */
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): RedisPipeline;
  /** Queues `EVAL`. */
  eval(script: string, numKeys: number, ...args: Array<string | number>): RedisPipeline;
  /** Queues `WAIT numreplicas timeout`. */
  wait(numReplicas: number, timeout: number): RedisPipeline;
  /** Sends the queued commands at once; each reply as `[error, result]`. */
  exec(): Promise<Array<[Error | null, unknown]> | null>;
}

/** How many replicas must confirm each write before the store answers; the `replicas` option of `RedisStore`. */
export interface RedisReplicas {
  /** Replicas that must have each write. */
  readonly count: number;
  /**
   * How long to wait for them; past it the call fails (a transient `StoreError`) although the
   * primary applied the write.
   * @default 1000
   */
  readonly timeoutMs?: number;
}
