/**
 * PostgreSQL's key table: the unique index on item keys (rule 1, insert-if-absent) lives in a
 * table of its own, `<table>_keys (key columns PRIMARY KEY, id REFERENCES <table> ON DELETE
 * CASCADE)`, written when an item is tracked and when it is deleted, and never by a transition.
 * Every claim, settle and reap updates `status` and `deadline`, so no update of the items table
 * is HOT and each one inserts into every index of that table: a unique key index there cost one
 * more index insert per transition (see docs/performance.md).
 *
 * Also the rest of `init`'s schema work: every table, index and constraint is made only where
 * catalog reads (which take no lock on the tables) find it missing, so that `init` on an existing
 * schema never waits behind, nor makes every worker wait behind, a VACUUM or an open write.
 * Internal.
 * @module
 */
import type { NewItem } from '../../store.js';
import type { KeyColumn } from './compile.js';
import { newRow, OWN_COLUMNS, Params } from './compile.js';
import type { Dialect } from './dialect.js';

/** Where the key table of an items table lives, as SQL. */
export interface KeyTable {
  /** The items table, schema-qualified and quoted. */
  readonly items: string;
  /** The key table, schema-qualified and quoted. */
  readonly keys: string;
  /** The key table's index on `id` (which the foreign key's cascade looks rows up by), quoted. */
  readonly idIndex: string;
  /** The schema of both tables, quoted. */
  readonly schema: string;
  /** The items table's unique key index of earlier versions, schema-qualified and quoted. */
  readonly oldKeyIndex: string;
}

/**
 * A quoted identifier as a SQL string literal (for `to_regclass('…')` and the like). Only names
 * the store validated and quoted reach it, never a value.
 */
const literal = (quoted: string) => `'${quoted.replaceAll("'", "''")}'`;

/** The comment that marks a table as a key table of leasehold's (init never touches another). */
const MARKER = 'leasehold key table';

/** How `format_type` names a key column's type. */
const FORMATTED: Readonly<Record<string, string>> = { timestamptz: 'timestamp with time zone' };

/**
 * Checks that the items table has a column of the right type for every key field: a table made
 * for another key (a field added, or its type changed by a redeploy) stops init with a schema
 * error naming the column, instead of storing values of another type that every read refuses.
 * A text column narrowed to `varchar(n)` by hand is text still.
 */
function keyColumnChecks(t: KeyTable, keys: readonly KeyColumn[], keyTypes: readonly string[]): string {
  return keys
    .map((k, i) => {
      const column = literal(k.column);
      const want = literal(FORMATTED[keyTypes[i]!] ?? keyTypes[i]!);
      return `
      found := (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = items AND attname = ${column} AND NOT attisdropped);
      IF found IS DISTINCT FROM ${want} AND NOT (${want} = 'text' AND coalesce(found, '') LIKE 'character varying%') THEN
        RAISE EXCEPTION 'leasehold: % has %, as key field % (%) needs: it was made for another key', ${literal(t.items)},
          CASE WHEN found IS NULL THEN 'no column ' || ${column} ELSE 'column ' || ${column} || ' of type ' || found || ', not ' || ${want} END, ${literal(k.name)}, ${literal(k.type)}
          USING ERRCODE = CASE WHEN found IS NULL THEN 'undefined_column' ELSE 'datatype_mismatch' END,
            HINT = 'Use a new table, or migrate this one (docs/stores/postgres.md).';
      END IF;`;
    })
    .join('');
}

/**
 * Checks that the items table has every column leasehold keeps (a table of 0.1 has no `stage`):
 * init stops with a schema error naming them, instead of every claim failing later.
 */
