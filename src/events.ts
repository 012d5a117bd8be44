/**
 * Typed events and the optional logger.
 * @module
 */

/** A pino-like or console-like logger: each method takes `(fields, message)`. */
export interface Logger {
  debug?(fields: object, message: string): void;
  info?(fields: object, message: string): void;
  warn?(fields: object, message: string): void;
  error?(fields: object, message: string): void;
}

/** Fields every lease event carries. */
export interface LeaseEventBase<K = unknown> {
  /** The stage. */
  readonly stage: string;
  /** The item key. */
  readonly key: K;
  /** The lease holder. */
  readonly owner: string;
  /** The lease's fence. */
  readonly fence: number;
  /** The attempt number (claims so far, including this one). */
  readonly attempt: number;
}

/** The events a Tracker emits, by name. */
export interface TrackerEvents<K = unknown> {
  /** An item was claimed. `waitedMs`: time it was eligible before this claim. */
  claimed: LeaseEventBase<K> & { readonly expiresAt: Date; readonly waitedMs: number };
  /** A lease was extended. */
  renewed: LeaseEventBase<K> & { readonly expiresAt: Date };
  /** A lease was completed into a done status. `durationMs`: since the claim, on this process. */
  completed: LeaseEventBase<K> & { readonly status: string; readonly durationMs: number };
  /** A lease failed; `willRetry` tells whether the item went back for another attempt. */
  failed: LeaseEventBase<K> & {
    readonly error: string;
    readonly willRetry: boolean;
    readonly nextAttemptAt: Date | null;
    readonly status: string;
    readonly durationMs: number;
  };
  /** A lease was given back without counting a failure. */
  released: LeaseEventBase<K> & { readonly durationMs: number };
  /** An expired lease was reaped. `owner` is the stale holder, `fence` the new fence. */
  reaped: LeaseEventBase<K> & { readonly willRetry: boolean; readonly nextAttemptAt: Date | null; readonly status: string };
  /** An operation found its lease lost. */
  leaseLost: LeaseEventBase<K> & { readonly operation: string; readonly actualFence: number | null; readonly status: string | null };
  /** An error a worker handled without a caller to throw to (store down, listener threw, ...). */
  error: { readonly operation: string; readonly error: unknown; readonly stage?: string; readonly key?: K };
}

/** A listener of event `E`. */
export type Listener<T> = (payload: T) => void;

/** A tiny typed event emitter; a throwing listener is logged, never breaks an operation. */
export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();
  readonly #logger: Logger | undefined;

  constructor(logger: Logger | undefined) {
    this.#logger = logger;
  }

  /** Adds a listener; returns a function that removes it. */
  on<E extends keyof Events>(event: E, listener: Listener<Events[E]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** Whether anyone listens to `event` (lets hot paths skip building payloads). */
  has(event: keyof Events): boolean {
    return (this.#listeners.get(event)?.size ?? 0) > 0;
  }

  emit<E extends keyof Events>(event: E, payload: Events[E]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of set) {
      try {
        (listener as Listener<Events[E]>)(payload);
      } catch (error) {
        this.#logger?.error?.({ event, error }, `[leasehold] a \`${String(event)}\` listener threw; the operation itself succeeded`);
      }
    }
  }
}
