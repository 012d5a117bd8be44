/**
 * The persistence check of {@link RedisStore.init}: the store contract says a claim is
 * acknowledged durably before the work starts, which a single Redis server keeps only with
 * `appendonly yes`, `appendfsync always` and `no-appendfsync-on-rewrite no`; with `replicas`, the
 * primary needs `appendonly yes` as well. Either way the server must not evict keys
 * (`maxmemory-policy noeviction`). Internal.
 * @module
 */
import { ConfigError } from '../../errors.js';

/** The part of the client the check uses. */
export interface RedisConfigReader {
  /** `CONFIG GET name`: ioredis answers `[name, value]` (a Cluster client, from one node). */
  config(subcommand: 'GET', parameter: string): Promise<unknown>;
  /** `INFO section`, for the `replicas` check. */
  info?(section: string): Promise<string>;
  /** A Cluster client's connections to its nodes (`ioredis` `Cluster#nodes`): every primary is checked. */
  nodes?(role: 'master'): RedisConfigReader[];
}

/**
 * The servers a check reads: the client itself, or on a Cluster every primary. A slot can move
 * to any primary (resharding), so each must keep writes as durably as the store needs; a keyless
 * command would reach only one node of the client's choosing.
 */
async function primaries(client: RedisConfigReader): Promise<Array<{ node: RedisConfigReader; where: string }>> {
  if (typeof client.nodes !== 'function') return [{ node: client, where: 'the server' }];
  let nodes = client.nodes('master');
  if (nodes.length === 0) {
    // not connected yet: one command connects the client and learns the slot map
    await client.config('GET', 'appendonly').catch(() => undefined);
    nodes = client.nodes('master');
  }
  if (nodes.length === 0) throw new ConfigError('durability', '[redis] the Cluster client knows no primary: check its startup nodes.');
  return nodes.map((node) => {
    // where the connection points (`ioredis` `Redis#options`), to name the node in a refusal
    const { host = '?', port = '?' } = (node as { options?: { host?: string; port?: number } }).options ?? {};
    return { node, where: `the primary ${host}:${port}` };
  });
}

const RELAX =
  'or, if you accept what a crash can then undo (see the Redis store guide, "What `durability: \'relaxed\'` can lose"), pass `durability: \'relaxed\'`.';

/** The value of one server setting, or throws a ConfigError when it cannot be read. */
async function setting(client: RedisConfigReader, name: string): Promise<string> {
  let reply: unknown;
  try {
    reply = await client.config('GET', name);
  } catch (error) {
    // managed services (ElastiCache, MemoryStore, ...) often rename or forbid CONFIG
    throw Object.assign(
      new ConfigError(
        'durability',
        `[redis] cannot read the server's \`${name}\` setting (\`CONFIG GET ${name}\` failed: ${error instanceof Error ? error.message : String(error)}), so leasehold cannot check that a claim survives a crash. ` +
          `Allow \`CONFIG GET\` for this user, ${RELAX}`,
      ),
      { cause: error },
    );
  }
  const list = Array.isArray(reply) ? reply : [];
  const index = list.findIndex((v, i) => i % 2 === 0 && String(v).toLowerCase() === name);
  if (index < 0) throw new ConfigError('durability', `[redis] the server did not report its \`${name}\` setting; ${RELAX}`);
  return String(list[index + 1]).toLowerCase();
}

/**
 * Refuses a server whose acknowledged writes a crash can lose: `appendonly` must be `yes`,
 * `appendfsync` must be `always`, and `no-appendfsync-on-rewrite` must be `no`; and one that
 * evicts keys (`maxmemory-policy` other than `noeviction`).
 */
export async function requireDurableServer(client: RedisConfigReader): Promise<void> {
  for (const { node, where } of await primaries(client)) await requireDurableNode(node, where);
}