function ownColumnChecks(t: KeyTable): string {
  return `
      found := (SELECT string_agg(c, ', ') FROM unnest(ARRAY[${OWN_COLUMNS.map(literal).join(', ')}]::text[]) AS c
        WHERE NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = items AND attname = c AND NOT attisdropped));
      IF found IS NOT NULL THEN
        RAISE EXCEPTION 'leasehold: % has no column(s) % that leasehold keeps: it was made by an older version (a table of 0.1 has no stage column) or by hand. Upgrade it as docs/stores/postgres.md shows ("Upgrading from 0.1"), or use a new table', ${literal(t.items)}, found
          USING ERRCODE = 'undefined_column',
            HINT = 'Upgrade it as docs/stores/postgres.md shows ("Upgrading from 0.1"), or use a new table.';
      END IF;`;
}

/**
 * Checks that no key column is left over from a key field the definition no longer declares (a
 * redeploy that removed it): the items table has no other `key_*` column that is `NOT NULL` (as
 * leasehold makes them; a nullable one, a user's own or one a migration relaxed, breaks no
 * track), and the key table's
 * primary key is the declared key columns, no more and no fewer. Otherwise every track would fail
 * on the leftover `NOT NULL` column, and a lookup by key would find several items. `declared`
 * holds the declared column names; the key table check runs where it exists.
 */
function leftoverKeyChecks(t: KeyTable): string {
  return `
      found := (SELECT string_agg(attname::text, ', ' ORDER BY attnum) FROM pg_attribute
        WHERE attrelid = items AND attnum > 0 AND NOT attisdropped AND attnotnull AND left(attname::text, 4) = 'key_' AND NOT attname::text = ANY (declared));
      IF found IS NOT NULL THEN
        RAISE EXCEPTION 'leasehold: % has key column(s) % that no key field declares (declared: %): a key field was removed, or the table was made for another key. Declare the field again, or drop the column(s) from this table and from its key table (see "Change a key field" in docs/stores/postgres.md)', ${literal(t.items)}, found, array_to_string(declared, ', ')
          USING ERRCODE = 'invalid_table_definition',
            HINT = 'Use a new table, or migrate this one: drop those columns from it and from its key table, and make the key table''s primary key the declared key columns (docs/stores/postgres.md).';
      END IF;
      IF keys IS NOT NULL AND obj_description(keys, 'pg_class') IS NOT DISTINCT FROM '${MARKER}' THEN
        primary_key := ARRAY(SELECT a.attname::text FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
          WHERE c.conrelid = keys AND c.contype = 'p' ORDER BY a.attnum);
        IF NOT (primary_key @> declared AND primary_key <@ declared) THEN
          RAISE EXCEPTION 'leasehold: the primary key of % is (%), not (%) as the declared key fields need: it was made for another key, or a migration is half done. Give the key table the declared key columns as its primary key (see "Change a key field" in docs/stores/postgres.md)', ${literal(t.keys)}, array_to_string(primary_key, ', '), array_to_string(declared, ', ')
            USING ERRCODE = 'invalid_table_definition',
              HINT = 'Use a new table, or migrate this one: give the key table the declared key columns and make them its primary key (docs/stores/postgres.md).';
        END IF;
      END IF;`;
}

/**
 * Creates the key table if missing, and keeps it in step with the items table:
 * - an items table of the earlier layout (its own unique key index `<table>_key`, and items
 *   inserted by a process of an earlier version) has its keys copied in, and the old index dropped;
 * - a key table whose foreign key is gone (its items table dropped with `CASCADE` and made again)
 *   is emptied, filled from the items table and given its foreign key again.
 * The foreign key is added after a fill, so that it is checked in one pass. A table of that name
 * that is not marked as a key table stops init with an error: it is never dropped or changed.
 * Runs inside `init`'s locked transaction.
 */
