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

/** Lays rows out as an aligned table; widths come from the plain text, colour is added after padding. */
export function table<R>(rows: readonly R[], columns: ReadonlyArray<Column<R>>, paint: Paint): string {
  const cells = rows.map((row) => columns.map((c) => String(c.value(row))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => r[i]!.length)));
  const pad = (text: string, i: number) => (columns[i]!.align === 'right' ? text.padStart(widths[i]!) : text.padEnd(widths[i]!));
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

/** A key as one line of JSON, the form the item commands take it back in. */
export const keyText = (key: unknown): string => JSON.stringify(key);

/** A time without milliseconds, or `-`. */
export const timeText = (date: Date | null | undefined): string => (date ? date.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');

/** Cuts text to `max` characters on one line. */
export const clip = (text: string | null | undefined, max: number): string => {
  if (!text) return '-';
  const line = text.replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

/** The colour of a status: red for failed statuses, green for done ones, cyan while held. */
export function statusColour(status: string, kinds: { failed: ReadonlySet<string>; done: ReadonlySet<string>; active: ReadonlySet<string> }): Colour | undefined {
  if (kinds.failed.has(status)) return 'red';
  if (kinds.done.has(status)) return 'green';
  if (kinds.active.has(status)) return 'cyan';
  return undefined;
}

/** Every field of one item, one per line, for `show`. */
export function itemText(item: Item, paint: Paint): string {
  const when = item.leaseExpiresAt ? ['lease expires', timeText(item.leaseExpiresAt)] : ['not before', timeText(item.notBefore)];
  const rows: Array<[string, string]> = [
    ['key', keyText(item.key)],
    ['status', item.status],
    ['stage', item.stage ?? '-'],
    ['attempts', String(item.attempts)],
    ['fence', String(item.fence)],
    ['owner', item.owner ?? '-'],
    [when[0]!, when[1]!],
    ['last error', item.lastError ?? '-'],
    ['created', timeText(item.createdAt)],
    ['updated', timeText(item.updatedAt)],
    ['claimed', timeText(item.claimedAt)],
    ['finished', timeText(item.finishedAt)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  const data = JSON.stringify(item.data, null, 2) ?? 'null';
  return [...rows.map(([k, v]) => `${paint('dim', k.padEnd(width))}  ${v}`), `${paint('dim', 'data'.padEnd(width))}  ${data.replace(/\n/g, `\n${' '.repeat(width + 2)}`)}`].join('\n');
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
