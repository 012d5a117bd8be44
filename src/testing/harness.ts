import type { Store } from '../index.js';
import type { ContractKey } from './definition.js';

/** How the contract suite gets stores of one kind. */
export interface StoreHarness {
  /** Name shown in the test output. */
  readonly name: string;
  /** A fresh, empty store (its own table or collection). */
  create(): Promise<Store>;
  /** Makes `ms` of store time pass for every item of `store` (moves deadlines earlier). */
  elapse(store: Store, ms: number): Promise<void>;
  /** A second client on the same table, over its own connection, for races. */
  peer?(store: Store): Promise<Store>;
  /** Overwrites the stored data of `key` with a value that breaks the data schema. */
  corrupt?(store: Store, key: ContractKey): Promise<void>;
  /** How often each race is repeated. */
  readonly raceRepeats?: number;
  /**
   * Releases a store `create` or `peer` made (drop its table or key prefix, close its client);
   * called for each of them once the suite's tests have run.
   */
  dispose?(store: Store): Promise<void>;
}

/**
 * `harness`, recording every store it makes into `made` (for `dispose`). Each member calls the
 * harness's own, so a harness that is a class instance keeps its prototype's methods and `this`.
 */
export function recording(harness: StoreHarness, made: Store[]): StoreHarness {
  const kept = async (making: Promise<Store>) => {
    const store = await making;
    made.push(store);
    return store;
  };
  return {
    name: harness.name,
    create: () => kept(harness.create()),
    elapse: (store, ms) => harness.elapse(store, ms),
    ...(harness.peer ? { peer: (store: Store) => kept(harness.peer!(store)) } : {}),
    ...(harness.corrupt ? { corrupt: (store: Store, key: ContractKey) => harness.corrupt!(store, key) } : {}),
    ...(harness.raceRepeats !== undefined ? { raceRepeats: harness.raceRepeats } : {}),
  };
}