export function keyTableStatements(t: KeyTable, keys: readonly KeyColumn[], keyTypes: readonly string[]): string {
  const columns = keys.map((k) => k.sql).join(', ');
  const defs = keys.map((k, i) => `${k.sql} ${keyTypes[i]} NOT NULL`).join(', ');
  const idIndex = literal(`${t.schema}.${t.idIndex}`);
  return `
    DO $leasehold$
    DECLARE
      keys regclass := to_regclass(${literal(t.keys)});
      items regclass := to_regclass(${literal(t.items)});
      old_index boolean := EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(${literal(t.oldKeyIndex)}) AND indrelid = items);
      fill boolean := false;
      found text;
      declared text[] := ARRAY[${keys.map((k) => literal(k.column)).join(', ')}]::text[];
      primary_key text[];
    BEGIN${ownColumnChecks(t)}${keyColumnChecks(t, keys, keyTypes)}${leftoverKeyChecks(t)}
      IF keys IS NOT NULL AND obj_description(keys, 'pg_class') IS DISTINCT FROM '${MARKER}' THEN
        RAISE EXCEPTION 'leasehold: % exists and is not the key table of % (it is not marked as one)', ${literal(t.keys)}, ${literal(t.items)}
          USING ERRCODE = 'duplicate_table', HINT = 'Rename that table, or give the store another table name: leasehold keeps the keys of its items in a table named after them.';
      END IF;
      -- a key table whose foreign key names another table: that table was renamed (its key table
      -- and indexes keep their names), and its keys are not this table's to empty and refill
      found := (SELECT string_agg(confrelid::regclass::text, ', ') FROM pg_constraint WHERE conrelid = keys AND contype = 'f' AND confrelid <> items);
      IF found IS NOT NULL THEN
        RAISE EXCEPTION 'leasehold: % is the key table of % (its foreign key names it), not of %: a renamed table keeps its key table''s name. Rename the key table with it, or give the store another table name (see "Renaming a table" in docs/stores/postgres.md)', ${literal(t.keys)}, found, ${literal(t.items)}
          USING ERRCODE = 'duplicate_table', HINT = 'Rename the key table and the indexes of a renamed items table with it (docs/stores/postgres.md, "Renaming a table").';
      END IF;
      IF keys IS NULL AND to_regclass(${idIndex}) IS NOT NULL THEN
        RAISE EXCEPTION 'leasehold: the name % that leasehold gives the id index of % is taken by %: a renamed key table keeps its index''s name. Rename that index, or give the store another table name (see "Renaming a table" in docs/stores/postgres.md)', ${idIndex}, ${literal(t.keys)},
          coalesce((SELECT 'an index of ' || indrelid::regclass::text FROM pg_index WHERE indexrelid = to_regclass(${idIndex})), 'a relation that is not an index')
          USING ERRCODE = 'duplicate_table', HINT = 'Rename the indexes and the key table of a renamed items table with it (docs/stores/postgres.md, "Renaming a table").';
      END IF;
      IF keys IS NULL THEN
        CREATE TABLE ${t.keys} (${defs}, id bigint NOT NULL, PRIMARY KEY (${columns}));
        COMMENT ON TABLE ${t.keys} IS '${MARKER}';
        CREATE INDEX ${t.idIndex} ON ${t.keys} (id);
        fill := true;
      ELSIF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = keys AND confrelid = items AND contype = 'f') THEN
        -- its items table was dropped and made again: the keys it holds name items that are gone
        DELETE FROM ${t.keys};
        fill := true;
      END IF;
      IF fill OR old_index THEN
        INSERT INTO ${t.keys} (${columns}, id) SELECT ${columns}, id FROM ${t.items} ON CONFLICT DO NOTHING;
      END IF;
      IF fill THEN
        ALTER TABLE ${t.keys} ADD FOREIGN KEY (id) REFERENCES ${t.items} (id) ON DELETE CASCADE;
      END IF;
      IF old_index THEN
        DROP INDEX ${t.oldKeyIndex};
      END IF;
    END
    $leasehold$;`;
}

/**
 * Creates the items table and its `(status, deadline, id)` index, each only where `to_regclass`
 * finds no relation of its name. `CREATE INDEX IF NOT EXISTS` is not enough: it takes a SHARE lock
 * on the table before it looks for the index, so on every init it waited behind a VACUUM or an
 * open write, and every claim and settle of the running workers queued behind it.
 * `columns` is the table's column list; names are quoted identifiers.
 */
