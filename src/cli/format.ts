/**
 * Human output of the command line: colours (only on a terminal), aligned tables, items, and a
 * progress bar for bulk operations.
 * @module
 */
import { styleText } from 'node:util';
import type { Item } from '../codec.js';

type Colour = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan';

/** Colours text, or leaves it alone when colour is off. */
export type Paint = (colour: Colour, text: string) => string;

/**
 * Whether a stream gets colour: `FORCE_COLOR` (not `0`) turns it on, `NO_COLOR` or
 * `TERM=dumb` off, else only on a terminal.
 */
export function wantsColour(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.TERM === 'dumb') return false;
  return stream.isTTY === true;
}

/** A painter that colours when `enabled`. */
export const painter = (enabled: boolean): Paint => (enabled ? (colour, text) => styleText(colour, text) : (_colour, text) => text);

/** A table column: a header, right-aligned for numbers, and an optional colour per cell. */
export interface Column<R> {
  readonly header: string;
  readonly value: (row: R) => string | number;
  readonly align?: 'left' | 'right';
  readonly colour?: (row: R) => Colour | undefined;
}

/**
 * What must not reach a terminal as it is: C0 controls and DEL, C1 controls (ESC and CSI start
 * escape sequences that recolour, retitle or clear the screen), the line and paragraph
 * separators, the bidirectional marks (the Arabic letter mark included) and overrides that reorder what is shown, and lone
 * surrogates. Item data is anyone's text.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const SHORT: Readonly<Record<string, string>> = { '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };

/**
 * Text safe to write to a terminal: every character of {@link UNSAFE} is shown as its JSON escape
 * (`\u001b`, `\n`), so a key shown this way can be pasted back as JSON. `--json` output is never
 * passed through this: it stays exact.
 */
export const printable = (text: string): string => text.replace(UNSAFE, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** Text of several lines made safe line by line, the line breaks kept. */
export const printableLines = (text: string): string => text.split(/\r?\n/).map(printable).join('\n');

/** East Asian wide and fullwidth characters, and the common emoji: two terminal columns each. */
const WIDE = /[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6\u{1f300}-\u{1f64f}\u{1f900}-\u{1f9ff}\u{20000}-\u{3fffd}]/u;
/** Combining marks and invisible format characters: no column of their own. */
const ZERO_WIDTH = /[\p{Mn}\p{Me}\p{Cf}]/u;

/** How many terminal columns `text` takes (an approximation of wcwidth, enough to align tables). */
export function displayWidth(text: string): number {
  let width = 0;
  for (const c of text) width += ZERO_WIDTH.test(c) ? 0 : WIDE.test(c) ? 2 : 1;
  return width;
}

/** Lays rows out as an aligned table; every cell is made printable, widths come from the plain text, colour is added after padding. */
export function table<R>(rows: readonly R[], columns: ReadonlyArray<Column<R>>, paint: Paint): string {
  const cells = rows.map((row) => columns.map((c) => printable(String(c.value(row)))));
  const widths = columns.map((c, i) => Math.max(displayWidth(c.header), ...cells.map((r) => displayWidth(r[i]!))));
  const pad = (text: string, i: number) => {
    const fill = ' '.repeat(Math.max(0, widths[i]! - displayWidth(text)));
    return columns[i]!.align === 'right' ? fill + text : text + fill;
  };
  const header = columns.map((c, i) => paint('bold', pad(c.header, i))).join('  ');
  const lines = rows.map((row, r) =>
    columns
      .map((c, i) => {
        const text = pad(cells[r]![i]!, i);
        const colour = c.colour?.(row);
        return colour ? paint(colour, text) : text;
      })
      .join('  ')
      .trimEnd(),
  );
  return [header.trimEnd(), ...lines].join('\n');
}

/** A key as one line of JSON, the form the item commands take it back in (made printable: still valid JSON). */
export const keyText = (key: unknown): string => printable(JSON.stringify(key) ?? '-');

/** A time without milliseconds, or `-`; a Date that holds no valid time says so instead of throwing. */
export const timeText = (date: Date | null | undefined): string => {
  if (!date) return '-';
  return Number.isNaN(date.getTime()) ? 'invalid date' : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
};

/**
 * Cuts text to `max` terminal columns on one line, made printable. It cuts between characters
 * (never inside a surrogate pair or an escape such as `\u001b`) and counts wide characters twice.
 */
export const clip = (text: string | null | undefined, max: number): string => {
  if (!text) return '-';
  const line = text.replace(/\s+/g, ' ');
  const whole = printable(line);
  if (displayWidth(whole) <= max) return whole;
  let out = '';
  let width = 0;
  // code point by code point: a lone surrogate comes alone and is escaped whole
  for (const c of line) {
    const shown = printable(c);
    const w = displayWidth(shown);
    if (width + w > max - 1) break;
    out += shown;
    width += w;
  }
  return `${out}…`;
};

/** The colour of a status: red for failed statuses, green for done ones, cyan while held. */
export function statusColour(status: string, kinds: { failed: ReadonlySet<string>; done: ReadonlySet<string>; active: ReadonlySet<string> }): Colour | undefined {
  if (kinds.failed.has(status)) return 'red';
  if (kinds.done.has(status)) return 'green';
  if (kinds.active.has(status)) return 'cyan';
  return undefined;
}

/** Every field of one item, one per line, for `show`; a value of several lines (a stack trace) is indented under the first. */
export function itemText(item: Item, paint: Paint): string {
  const when = item.leaseExpiresAt ? ['lease expires', timeText(item.leaseExpiresAt)] : ['not before', timeText(item.notBefore)];
  const rows: Array<[string, string]> = [
    ['key', keyText(item.key)],
    ['status', printable(item.status)],
    ['stage', printable(item.stage ?? '-')],
    ['attempts', String(item.attempts)],
    ['fence', String(item.fence)],
    ['owner', printable(item.owner ?? '-')],
    [when[0]!, when[1]!],
    ['last error', printableLines(item.lastError ?? '-')],
    ['created', timeText(item.createdAt)],
    ['updated', timeText(item.updatedAt)],
    ['claimed', timeText(item.claimedAt)],
    ['finished', timeText(item.finishedAt)],
    // JSON escapes C0 controls in strings, but not DEL, C1 or the bidirectional overrides
    ['data', printableLines(JSON.stringify(item.data, null, 2) ?? 'null')],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const indent = `\n${' '.repeat(width + 2)}`;
  return rows.map(([k, v]) => `${paint('dim', k.padEnd(width))}  ${v.replace(/\n/g, indent)}`).join('\n');
}

/** One progress line: a bar, the count and the share of an expected total. */
export function progressLine(label: string, done: number, total: number, width = 24): string {
  const share = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(share * width);
  return `${label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} ${Math.round(share * 100)}%`;
}

/** A progress bar on a terminal stream; does nothing elsewhere, so that logs stay clean. */
export class Progress {
  readonly #stream: NodeJS.WriteStream | undefined;
  readonly #label: string;
  readonly #total: number;

  constructor(stream: NodeJS.WriteStream, label: string, total: number) {
    this.#stream = stream.isTTY ? stream : undefined;
    this.#label = label;
    this.#total = total;
  }

  /** Shows `done` of the expected total. */
  update(done: number): void {
    this.#stream?.write(`\r${progressLine(this.#label, done, Math.max(this.#total, done))}`);
  }

  /** Clears the line. */
  end(): void {
    this.#stream?.write('\r\x1b[2K');
  }
}
