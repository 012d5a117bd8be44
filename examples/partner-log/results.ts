/**
 * Where sync workers write parsed flight records, keyed by (logId, record index). Every write
 * carries the lease's fence and is refused where a newer fence already wrote: a stale worker's
 * late writes change nothing, and a redo overwrites instead of duplicating.
 */
import type { Db } from 'mongodb';
import type { Pool } from 'pg';
import type { FlightRecord } from './log-format';

export interface ResultsSummary {
  /** Rows in the results table. */
  records: number;
  /** Successful `complete`s of the process stage, per log id. */
  completions: Map<string, number>;
  /** Records whose fence is not the fence that completed their log (stale writes that survived). */
  staleRecords: number;
  /** Records per log id. */
  perLog: Map<string, number>;
}

export interface Results {
  init(): Promise<void>;
  /** Writes a log's records under `fence`; returns how many rows were written (the rest were refused). */
  write(logId: string, fence: number, records: FlightRecord[]): Promise<number>;
  /** Notes that `complete` succeeded for `logId` with `fence`. */
  completed(logId: string, fence: number): Promise<void>;
  summary(): Promise<ResultsSummary>;
  close(): Promise<void>;
}

type Spec = { kind: 'memory' } | { kind: 'sqlite'; filename: string } | { kind: 'postgres'; pool: Pool } | { kind: 'mongodb'; db: Db };

const COLUMNS = ['offset_ms', 'altitude_ft', 'ground_speed_kt', 'heading_deg', 'fuel_kg', 'engine_temp_c'] as const;
const values = (r: FlightRecord) => [r.offsetMs, r.altitudeFt, r.groundSpeedKt, r.headingDeg, r.fuelKg, r.engineTempC];

function summarize(rows: Array<{ logId: string; fence: number }>, completions: Array<{ logId: string; fence: number }>): ResultsSummary {
  const count = new Map<string, number>();
  const finalFence = new Map<string, number>();
  for (const c of completions) {
    count.set(c.logId, (count.get(c.logId) ?? 0) + 1);
    finalFence.set(c.logId, Math.max(finalFence.get(c.logId) ?? 0, c.fence));
  }
  const perLog = new Map<string, number>();
  let staleRecords = 0;
  for (const r of rows) {
    perLog.set(r.logId, (perLog.get(r.logId) ?? 0) + 1);
    const fence = finalFence.get(r.logId);
    if (fence !== undefined && r.fence !== fence) staleRecords++;
  }
  return { records: rows.length, completions: count, staleRecords, perLog };
}

export async function openResults(spec: Spec): Promise<Results> {
  switch (spec.kind) {
    case 'memory':
      return memoryResults();
    case 'sqlite':
      return sqliteResults(spec.filename);
    case 'postgres':
      return postgresResults(spec.pool);
    case 'mongodb':
      return mongoResults(spec.db);
  }
}

function memoryResults(): Results {
  const rows = new Map<string, { logId: string; fence: number }>();
  const completions: Array<{ logId: string; fence: number }> = [];
  return {
    init: async () => {},
    async write(logId, fence, records) {
      let written = 0;
      records.forEach((_, idx) => {
        const at = `${logId}#${idx}`;
        if ((rows.get(at)?.fence ?? -1) > fence) return;
        rows.set(at, { logId, fence });
        written++;
      });
      return written;
    },
    completed: async (logId, fence) => void completions.push({ logId, fence }),
    summary: async () => summarize([...rows.values()], completions),
    close: async () => {},
  };
}