export function itemsTableStatements(items: string, columns: string, statusIndex: string, schema: string): string {
  const index = literal(`${schema}.${statusIndex}`);
  return `
    DO $leasehold$
    BEGIN
      IF to_regclass(${literal(items)}) IS NULL THEN
        CREATE TABLE ${items} (${columns});
      END IF;
      IF to_regclass(${index}) IS NULL THEN
        CREATE INDEX ${statusIndex} ON ${items} (status, deadline, id);
      ELSIF NOT EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(${index}) AND indrelid = to_regclass(${literal(items)})) THEN
        -- a renamed table keeps its indexes' names: without this, the new table got no index
        RAISE EXCEPTION 'leasehold: the name % that leasehold gives the (status, deadline) index of % is taken by %: a renamed table keeps its indexes'' names. Rename that index, or give the store another table name (see "Renaming a table" in docs/stores/postgres.md)', ${index}, ${literal(items)},
          coalesce((SELECT 'an index of ' || indrelid::regclass::text FROM pg_index WHERE indexrelid = to_regclass(${index})), 'a relation that is not an index')
          USING ERRCODE = 'duplicate_table', HINT = 'Rename the indexes and the key table of a renamed items table with it (docs/stores/postgres.md, "Renaming a table").';
      END IF;
    END
    $leasehold$;`;
}

/**
 * Renames an index of `items` that an earlier version named `legacy` (cut at 63 characters) to
 * `name`, so that init finds it instead of building a second one. An index of that name on
 * another table is left alone. Names are quoted identifiers.
 */
export function renameLegacyIndex(items: string, schema: string, legacy: string, name: string): string {
  if (legacy === name) return '';
  return `
    DO $leasehold$
    BEGIN
      IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(${literal(`${schema}.${legacy}`)}) AND indrelid = to_regclass(${literal(items)}))
         AND to_regclass(${literal(`${schema}.${name}`)}) IS NULL THEN
        ALTER INDEX ${schema}.${legacy} RENAME TO ${name};
      END IF;
    END
    $leasehold$;`;
}

/** A statement in two parts: its common table expressions (without `WITH`) and its body. */
export interface SplitStatement {
  readonly ctes: string;
  readonly text: string;
  readonly values: unknown[];
}

/**
 * `Store.insert`: the key first (`ON CONFLICT DO NOTHING` on the key table's primary key: of N
 * concurrent inserts of one key one gets the row), then the item, with the id the key row took,
 * in one statement; returns the row only when it was created. The foreign key is checked at the
 * end of the statement, when the item exists.
 */
export function insertWithKey(t: KeyTable, item: NewItem, keys: readonly KeyColumn[], d: Dialect, returning: string): SplitStatement {
  const p = new Params(d);
  const row = newRow(item, keys, d, p);
  const columns = keys.map((k) => k.sql).join(', ');
  const sequence = `pg_get_serial_sequence(${literal(t.items)}, 'id')`;
  return {
    ctes: `leasehold_key AS (INSERT INTO ${t.keys} AS k (${columns}, id) VALUES (${row.key.join(', ')}, nextval(${sequence})) ON CONFLICT DO NOTHING RETURNING k.id)`,
    text: `INSERT INTO ${t.items} AS t (id, ${row.columns}) SELECT leasehold_key.id, ${row.values} FROM leasehold_key RETURNING ${returning}`,
    values: p.values,
  };
}

/**
 * The filter on an item's key, through the key table: `id = (SELECT id FROM keys WHERE …)`, one
 * lookup in the key table's primary key, then one in the items table's.
 */
export function keyFilter(t: KeyTable): NonNullable<Dialect['keyFilter']> {
  return (matches, alias) => `${alias}id = (SELECT k.id FROM ${t.keys} AS k WHERE ${matches.map(([column, value]) => `k.${column} = ${value}`).join(' AND ')})`;
}
