import type { Lease } from './lease.js';

/** The work a worker runs per lease; its return value is passed to `complete`. */
export type Handler<L, R> = (lease: L) => Promise<R | void> | R | void;

/** The Tracker surface a Worker drives (kept structural so the worker stays generic). */
export interface Driver<L extends Lease> {
  readonly ttlMs: number;
  claimBatch(stage: string, options: { owner: string; limit: number }): Promise<L[]>;
  renew(lease: L): Promise<L>;
  complete(lease: L, options: object): Promise<unknown>;
  fail(lease: L, error: unknown, options?: { retry?: boolean }): Promise<unknown>;
  release(lease: L): Promise<unknown>;
  reapStale(): Promise<unknown>;
  purge(options: { status: string; olderThanMs: number }): Promise<unknown>;
}

/** The tracker internals a Worker uses: wake-ups, error reports, the shared reaper. */
export interface Internals {
  onWake(fn: (status?: string, at?: Date) => void): () => void;
  /** Whether other processes' changes reach `onWake` (the store has `watch`). */
  readonly watching: boolean;
  /** When the next waiting item of the stage becomes claimable (store clock). */
  nextDue(stage: string): Promise<Date | undefined>;
  reportError(operation: string, error: unknown, lease?: Lease): void;
  log(level: 'warn', lease: Lease, message: string): void;
  readonly def: { readonly stages: ReadonlyMap<string, { readonly from: readonly string[] }>; readonly statuses: readonly string[]; readonly terminalStatuses: readonly string[] };
  readonly store: { readonly name: string };
}
