/**
 * Reads: one item by key, items by status, and the counts. Internal.
 * @module
 */
import type { Item } from '../codec.js';
import { ConfigError, ValidationError } from '../errors.js';
import type { StageStats, TrackerStats } from '../results.js';
import type { StatusCount } from '../store.js';
import { requireKnownOptions, requireLimit } from '../validate.js';
import type { Core } from './core.js';

export async function get(core: Core, key: unknown): Promise<Item | null> {
  const storeKey = core.codec.key('get', key);
  await core.init();
  const [stored] = await core.call('get', key, () => core.store.find({ key: storeKey }, { limit: 1 }));
  return stored ? core.codec.item('get', stored, { undeclared: true }) : null;
}

export async function find(
  core: Core,
  query: { status?: string | readonly string[]; undeclared?: boolean; limit?: number; onInvalid?: (error: ValidationError, item: { status: string; stage: string | null }) => void },
): Promise<Item[]> {
  requireKnownOptions('find', query, ['status', 'undeclared', 'limit', 'onInvalid']);
  const status = query.status === undefined ? undefined : [...new Set((Array.isArray(query.status) ? query.status : [query.status]) as string[])];
  for (const s of status ?? []) {
    if (!core.def.statuses.includes(s)) {
      throw new ConfigError('find.status', `\`${s}\` is not a declared status (${core.def.statuses.join(', ')}); use \`{ undeclared: true }\` for items in statuses an older definition used.`);
    }
  }
  const limit = requireLimit('find.limit', query.limit ?? 1_000);
  const onInvalid = query.onInvalid;
  if (onInvalid !== undefined && typeof onInvalid !== 'function') throw new ConfigError('find.onInvalid', 'expected a function, called with the ValidationError of each item that no longer fits the schema and its status and stage.');
  // no status at all is asked for: the store reads an empty list as "any status"
  if (status?.length === 0) return [];
  await core.init();
  const cond = query.undeclared ? { status: status ?? [], notStatus: core.def.statuses } : { status: status ?? [] };
  const rows = await core.call('find', undefined, () => core.store.find(cond, { limit }));
  const items: Item[] = [];
  for (const row of rows) {
    try {
      items.push(core.codec.item('find', row, { undeclared: true }));
    } catch (error) {
      // an item that no longer fits the schema: handed to the caller, the others still read
      if (!(onInvalid && error instanceof ValidationError && error.stored)) throw error;
      onInvalid(error, { status: row.status, stage: row.stage });
    }
  }
  return items;
}

export async function stats(core: Core): Promise<TrackerStats<string>> {
  await core.init();
  const raw = (await core.call('stats', undefined, () => core.store.stats())).byStatus;
  // own counts only: a status named like an Object member (`constructor`) is not one inherited
  const count = (s: string): StatusCount => (Object.hasOwn(raw, s) ? raw[s] : undefined) ?? { total: 0, future: 0 };
  const sum = (list: readonly string[], pick: (c: StatusCount) => number) => list.reduce((a, s) => a + pick(count(s)), 0);
  const stages: Record<string, StageStats> = {};
  for (const st of core.def.stages.values()) {
    stages[st.name] = {
      waiting: sum(st.from, (c) => c.future),
      claimable: sum(st.from, (c) => c.total - c.future),
      active: count(st.active).future,
      expired: count(st.active).total - count(st.active).future,
      done: sum(st.done, (c) => c.total),
      failed: count(st.failed).total,
    };
  }
  const undeclared = Object.fromEntries(Object.entries(raw).filter(([s]) => !core.def.statuses.includes(s)).map(([s, c]) => [s, c.total]));
  return {
    byStatus: Object.fromEntries(core.def.statuses.map((s) => [s, count(s).total])),
    total: Object.values(raw).reduce((a, c) => a + c.total, 0),
    expiredLeases: sum(core.def.activeStatuses, (c) => c.total - c.future),
    waiting: sum(core.def.fromStatuses, (c) => c.future),
    claimable: sum(core.def.fromStatuses, (c) => c.total - c.future),
    undeclared,
    stages,
  };
}
