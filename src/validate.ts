import { ConfigError } from './errors.js';

/**
 * A value as an error message shows it: a scalar as its text and type (`'false'` is no
 * `false`), a string cut at 60 characters, an object by its kind only (never its contents: a
 * pool given in the wrong place holds a connection string, a lease its item's data).
 */
export function describe(value: unknown): string {
  try {
    if (value === null) return '`null`';
    if (typeof value === 'string') return `\`${JSON.stringify(value.length > 60 ? `${cut(value, 57)}...` : value)}\` (string)`;
    if (typeof value !== 'object' && typeof value !== 'function') return `\`${String(value)}\` (${typeof value})`;
    if (typeof value === 'function') return 'a function';
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an Invalid Date' : `the Date ${value.toISOString()}`;
    if (Array.isArray(value)) return `an array of ${value.length}`;
    const name = (Object.getPrototypeOf(value) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
    if (typeof name !== 'string' || name === '' || name === 'Object') return 'an object';
    // by the letter, which reads right for most names (a URL, a Uint8Array, an Error)
    return `${/^[aeio]/i.test(name) ? 'an' : 'a'} ${name}`;
  } catch {
    // a revoked Proxy, a throwing prototype getter
    return 'an object';
  }
}

/** `text` cut to at most `max` code units, never inside a surrogate pair. */
function cut(text: string, max: number): string {
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
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

/** The earliest time PostgreSQL's `timestamptz` holds (4714-11-24 BC, Julian day 0), in epoch ms: the earliest every store holds. */
export const MIN_STORE_DATE_MS = -210_866_803_200_000;

/**
 * Checks an instant given as an option (`notBefore`, `finishedBefore`): a valid Date, no earlier
 * than {@link MIN_STORE_DATE_MS} (PostgreSQL alone refused one, with an out-of-range error).
 */
export function requireDate(option: string, value: unknown): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw new ConfigError(option, `expected a valid Date, got ${describe(value)}.`);
  if (value.getTime() < MIN_STORE_DATE_MS) throw new ConfigError(option, `expected a Date no earlier than 4714-11-24 BC (where PostgreSQL's timestamps start; every store takes them from there), got ${describe(value)}.`);
  return value;
}

/**
 * The longest age (`olderThanMs`): 2 × 10^14 ms, about 6,300 years, so that a cutoff the store
 * works out from its own clock stays within what every store holds (PostgreSQL's timestamps start
 * in 4714 BC). A constant, not this process's clock, which may be far off the store's.
 */
export const MAX_AGE_MS = 200_000_000_000_000;

/** Checks an age (`olderThanMs`): an integer from 0 up to {@link MAX_AGE_MS}. */
export function requireAgeMs(option: string, value: unknown): number {
  return requireNumber(option, value, { min: 0, max: MAX_AGE_MS, integer: true, why: 'about 6,300 years, as far back as every store reaches' });
}

/** Checks a delay that puts a deadline in the future (`delayMs`, a backoff): the deadline must be a valid Date. */
export function requireDelayMs(option: string, value: unknown, { integer = true }: { integer?: boolean } = {}): number {
  return requireNumber(option, value, { min: 0, max: MAX_DATE_MS - Date.now(), integer, why: 'the deadline it sets must be a valid Date' });
}

/** Checks an argument is an array (`what` names its entries in the message); returns it. */
export function requireList<T>(option: string, value: readonly T[], what: string): readonly T[] {
  if (!Array.isArray(value)) throw new ConfigError(option, `expected an array of ${what}, got ${describe(value)}.`);
  return value;
}

/** Checks an option is a positive integer (> 0). */
export function requirePositiveInt(option: string, value: unknown): number {
  return requireNumber(option, value, { min: 0, integer: true, allowZero: false });
}

/**
 * Checks a limit a store is sent (`find`, `claimBatch`, `retryAll`, a reaper's batch): a positive
 * integer, at most `Number.MAX_SAFE_INTEGER`. A limit of 1e21 passed as an integer, and the SQL
 * stores failed every call with it (`"1e+21"` is no bigint).
 */
export function requireLimit(option: string, value: unknown): number {
  return requireNumber(option, value, { min: 0, max: Number.MAX_SAFE_INTEGER, integer: true, allowZero: false, why: 'the largest integer a number holds exactly' });
}

/**
 * Refuses option names that `allowed` does not hold: a typo such as `concurency` or
 * `lease: { ttl }` would otherwise be ignored, and its default used without a word. Suggests the
 * nearest allowed name. `where` is the option's path (`lease`, `work`), or `''` for the top level.
 */
export function requireKnownOptions(where: string, value: unknown, allowed: readonly string[], store?: { readonly name: string; readonly class: string }): void {
  if (value === undefined) return;
  // a store's options: `[sqlite] ... (\`new SqliteStore()\` takes ...)`
  const tag = store ? `[${store.name}] ` : '';
  // `lease: 60000` or `retry: 3` would be ignored as well: a group of options is an object
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(where || 'options', `${tag}expected an object of options (${allowed.join(', ')}), got ${describe(value)}.`);
  }
  for (const name of Object.keys(value)) {
    if (allowed.includes(name)) continue;
    const path = (n: string) => (where ? `${where}.${n}` : n);
    const near = nearest(name, allowed);
    const takes = store && !where ? `\`new ${store.class}()\` takes` : where ? `\`${where}\` takes` : 'the options are';
    throw new ConfigError(path(name), `${tag}no such option${near ? `; did you mean \`${path(near)}\`?` : ''} (${takes} ${allowed.join(', ')}).`);
  }
}

/** The allowed name closest to `name` (the same in any case, one inside the other, or at most two edits away), if any. */
function nearest(name: string, allowed: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const candidate of allowed) {
    const c = candidate.toLowerCase();
    const edits = editDistance(lower, c);
    // one name inside the other (`attempts`, `maxAttempts`) comes after any close spelling
    const d = edits <= 2 ? edits : c.includes(lower) || lower.includes(c) ? 2.5 : Number.POSITIVE_INFINITY;
    if (d <= 2.5 && (!best || d < best.d)) best = { name: candidate, d };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}
