/**
 * The frame of PostgresStore's init: one simple-protocol query, in a transaction of its own or
 * in a savepoint of the caller's, and what its lock waits mean when they give up. Internal.
 * @module
 */
import { StoreError } from '../../errors.js';
import { INIT_LOCK_TIMEOUT_MS, INIT_PEER_TIMEOUT_MS } from './pg-dialect.js';

/**
 * What goes before and after init's statements, and what undoes them after a failure. Its own
 * transaction holds an advisory lock, so that many processes may run init at once (concurrent
 * creates of one table can otherwise collide); past it, a lock wait gives up after a few
 * seconds: on an existing schema the statements read only catalogs and take no lock on the
 * tables, so only a create or repair can wait. The advisory lock waits up to ten minutes for
 * another process's init, whatever `lock_timeout` or `statement_timeout` the session has (its
 * `statement_timeout` applies again to the statements that follow; a `transaction_timeout`, from
 * PostgreSQL 17, still bounds the whole of init). A lone client already in a
 * transaction (the caller's: tracking beside its own rows) runs the statements in a savepoint of
 * it instead, as part of it: a `BEGIN … COMMIT` would commit it.
 */
export function initFrame(table: string, inTransaction: boolean): { open: string; close: string; undo: string } {
  if (inTransaction) return { open: 'SAVEPOINT leasehold_init;', close: 'RELEASE SAVEPOINT leasehold_init;', undo: 'ROLLBACK TO SAVEPOINT leasehold_init; RELEASE SAVEPOINT leasehold_init' };
  return {
    // the table is a validated, quoted identifier: its text is part of the lock's name, not a value
    // the session's statement_timeout is kept aside (it may come from a role, the database, a
    // connection option or a SET) and put back after the lock: only lock_timeout bounds that wait
    open:
      `BEGIN; SELECT set_config('leasehold.statement_timeout', current_setting('statement_timeout'), true); ` +
      `SET LOCAL statement_timeout = 0; SET LOCAL lock_timeout = ${INIT_PEER_TIMEOUT_MS}; ` +
      `SELECT pg_advisory_xact_lock(hashtext('leasehold:' || '${table.replaceAll('"', '')}')); ` +
      `SELECT set_config('statement_timeout', current_setting('leasehold.statement_timeout'), true); SET LOCAL lock_timeout = ${INIT_LOCK_TIMEOUT_MS};`,
    close: 'COMMIT;',
    undo: 'ROLLBACK',
  };
}

/** The error init throws for `error`: a lock wait that gave up (55P03) as a transient StoreError that says which. */
export function initFailure(table: string, error: unknown): unknown {
  if ((error as { code?: unknown } | null)?.code !== '55P03') return error;
  return new StoreError({
    operation: 'init',
    store: 'postgres',
    failure: 'transient',
    cause: new Error(
      `gave up waiting for a lock on ${table} or its key table. Either, to create or repair what is missing there, it waited ${INIT_LOCK_TIMEOUT_MS / 1000} s and gave up rather than hold up the running workers behind it ` +
        `(a VACUUM, an index build or an open transaction holds the table), or another process's init held leasehold's lock on the table for ${INIT_PEER_TIMEOUT_MS / 60_000} minutes ` +
        '(a long migration of a large table, or a process stopped inside its init). Nothing was changed',
      { cause: error },
    ),
  });
}
