// The raw-SQL floor: the least a correct claim + complete can cost in PostgreSQL, written with
// `pg` directly. Per item: one UPDATE … FOR UPDATE SKIP LOCKED … RETURNING and one guarded
// UPDATE. Batched: the same with LIMIT n and `id = ANY($1)`. A partial index on the queued rows
// is what a hand-written queue uses; without it the planner walks the primary key past every
// finished row as the queue drains. Both statements are named prepared statements with the
// limit written into the text, as leasehold's are, so that the server plans each once per
// connection (a bound `LIMIT $n` is planned again on every call).
import { concurrently } from './lib.mjs';

export async function seedFloor(admin, items) {
  await admin.query(`DROP TABLE IF EXISTS floor_jobs;
    CREATE TABLE floor_jobs (id bigserial PRIMARY KEY, status text NOT NULL, locked_by text, locked_at timestamptz);
    CREATE INDEX floor_jobs_queued ON floor_jobs (id) WHERE status = 'queued'`);
  await admin.query(`INSERT INTO floor_jobs (status) SELECT 'queued' FROM generate_series(1, $1::int)`, [items]);
  await admin.query('ANALYZE floor_jobs');
}

export async function drainFloor(pool, { workers, batch = 1, deadline, latencies }) {
  let done = 0;
  await concurrently(workers, deadline, async (w) => {
    const started = performance.now();
    const { rows } = await pool.query({
      name: `floor_claim_${batch}`,
      text: `UPDATE floor_jobs SET status = 'running', locked_by = $1, locked_at = now()
       WHERE id = ANY(ARRAY(SELECT id FROM floor_jobs WHERE status = 'queued' ORDER BY id LIMIT ${Number(batch)} FOR UPDATE SKIP LOCKED)) RETURNING id`,
      values: [`w${w}`],
    });
    latencies?.push(performance.now() - started);
    if (rows.length === 0) return false;
    const ids = rows.map((r) => r.id);
    const { rowCount } = await pool.query({
      name: 'floor_complete',
      text: `UPDATE floor_jobs SET status = 'done' WHERE id = ANY($1::bigint[]) AND status = 'running' AND locked_by = $2`,
      values: [ids, `w${w}`],
    });
    done += rowCount;
    return true;
  });
  return done;
}
