/**
 * The types a tracker's users name: what a handler returns and its check, and a tracker's lease,
 * item, key and stage names for code written apart from it. Internal module; re-exported by
 * `leasehold`.
 * @module
 */
import type { Item } from '../codec.js';
import type { Lease } from '../lease.js';
import type { TrackOptions } from './claim.js';

/**
 * The data fields of a handler's result beside `to` and `data` (methods of a class instance are
 * not fields; each member of a union apart; none for `any`).
 */
export type ExtraResultFields<R> = 0 extends 1 & R ? never : R extends object ? { [F in keyof R]: R[F] extends (...args: never[]) => unknown ? never : F }[Exclude<keyof R, 'to' | 'data'>] : never;
/** What a `work()` handler may return to complete its item: a done status and a data patch. */
export interface HandlerResult<Done extends string = string, Patch = unknown> {
  /** The done status to complete into (default: the stage's first). */
  readonly to?: Done;
  /** A patch merged over the item's data. */
  readonly data?: Patch;
}
/** `unknown` for a handler result with only `to` and `data`; else a type naming the other fields. */
export type OnlyToAndData<R> = [ExtraResultFields<R>] extends [never]
  ? unknown
  : {
      /** Named so that the compiler's message says what is wrong: the fields to remove. */
      readonly 'a handler returns `{ to?, data? }` only; remove these fields': ExtraResultFields<R>;
    };

/**
 * The lease a tracker's `claim` gives for stage `N`: the type of a handler's parameter written
 * apart from `work()`.
 * @example
 * ```ts
 * async function download(lease: LeaseOf<typeof logs, 'download'>) {
 *   await logs.complete(lease, { data: { bytes: 1 } });
 * }
 * ```
 */
export type LeaseOf<T, N extends StageOf<T>> = ItemOf<T> extends Item<infer S, infer K, infer D> ? Lease<N, K, D, S> : never;
/** The stage names of a tracker. */
export type StageOf<T> = T extends {
  /** The tracker's stage names. */
  readonly stages: ReadonlyArray<infer N extends string>;
}
  ? N
  : never;
/** An item of a tracker, as `get` and `find` give it. */
export type ItemOf<T> = T extends {
  /** The tracker's `get`. */
  get(key: never): Promise<infer I>;
}
  ? Exclude<I, null>
  : never;
/** A key of a tracker, as `track`, `get` and the operator verbs take it. */
export type KeyOf<T> = T extends {
  /** The tracker's `get`. */
  get(key: infer Key): unknown;
}
  ? Key
  : never;

/**
 * The arguments of `track` after the key: the data, then the options. The data may be left out
 * only where the data schema accepts `{}` (what an absent one stands for), so a schema with
 * required fields makes it required.
 */
export type TrackArgs<Data> = {} extends Data ? [data?: Data, options?: TrackOptions] : [data: Data, options?: TrackOptions];
