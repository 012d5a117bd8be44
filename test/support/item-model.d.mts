import type { Model, Operation, Step } from './linearizability.d.mts';

/** The model's state of one item. */
export interface ItemState {
  /** Status, or `null` while the item is not tracked. */
  readonly s: string | null;
  /** Fence. */
  readonly f: number;
  /** Attempts. */
  readonly a: number;
  /** A backoff (`notBefore`) may still be running, so a claim by key may find it not yet claimable. */
  readonly b: boolean;
}

/** The parts of a tracker definition the model needs (the options of `new Tracker`). */
export interface ItemDefinition {
  readonly initial: string;
  readonly stages: Readonly<
    Record<string, { readonly from: string | readonly string[]; readonly active: string; readonly done: string | readonly string[]; readonly failed: string }>
  >;
  readonly retry?: { readonly maxAttempts?: number };
}

/** A canonical string for a key object (field order does not matter). */
export function keyId(key: Readonly<Record<string, unknown>>): string;

/** The sequential specification of one item of a tracker with this definition. */
export function itemModel(definition: ItemDefinition): Model<ItemState>;

/** Splits recorded tracker operations into one partition per item key. */
export function partitionByKey(history: readonly Operation[]): Array<{ key: string; steps: Step[] }>;
