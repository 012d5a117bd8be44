import { ConfigError } from './errors.js';

function describe(value: unknown): string {
  return `\`${typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value) ?? String(value)}\` (${typeof value})`;
}

/** Checks an option is a finite number within bounds; throws a ConfigError naming it. */
export function requireNumber(
  option: string,
  value: unknown,
  { min, max, integer = false, allowZero = true, why }: { min?: number; max?: number; integer?: boolean; allowZero?: boolean; why?: string } = {},
): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!integer || Number.isInteger(value)) &&
    (min === undefined || value >= min) &&
    (max === undefined || value <= max) &&
    (allowZero || value !== 0);
  if (!ok) {
    const kind = integer ? 'an integer' : 'a finite number';
    const bound = [min !== undefined ? ` ${allowZero ? '>=' : '>'} ${min}` : '', max !== undefined ? ` <= ${max}` : ''].filter(Boolean).join(' and');
    throw new ConfigError(option, `expected ${kind}${bound}${why ? ` (${why})` : ''}, got ${describe(value)}.`);
  }
  return value as number;
}

/** The longest delay a Node.js timer keeps (longer ones fire after 1 ms, with a warning). */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * Checks an interval that runs a timer (poll, heartbeat, reap, stop, retention): an integer,
 * `> 0` (or `>= 0` with `allowZero`), at most {@link MAX_TIMER_MS}.
 */
export function requireTimerMs(option: string, value: unknown, { min = 0, allowZero = false }: { min?: number; allowZero?: boolean } = {}): number {
  return requireNumber(option, value, { min, max: MAX_TIMER_MS, integer: true, allowZero, why: 'about 24.8 days, the longest timer Node.js runs' });
}

/** The last instant a Date can hold (epoch ms). */
export const MAX_DATE_MS = 8.64e15;

/** Checks an age (`olderThanMs`): an integer from 0 up to the time since 1970, as far back as a store's clock reaches. */
export function requireAgeMs(option: string, value: unknown): number {
  return requireNumber(option, value, { min: 0, max: Date.now(), integer: true, why: 'an age reaches back no further than 1970' });
}

/** Checks a delay that puts a deadline in the future (`delayMs`, a backoff): the deadline must be a valid Date. */
export function requireDelayMs(option: string, value: unknown, { integer = true }: { integer?: boolean } = {}): number {
  return requireNumber(option, value, { min: 0, max: MAX_DATE_MS - Date.now(), integer, why: 'the deadline it sets must be a valid Date' });
}

/** Checks an option is a positive integer (> 0). */
export function requirePositiveInt(option: string, value: unknown): number {
  return requireNumber(option, value, { min: 0, integer: true, allowZero: false });
}
