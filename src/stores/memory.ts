import type {
  Change,
  Condition,
  GuardedUpdate,
  InsertResult,
  NewItem,
  KeyValues,
  Store,
  StoreCapabilities,
  StoreSchema,
  StoredItem,
  StoreStats,
  UpdateOptions,
} from '../store.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * The store's clock, in epoch milliseconds. Inject one to test expiry and backoff
   * without sleeping.
   * @default Date.now
   */
  readonly clock?: () => number;
}

interface Row {
  readonly seq: number;
  item: StoredItem;
}

const keyId = (key: KeyValues): string =>
  JSON.stringify(Object.keys(key).sort().map((k) => [k, key[k] instanceof Date ? { d: (key[k] as Date).toISOString() } : key[k]]));

const sameScalar = (a: unknown, b: unknown): boolean =>
  a instanceof Date && b instanceof Date ? a.getTime() === b.getTime() : a === b;

/**
 * An in-process store: the reference implementation of the store contract. Each method runs
 * synchronously inside one call, so every operation is atomic. Items live only as long as
 * the process.
 *
 * @example
 * ```ts
 * let now = Date.now();
 * const store = new MemoryStore({ clock: () => now });
 * now += 60_000; // leases expire without waiting
 * ```
 */
export class MemoryStore implements Store {
  readonly name = 'memory';
  readonly capabilities: StoreCapabilities = Object.freeze({ batchClaim: true, batchSettle: true });
  readonly #clock: () => number;
  readonly #rows = new Map<string, Row>();
  #seq = 0;

  constructor(options: MemoryStoreOptions = {}) {
    this.#clock = options.clock ?? Date.now;
  }

  async init(_schema: StoreSchema): Promise<void> {}

  async insert(input: NewItem): Promise<InsertResult> {
    const id = keyId(input.key);
    const existing = this.#rows.get(id);
    if (existing) return { item: copy(existing.item), created: false };
    const now = new Date(this.#clock());
    const item: StoredItem = {
      key: { ...input.key },
      status: input.status,
      data: structuredClone(input.data),
      attempts: 0,
      fence: 0,
      owner: null,
      deadline: now,
      lastError: null,
      createdAt: now,
      updatedAt: now,
      claimedAt: null,
      finishedAt: null,
    };
    this.#rows.set(id, { seq: ++this.#seq, item });
    return { item: copy(item), created: true };
  }

  async update(cond: Condition, change: Change, options: UpdateOptions = {}): Promise<StoredItem[]> {
    const now = this.#clock();
    let rows = this.#match(cond, now);
    if (options.ordered) rows = rows.sort(eligibleOrder);
    if (options.limit !== undefined) rows = rows.slice(0, options.limit);
    return rows.map((row) => copy((row.item = apply(row.item, change, now))));
  }

  async updateEach(updates: readonly GuardedUpdate[]): Promise<Array<StoredItem | null>> {
    const now = this.#clock();
    return updates.map(({ cond, change }) => {
      const [row] = this.#match(cond, now);
      return row ? copy((row.item = apply(row.item, change, now))) : null;
    });
  }

  async find(cond: Partial<Condition>, options: { limit?: number } = {}): Promise<StoredItem[]> {
    const rows = this.#match(cond, this.#clock()).sort(eligibleOrder);
    return rows.slice(0, options.limit ?? rows.length).map((row) => copy(row.item));
  }

  async stats(active: readonly string[]): Promise<StoreStats> {
    const now = this.#clock();
    const byStatus: Record<string, number> = {};
    let expired = 0;
    let waiting = 0;
    for (const { item } of this.#rows.values()) {
      byStatus[item.status] = (byStatus[item.status] ?? 0) + 1;
      const passed = item.deadline.getTime() <= now;
      if (active.includes(item.status)) expired += passed ? 1 : 0;
      else waiting += passed ? 0 : 1;
    }
    return { byStatus, expired, waiting };
  }

  /** Removes every item (tests). */
  clear(): void {
    this.#rows.clear();
  }

  #match(cond: Partial<Condition>, now: number): Row[] {
    if (cond.key) {
      const row = this.#rows.get(keyId(cond.key));
      return row && matches(row.item, cond, now) ? [row] : [];
    }
    return [...this.#rows.values()].filter((row) => matches(row.item, cond, now));
  }
}

function matches(item: StoredItem, cond: Partial<Condition>, now: number): boolean {
  if (cond.key && !Object.entries(cond.key).every(([k, v]) => sameScalar(item.key[k], v))) return false;
  if (cond.status && cond.status.length > 0 && !cond.status.includes(item.status)) return false;
  if (cond.fence !== undefined && item.fence !== cond.fence) return false;
  if (cond.attempts?.gte !== undefined && item.attempts < cond.attempts.gte) return false;
  if (cond.attempts?.lt !== undefined && item.attempts >= cond.attempts.lt) return false;
  if (cond.deadline === 'passed' && item.deadline.getTime() > now) return false;
  if (cond.deadline === 'future' && item.deadline.getTime() <= now) return false;
  return true;
}

function apply(item: StoredItem, change: Change, now: number): StoredItem {
  const at = new Date(now);
  const attempts =
    change.attempts === 'increment' ? item.attempts + 1
    : change.attempts === 'decrement' ? Math.max(0, item.attempts - 1)
    : change.attempts === 'reset' ? 0
    : item.attempts;
  let deadline = item.deadline;
  if (change.deadline) {
    const ms = 'ms' in change.deadline ? change.deadline.ms : (change.deadline.msByAttempts[attempts] ?? 0);
    deadline = new Date(now + ms);
  }
  return {
    ...item,
    status: change.status,
    owner: change.owner === undefined ? item.owner : change.owner,
    fence: change.bumpFence ? item.fence + 1 : item.fence,
    attempts,
    claimedAt: change.attempts === 'increment' ? at : item.claimedAt,
    deadline,
    data: change.data === undefined ? item.data : structuredClone(change.data),
    lastError: change.lastError === undefined ? item.lastError : change.lastError,
    finishedAt: change.finished === undefined ? item.finishedAt : change.finished ? at : null,
    updatedAt: at,
  };
}

function eligibleOrder(a: Row, b: Row): number {
  return a.item.deadline.getTime() - b.item.deadline.getTime() || a.seq - b.seq;
}

function copy(item: StoredItem): StoredItem {
  return { ...item, key: { ...item.key }, data: structuredClone(item.data) };
}
