import { ConfigError } from './errors.js';
import { describe, requireKnownOptions, requireNumber } from './validate.js';

/**
 * How long to wait before the next attempt, given how many attempts (claims) have been
 * made so far (1 after the first failure). Any `(attempt) => ms` function may be used.
 */
export type Backoff = (attempt: number) => number;

/** Options of {@link exponentialBackoff}. */
export interface ExponentialBackoffOptions {
  /** Delay after the first failed attempt, in milliseconds. */
  readonly baseMs: number;
  /** Upper bound of any delay, in milliseconds. */
  readonly maxMs: number;
  /**
   * Growth factor per attempt.
   * @default 2
   */
  readonly factor?: number;
  /**
   * Full jitter: pick uniformly in `[0, delay]` so that many failing items spread out
   * instead of retrying in lockstep.
   * @default false
   */
  readonly jitter?: boolean;
}

/**
 * Exponential backoff with a cap and optional full jitter:
 * `min(maxMs, baseMs * factor^(attempt - 1))`, randomised in `[0, that]` with `jitter`.
 *
 * @example
 * ```ts
 * const backoff = exponentialBackoff({ baseMs: 1_000, maxMs: 300_000, jitter: true });
 * backoff(1); // up to 1s
 * backoff(4); // up to 8s
 * ```
 */
export function exponentialBackoff(options: ExponentialBackoffOptions): Backoff {
  requireKnownOptions('backoff', options ?? null, ['baseMs', 'maxMs', 'factor', 'jitter']);
  const baseMs = requireNumber('backoff.baseMs', options.baseMs, { min: 0 });
  const maxMs = requireNumber('backoff.maxMs', options.maxMs, { min: baseMs });
  const factor = requireNumber('backoff.factor', options.factor ?? 2, { min: 1 });
  const jitter = options.jitter ?? false;
  // `jitter: 'no'` would read as true
  if (typeof jitter !== 'boolean') throw new ConfigError('backoff.jitter', `expected \`true\` or \`false\`, got ${describe(jitter)}.`);
  return (attempt: number): number => {
    const n = Math.max(1, Math.floor(attempt));
    // the power overflows to Infinity after some 1,000 attempts, and 0 * Infinity is NaN
    const delay = baseMs === 0 ? 0 : Math.min(maxMs, baseMs * factor ** (n - 1));
    return jitter ? Math.floor(Math.random() * (delay + 1)) : delay;
  };
}