async function sqliteResults(filename: string): Promise<Results> {
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(filename);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 10000');
  return {
    async init() {
      db.exec(`CREATE TABLE IF NOT EXISTS flight_records (log_id TEXT NOT NULL, idx INTEGER NOT NULL, fence INTEGER NOT NULL,
        ${COLUMNS.map((c) => `${c} REAL NOT NULL`).join(', ')}, PRIMARY KEY (log_id, idx));
        CREATE TABLE IF NOT EXISTS log_completions (log_id TEXT NOT NULL, fence INTEGER NOT NULL)`);
    },
    async write(logId, fence, records) {
      const upsert = db.prepare(
        `INSERT INTO flight_records (log_id, idx, fence, ${COLUMNS.join(', ')}) VALUES (?, ?, ?, ${COLUMNS.map(() => '?').join(', ')})
         ON CONFLICT (log_id, idx) DO UPDATE SET fence = excluded.fence, ${COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}
         WHERE flight_records.fence <= excluded.fence`,
      );
      return db.transaction(() => records.reduce((n, r, idx) => n + upsert.run(logId, idx, fence, ...values(r)).changes, 0))();
    },
    async completed(logId, fence) {
      db.prepare('INSERT INTO log_completions (log_id, fence) VALUES (?, ?)').run(logId, fence);
    },
    async summary() {
      const rows = db.prepare('SELECT log_id AS logId, fence FROM flight_records').all() as Array<{ logId: string; fence: number }>;
      const done = db.prepare('SELECT log_id AS logId, fence FROM log_completions').all() as Array<{ logId: string; fence: number }>;
      return summarize(rows, done);
    },
    close: async () => void db.close(),
  };
}

function postgresResults(pool: Pool): Results {
  return {
    async init() {
      await pool.query(`BEGIN; SELECT pg_advisory_xact_lock(hashtext('partner-log-results'));
        CREATE TABLE IF NOT EXISTS flight_records (log_id text NOT NULL, idx integer NOT NULL, fence bigint NOT NULL,
          ${COLUMNS.map((c) => `${c} real NOT NULL`).join(', ')}, PRIMARY KEY (log_id, idx));
        CREATE TABLE IF NOT EXISTS log_completions (log_id text NOT NULL, fence bigint NOT NULL); COMMIT;`);
    },
    async write(logId, fence, records) {
      const columns = COLUMNS.map((_, i) => records.map((r) => values(r)[i]));
      const { rowCount } = await pool.query(
        `INSERT INTO flight_records (log_id, idx, fence, ${COLUMNS.join(', ')})
         SELECT $1, i - 1, $2, ${COLUMNS.map((_, i) => `($${i + 3}::real[])[i]`).join(', ')} FROM generate_series(1, $9::int) AS i
         ON CONFLICT (log_id, idx) DO UPDATE SET fence = EXCLUDED.fence, ${COLUMNS.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}
         WHERE flight_records.fence <= EXCLUDED.fence`,
        [logId, fence, ...columns, records.length],
      );
      return rowCount ?? 0;
    },
    async completed(logId, fence) {
      await pool.query('INSERT INTO log_completions (log_id, fence) VALUES ($1, $2)', [logId, fence]);
    },
    async summary() {
      const { rows } = await pool.query('SELECT log_id AS "logId", fence::int AS fence FROM flight_records');
      const { rows: done } = await pool.query('SELECT log_id AS "logId", fence::int AS fence FROM log_completions');
      return summarize(rows, done);
    },
    close: async () => {},
  };
}

function mongoResults(db: Db): Results {
  const records = db.collection('flight_records');
  const completions = db.collection('log_completions');
  return {
    async init() {
      await records.createIndex({ logId: 1, idx: 1 }, { unique: true });
    },
    async write(logId, fence, list) {
      try {
        const result = await records.bulkWrite(
          list.map((r, idx) => ({
            updateOne: { filter: { logId, idx, fence: { $lte: fence } }, update: { $set: { fence, ...r } }, upsert: true },
          })),
          { ordered: false },
        );
        return result.upsertedCount + result.matchedCount;
      } catch (error) {
        // a newer fence holds some rows: the upserts for those hit the unique index and are refused
        const result = (error as { result?: { upsertedCount: number; matchedCount: number } }).result;
        if (!result) throw error;
        return result.upsertedCount + result.matchedCount;
      }
    },
    async completed(logId, fence) {
      await completions.insertOne({ logId, fence });
    },
    async summary() {
      const rows = (await records.find({}, { projection: { logId: 1, fence: 1 } }).toArray()) as unknown as Array<{ logId: string; fence: number }>;
      const done = (await completions.find({}).toArray()) as unknown as Array<{ logId: string; fence: number }>;
      return summarize(rows, done);
    },
    close: async () => {},
  };
}
