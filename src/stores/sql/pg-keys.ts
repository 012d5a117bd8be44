/**
 * PostgreSQL's key table: the unique index on item keys (rule 1, insert-if-absent) lives in a
 * table of its own, `<table>_keys (key columns PRIMARY KEY, id REFERENCES <table> ON DELETE
 * CASCADE)`, written when an item is tracked and when it is deleted, and never by a transition.
 * Every claim, settle and reap updates `status` and `deadline`, so no update of the items table
 * is HOT and each one inserts into every index of that table: a unique key index there cost one
 * more index insert per transition (see docs/performance.md). Internal.
 * @module
 */
import type { NewItem } from '../../store.js';
import type { KeyColumn } from './compile.js';
import { deadlineSql, encodeData, Params } from './compile.js';
import type { Dialect } from './dialect.js';

/** Where the key table of an items table lives, as SQL. */
export interface KeyTable {
  /** The items table, schema-qualified and quoted. */
  readonly items: string;
  /** The key table, schema-qualified and quoted. */
  readonly keys: string;
  /** The key table's index on `id` (which the foreign key's cascade looks rows up by). */
  readonly idIndex: string;
  /** The items table's unique key index of earlier versions, schema-qualified and quoted. */
  readonly oldKeyIndex: string;
}

/**
 * Creates the key table if missing, and brings an items table of an earlier layout (its own
 * unique key index, no key table) over: the keys are copied into the key table and the old index
 * is dropped. A key table left behind by `DROP TABLE <items> CASCADE` (its foreign key gone, its
 * keys naming items that are gone) is made again. Runs inside `init`'s locked transaction.
 */
export function keyTableStatements(t: KeyTable, keys: readonly KeyColumn[], keyTypes: readonly string[]): string {
  const columns = keys.map((k) => k.sql).join(', ');
  const defs = keys.map((k, i) => `${k.sql} ${keyTypes[i]} NOT NULL`).join(', ');
  // identifiers only (validated and quoted by the store): no value reaches this text
  const name = (quoted: string) => quoted.replaceAll("'", "''");
  return `
    DO $leasehold$
    DECLARE existing regclass := to_regclass('${name(t.keys)}');
    BEGIN
      IF existing IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = existing AND contype = 'f') THEN
        DROP TABLE ${t.keys};
        existing := NULL;
      END IF;
      IF existing IS NULL THEN
        CREATE TABLE ${t.keys} (${defs}, id bigint NOT NULL REFERENCES ${t.items} (id) ON DELETE CASCADE, PRIMARY KEY (${columns}));
        CREATE INDEX ${t.idIndex} ON ${t.keys} (id);
        INSERT INTO ${t.keys} (${columns}, id) SELECT ${columns}, id FROM ${t.items} ON CONFLICT DO NOTHING;
      END IF;
      -- the earlier layout's unique key index, if it is one on this table
      IF EXISTS (SELECT 1 FROM pg_index WHERE indexrelid = to_regclass('${name(t.oldKeyIndex)}') AND indrelid = to_regclass('${name(t.items)}')) THEN
        DROP INDEX ${t.oldKeyIndex};
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
  const values = keys.map((k) => p.add(d.keyParam(k.type, item.key[k.name]!)));
  const columns = keys.map((k) => k.sql).join(', ');
  const status = p.add(item.status);
  const data = d.json(p.add(encodeData(item.data)));
  const deadline = item.deadline ? deadlineSql(item.deadline, d, p) : d.now;
  const sequence = `pg_get_serial_sequence('${t.items.replaceAll("'", "''")}', 'id')`;
  return {
    ctes: `leasehold_key AS (INSERT INTO ${t.keys} AS k (${columns}, id) VALUES (${values.join(', ')}, nextval(${sequence})) ON CONFLICT DO NOTHING RETURNING k.id)`,
    text:
      `INSERT INTO ${t.items} AS t (id, ${columns}, status, data, deadline, created_at, updated_at) ` +
      `SELECT leasehold_key.id, ${values.join(', ')}, ${status}, ${data}, ${deadline}, ${d.now}, ${d.now} FROM leasehold_key RETURNING ${returning}`,
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
