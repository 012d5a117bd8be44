import { ConfigError } from './errors.js';

function describe(value: unknown): string {
  return `\`${typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value) ?? String(value)}\` (${typeof value})`;
}

/** Checks an option is a finite number within bounds; throws a ConfigError naming it. */
export function requireNumber(
  option: string,
  value: unknown,
  { min, integer = false, allowZero = true }: { min?: number; integer?: boolean; allowZero?: boolean } = {},
): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!integer || Number.isInteger(value)) &&
    (min === undefined || value >= min) &&
    (allowZero || value !== 0);
  if (!ok) {
    const kind = integer ? 'an integer' : 'a finite number';
    const bound = min !== undefined ? ` ${allowZero ? '>=' : '>'} ${min}` : '';
    throw new ConfigError(option, `expected ${kind}${bound}, got ${describe(value)}.`);
  }
  return value as number;
}

/** Checks an option is a positive integer (> 0). */
export function requirePositiveInt(option: string, value: unknown): number {
  return requireNumber(option, value, { min: 0, integer: true, allowZero: false });
}