async function requireDurableNode(client: RedisConfigReader, where: string): Promise<void> {
  const appendonly = await setting(client, 'appendonly');
  if (appendonly !== 'yes') {
    throw new ConfigError(
      'durability',
      `[redis] ${where} runs with \`appendonly ${appendonly}\`: a claim it acknowledged can be lost in a crash and the item handed out again. ` +
        `Set \`appendonly yes\` and \`appendfsync always\` (redis.conf, or \`CONFIG SET\`), ${RELAX}`,
    );
  }
  const appendfsync = await setting(client, 'appendfsync');
  if (appendfsync !== 'always') {
    throw new ConfigError(
      'durability',
      `[redis] ${where} runs with \`appendfsync ${appendfsync}\`: the last ${appendfsync === 'everysec' ? 'second' : 'seconds'} of acknowledged claims can be lost in a crash and those items handed out again. ` +
        `Set \`appendfsync always\` (redis.conf, or \`CONFIG SET appendfsync always\`), ${RELAX}`,
    );
  }
  requireNoEviction(where, await setting(client, 'maxmemory-policy'));
  // `yes` skips the fsync of every write while a child process saves a snapshot or rewrites the
  // append-only file, which `appendonly yes` starts by itself as the file grows
  const onRewrite = await setting(client, 'no-appendfsync-on-rewrite');
  if (onRewrite === 'yes') {
    throw new ConfigError(
      'durability',
      `[redis] ${where} runs with \`no-appendfsync-on-rewrite yes\`: while it saves a snapshot or rewrites its append-only file (BGSAVE, BGREWRITEAOF, or an automatic rewrite), ` +
        'it does not fsync, so claims acknowledged meanwhile can be lost in a crash and those items handed out again. ' +
        `Set \`no-appendfsync-on-rewrite no\` (redis.conf, or \`CONFIG SET no-appendfsync-on-rewrite no\`), ${RELAX}`,
    );
  }
}

/**
 * Refuses a server that evicts keys when it reaches `maxmemory`: it would drop items, key entries
 * and the id counter silently (items lost, a tracked key tracked again, ids handed out twice).
 */
function requireNoEviction(where: string, policy: string | undefined): void {
  if (policy === 'noeviction') return;
  throw new ConfigError(
    'durability',
    `[redis] ${where} runs with \`maxmemory-policy ${policy ?? '(not reported)'}\`${policy === undefined ? '' : ': at `maxmemory` it deletes keys by itself, and with them items, the entries that keep keys unique and the id counter, so items are lost and keys tracked twice'}. ` +
      'Set `maxmemory-policy noeviction` (redis.conf, or `CONFIG SET maxmemory-policy noeviction`): a full server then refuses writes, which leasehold reports, and loses nothing. ' +
      '(`durability: \'relaxed\'` skips this check, not the risk: keep `noeviction` there too.)',
  );
}

/**
 * With the `replicas` option: the server must be a primary with at least `count` replicas
 * connected now (each write then waits for them), and with `appendonly yes`.
 */
export async function requireReplicas(client: RedisConfigReader, count: number): Promise<void> {
  for (const { node, where } of await primaries(client)) await requireReplicasOf(node, where, count);
}

async function requireReplicasOf(client: RedisConfigReader, where: string, count: number): Promise<void> {
  if (typeof client.info !== 'function') throw new ConfigError('replicas', '[redis] the client has no `info()`: pass an `ioredis` client.');
  const text = await client.info('replication');
  const role = /^role:(\w+)/m.exec(text)?.[1];
  const online = [...text.matchAll(/^slave\d+:.*state=online/gm)].length;
  if (role !== 'master' || online < count) {
    throw new ConfigError(
      'replicas',
      `[redis] \`replicas.count\` is ${count}, but ${where} is a ${role ?? 'server of unknown role'} with ${online} replica${online === 1 ? '' : 's'} online: every write would fail its \`WAIT\`. ` +
        'Connect to the primary (a Sentinel or Cluster client does) once its replicas are in sync, or lower `replicas.count`.',
    );
  }
  // INFO, not CONFIG GET (which managed services often forbid), as for the replicas above
  requireNoEviction(where, /^maxmemory_policy:(\S+)/m.exec(await client.info('memory'))?.[1]?.toLowerCase());
  const aof = /^aof_enabled:(\d)/m.exec(await client.info('persistence'))?.[1];
  if (aof !== '1') {
    // a replica copies whatever its primary holds: a primary that restarts without its data
    // (no AOF: empty, or an older snapshot) before a failover takes the replicas' copies with it
    throw new ConfigError(
      'durability',
      `[redis] ${where} runs ${aof === '0' ? 'with `appendonly no`' : 'without reporting `aof_enabled` (INFO persistence)'}: if it restarts before a failover (a crash and a restart by its supervisor, or maintenance), ` +
        'it comes back without the writes it acknowledged, its replicas copy it, and the claims they confirmed are lost with it. ' +
        `Set \`appendonly yes\` on the primary (redis.conf, or \`CONFIG SET appendonly yes\`), ${RELAX}`,
    );
  }
}
