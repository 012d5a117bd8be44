/**
 * Strict ISO 8601 times, for the dashboard's input and the command line's (key fields that are
 * dates included, see {@link reviveKeyDates}). `new Date(text)`
 * alone rolls impossible dates over (`2030-02-30` is March 2nd) and accepts forms that are no
 * ISO; an operator's typo must be refused, not moved to another day. Internal.
 * @module
 */

import type { KeyField } from '../store.js';

/** `YYYY-MM-DD`, optionally `THH:MM[:SS[.fraction]]` (or a space for `T`), optionally `Z` or `±HH:MM`. */
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):?(\d{2}))?)?$/i;


const isLeapYear = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);

/** Days in `month` (1–12) of `year`. */
function daysIn(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/**
 * Parses an ISO 8601 time such as `2030-01-31T09:00:00Z`, or `undefined` when the text is not
 * one or names a day or time that does not exist (February 30th, 25:00, an offset of +99:00).
 * A date alone is midnight UTC and a time without an offset is local, as `new Date` reads them.
 */
export function parseIsoTime(text: string): Date | undefined {
  const match = ISO_TIME.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour = '0', minute = '0', second = '0', offsetHours = '0', offsetMinutes = '0'] = match;
  const m = Number(month);
  const fieldsExist =
    m >= 1 && m <= 12 &&
    Number(day) >= 1 && Number(day) <= daysIn(Number(year), m) &&
    Number(hour) <= 23 && Number(minute) <= 59 && Number(second) <= 59 &&
    Number(offsetHours) <= 23 && Number(offsetMinutes) <= 59;
  if (!fieldsExist) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * The key with its date fields made Dates: JSON has none, so a key field stored as a date is given
 * as ISO text (`{"day":"2026-03-01T00:00:00Z"}`). `parse` reads that text (and refuses it in the
 * caller's own terms); every other field is kept as given.
 */
export function reviveKeyDates(fields: readonly KeyField[], key: Record<string, unknown>, parse: (field: string, text: string) => Date | undefined): Record<string, unknown> {
  const dates = fields.filter((f) => f.type === 'date' && Object.hasOwn(key, f.name) && typeof key[f.name] === 'string');
  if (dates.length === 0) return key;
  const out = { ...key };
  for (const f of dates) out[f.name] = parse(f.name, key[f.name] as string);
  return out;
}
