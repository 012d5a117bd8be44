import type { Operation } from './linearizability.d.mts';

/** Milliseconds comparable across the processes of one machine (the monotonic clock, `process.hrtime`). */
export function now(): number;

/** Where a recorder writes. */
export interface HistorySink {
  begin(call: { id: string; process: string; op: string; input: unknown; call: number }): void;
  /** An item a running `reapStale` call took (from the tracker's `reaped` event). */
  reaped(id: string, entry: { key: unknown; fence: number; status: string; time: number }): void;
  end(id: string, result: { output?: unknown; error?: string; ret: number }): void;
  close(): void;
}

/** What {@link recordTracker} returns. */
export interface Recording {
  /** Anything the recorder saw but could not record (a reap outside a recorded `reapStale`); expected empty. */
  readonly problems: string[];
  /** Puts the tracker's own methods back. */
  stop(): void;
}

/**
 * Records every `track`, `claim`, `claimBatch`, `renew`, `complete`, `completeBatch`, `fail`,
 * `release`, `reapStale` and `get` of this tracker object (those made by its workers too) into
 * `sink`, as client `name`.
 */
export function recordTracker(tracker: object, sink: HistorySink, name: string, onProblem?: (problem: string) => void): Recording;

/** A history kept in this process. */
export function memoryHistory(): HistorySink & { readonly operations: Operation[] };

/** A history written as JSON lines to a file (append), safe against the process being killed. */
export function fileHistory(path: string): HistorySink;

/** Reads histories written by {@link fileHistory}: every `.jsonl` file in a folder, or the given files. */
export function readHistory(where: string | string[]): Operation[];
