import type { Store } from '../index.js';

/** What {@link countingStore} returns. */
export interface CountingStore<S extends Store> {
  /** The wrapped store: use it in place of the inner one. */
  readonly store: S;
  /** The names of the store methods called through `store`, in call order. */
  readonly calls: string[];
}

/** Wraps a store so that a test can count how many store methods (round trips) an operation makes. */
export function countingStore<S extends Store>(inner: S): CountingStore<S> {
  const calls: string[] = [];
  const store = new Proxy(inner, {
    get(target, prop) {
      // getters run on the store itself: one reading `this.#field` would throw on the proxy
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || prop === 'constructor') return value;
      return (...args: unknown[]) => {
        calls.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, calls };
}
