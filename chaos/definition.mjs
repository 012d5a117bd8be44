// The tracker the chaos harness and its worker processes share. Plain JavaScript on the built
// package (dist/), so that worker processes start in a blink and can be killed at any point.
import { exponentialBackoff, Tracker } from '../dist/index.js';
import { jobDefinition } from '../test/support/job-definition.mjs';

export const MAX_ATTEMPTS = 25;
export const TTL_MS = 1_000;

export function chaosTracker(store, ttlMs = TTL_MS) {
  return new Tracker(jobDefinition(store, { ttlMs, maxAttempts: MAX_ATTEMPTS, backoff: exponentialBackoff({ baseMs: 20, maxMs: 500, jitter: true }) }));
}

/**
 * Opens a store and its side tables: `finished` (every (key, fence) a handler finished work
 * for) and `completions` (every (key, fence) whose `complete` the store accepted).
 */
export async function openChaosStore(kind, target, table) {
  if (kind === 'sqlite') {
    const { default: Database } = await import('better-sqlite3');
    const { SqliteStore } = await import('../dist/stores/sqlite.js');
    const db = new Database(target);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 10000');
    db.exec(`CREATE TABLE IF NOT EXISTS ${table}_finished (n INTEGER NOT NULL, fence INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS ${table}_completions (n INTEGER NOT NULL, fence INTEGER NOT NULL);
             CREATE TABLE IF NOT EXISTS ${table}_holding (n INTEGER PRIMARY KEY)`);
    const store = new SqliteStore({ database: db, table });
    return {
      store,
      finished: async (n, fence) => void db.prepare(`INSERT INTO ${table}_finished (n, fence) VALUES (?, ?)`).run(n, fence),
      completed: async (n, fence) => void db.prepare(`INSERT INTO ${table}_completions (n, fence) VALUES (?, ?)`).run(n, fence),
      completions: async () => db.prepare(`SELECT n, fence FROM ${table}_completions`).all(),
      hold: async (n) => db.prepare(`INSERT INTO ${table}_holding (n) VALUES (?) ON CONFLICT DO NOTHING`).run(n).changes === 1,
      unhold: async (n) => void db.prepare(`DELETE FROM ${table}_holding WHERE n = ?`).run(n),
      finishedRows: async () => db.prepare(`SELECT n, fence FROM ${table}_finished`).all(),
      close: async () => db.close(),
    };
  }
  if (kind === 'postgres') {
    const { default: pg } = await import('pg');
    const { PostgresStore } = await import('../dist/stores/postgres.js');
    const pool = new pg.Pool({ connectionString: target, max: 4 });
    // an idle connection the server closes (restart, shutdown) is replaced on the next query
    pool.on('error', () => {});
    await pool.query(`CREATE TABLE IF NOT EXISTS ${table}_finished (n integer NOT NULL, fence bigint NOT NULL);
                      CREATE TABLE IF NOT EXISTS ${table}_completions (n integer NOT NULL, fence bigint NOT NULL);
                      CREATE TABLE IF NOT EXISTS ${table}_holding (n integer PRIMARY KEY)`);
    return {
      store: new PostgresStore({ pool, table }),
      finished: async (n, fence) => void (await pool.query(`INSERT INTO ${table}_finished (n, fence) VALUES ($1, $2)`, [n, fence])),
      completed: async (n, fence) => void (await pool.query(`INSERT INTO ${table}_completions (n, fence) VALUES ($1, $2)`, [n, fence])),
      completions: async () => (await pool.query(`SELECT n, fence::int AS fence FROM ${table}_completions`)).rows,
      hold: async (n) => (await pool.query(`INSERT INTO ${table}_holding (n) VALUES ($1) ON CONFLICT DO NOTHING`, [n])).rowCount === 1,
      unhold: async (n) => void (await pool.query(`DELETE FROM ${table}_holding WHERE n = $1`, [n])),
      finishedRows: async () => (await pool.query(`SELECT n, fence::int AS fence FROM ${table}_finished`)).rows,
      close: () => pool.end(),
    };
  }
  if (kind === 'mongodb') {
    const { MongoClient } = await import('mongodb');
    const { MongoStore } = await import('../dist/stores/mongodb.js');
    const client = await MongoClient.connect(target);
    const db = client.db('leasehold_chaos');
    return {
      store: new MongoStore({ collection: db.collection(table) }),
      finished: async (n, fence) => void (await db.collection(`${table}_finished`).insertOne({ n, fence })),
      completed: async (n, fence) => void (await db.collection(`${table}_completions`).insertOne({ n, fence })),
      completions: async () => db.collection(`${table}_completions`).find({}).toArray(),
      hold: async (n) => (await db.collection(`${table}_holding`).updateOne({ _id: n }, { $setOnInsert: { n } }, { upsert: true })).upsertedCount === 1,
      unhold: async (n) => void (await db.collection(`${table}_holding`).deleteOne({ _id: n })),
      finishedRows: async () => db.collection(`${table}_finished`).find({}).toArray(),
      close: () => client.close(),
    };
  }
  if (kind === 'redis') {
    const { Redis } = await import('ioredis');
    const { RedisStore } = await import('../dist/stores/redis.js');
    const client = new Redis(target);
    // the side records live beside the store's keys, under their own names
    const side = (name) => `${table}:chaos:${name}`;
    const rows = async (name) => (await client.lrange(side(name), 0, -1)).map((row) => JSON.parse(row));
    return {
      store: new RedisStore({ client, prefix: table }),
      finished: async (n, fence) => void (await client.rpush(side('finished'), JSON.stringify({ n, fence }))),
      completed: async (n, fence) => void (await client.rpush(side('completions'), JSON.stringify({ n, fence }))),
      completions: () => rows('completions'),
      hold: async (n) => (await client.sadd(side('holding'), String(n))) === 1,
      unhold: async (n) => void (await client.srem(side('holding'), String(n))),
      finishedRows: () => rows('finished'),
      close: () => client.quit().then(() => {}),
    };
  }
  throw new Error(`unknown store ${kind}`);
}
