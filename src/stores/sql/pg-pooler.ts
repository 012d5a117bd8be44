/**
 * What PostgresStore does about a pooler in transaction mode (PgBouncer before 1.21, or with
 * `max_prepared_statements = 0`), which hands a client's statements to server connections of
 * its choice, so that named prepared statements cannot work. Internal.
 * @module
 */
import { errorMessage } from '../../transitions.js';

/**
 * "prepared statement … does not exist" (at Bind) and "… already exists" (at Parse): `pg` and the
 * server connection disagree about what was prepared on it. Nothing ran.
 */
export function preparedElsewhere(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '26000' || code === '42P05';
}

/** What a store that meets {@link preparedElsewhere} says, once, as it turns to unnamed statements. */
export function unpreparedNotice(table: string, error: unknown): string {
  return (
    `[leasehold] PostgresStore ${table}: the server ${(error as { code?: unknown }).code === '42P05' ? 'already had' : 'did not have'} a prepared statement \`pg\` named on this connection ` +
    `(${errorMessage(error)}), which is what a pooler in transaction mode does (PgBouncer before 1.21, or with max_prepared_statements = 0). ` +
    'This store now sends unnamed statements; pass `preparedStatements: false` to start that way, and `notifications: false` (LISTEN does not work through such a pooler).\n'
  );
}
