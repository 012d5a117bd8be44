// Opens a store of the built package (dist/) for a child process of the tests, as a user would:
// `openStore(kind, target, table)` → `{ store, close }` for `sqlite` (a file), `postgres` (a URL),
// `mongodb` (a URI) or `redis` (a URL; `table` is the key prefix).

/**
 * @param {'sqlite' | 'postgres' | 'mongodb' | 'redis' | string} kind
 * @param {string} target
 * @param {string} table
 */
export async function openStore(kind, target, table) {
  if (kind === 'sqlite') {
    const { SqliteStore } = await import('../../dist/stores/sqlite.js');
    const store = new SqliteStore({ filename: target, table });
    return { store, close: () => store.close() };
  }
  if (kind === 'postgres') {
    const { default: pg } = await import('pg');
    const { PostgresStore } = await import('../../dist/stores/postgres.js');
    const pool = new pg.Pool({ connectionString: target, max: 8 });
    // an idle connection the server closes is replaced on the next query
    pool.on('error', () => {});
    return { store: new PostgresStore({ pool, table }), close: () => pool.end() };
  }
  if (kind === 'mongodb') {
    const { MongoClient } = await import('mongodb');
    const { MongoStore } = await import('../../dist/stores/mongodb.js');
    const client = await MongoClient.connect(target);
    return { store: new MongoStore({ collection: client.db('leasehold_test').collection(table) }), close: () => client.close() };
  }
  if (kind === 'redis') {
    const { Redis } = await import('ioredis');
    const { RedisStore } = await import('../../dist/stores/redis.js');
    const client = new Redis(target, { lazyConnect: true });
    await client.connect();
    return { store: new RedisStore({ client, prefix: table }), close: () => client.quit().then(() => {}) };
  }
  throw new Error(`unknown store ${kind}`);
}
