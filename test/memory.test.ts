import { MemoryStore } from '../src/stores/memory.js';
import type { Store } from '../src/index.js';
import { storeContract } from '../src/testing/suite.js';

const clocks = new WeakMap<Store, { now: number }>();

storeContract({
  name: 'MemoryStore',
  async create() {
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const store = new MemoryStore({ clock: () => clock.now });
    clocks.set(store, clock);
    return store;
  },
  async elapse(store, ms) {
    clocks.get(store)!.now += ms;
  },
  async corrupt(store, key) {
    // the memory store keeps no raw rows; reach the internal item the way a hand edit would
    const [item] = await store.find({ key });
    (item as { data: unknown }).data = { bytes: 'not a number' };
    await store.update({ key, status: [item!.status] }, { status: item!.status, data: { bytes: 'not a number' } }, { limit: 1 });
  },
});
