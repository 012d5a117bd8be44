/**
 * The store conformance suite, for authors of store packages: `storeContract(harness)` declares
 * the whole store contract (docs/writing-a-store.md, "The contract") as vitest tests against
 * the stores `harness` creates. It imports `vitest` and `zod` from the project that runs it
 * (both peer dependencies); see the guide "Writing a store".
 *
 * ```ts
 * // test/my-store.test.ts in a store package
 * import { storeContract } from 'leasehold/testing';
 * import { MyStore } from '../src/index.js';
 *
 * storeContract({
 *   name: 'MyStore',
 *   create: async () => new MyStore({ table: `contract_${Date.now()}_${Math.random().toString(36).slice(2)}` }),
 *   // make `ms` of store time pass: move every deadline of the store's items `ms` earlier
 *   elapse: async (store, ms) => (store as MyStore).shiftDeadlines(-ms),
 * });
 * ```
 *
 * @module leasehold/testing
 */
export { type StoreHarness } from './harness.js';
export { storeContract } from './suite.js';
export { countingStore, type CountingStore } from './counting.js';
export type { ContractKey } from './definition.js';
// what a store implements, so that a store package can import it all from one place
export { guardCondition } from '../store.js';
export type {
  AbsoluteDelay,
  Change,
  Condition,
  DeadlineBefore,
  Delay,
  FindOptions,
  GuardedUpdate,
  InsertResult,
  ItemState,
  KeyField,
  KeyFieldType,
  KeyScalar,
  KeyValues,
  LeaseGuard,
  NewItem,
  RelativeDelay,
  Returning,
  StatusCount,
  Store,
  StoreCapabilities,
  StoreChange,
  StoreSchema,
  StoredItem,
  StoreStats,
  UpdateOptions,
  UpdateEachOptions,
  ItemOutcome,
  SettleOutcome,
} from '../store.js';
