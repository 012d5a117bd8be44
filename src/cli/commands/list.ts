import type { Item } from '../../codec.js';
import type { CliCommand } from '../context.js';
import { usage } from '../errors.js';
import { issuesText } from '../../errors.js';
import { clip, keyText, statusColour, table, timeText } from '../format.js';
import { parseCount, parseStatuses } from '../parse.js';

interface Options {
  readonly status?: string;
  readonly undeclared?: boolean;
  readonly limit?: string;
}

/** `leasehold list`: the items in some statuses, oldest eligible first. */
export const list: CliCommand = (program, act) => {
  program
    .command('list')
    .summary('list items of a tracker')
    .description('List items of one tracker, in eligible order (the order workers claim them).')
    .option('--status <status>', 'only items in this status (several: failed,pending); all statuses when absent')
    .option('--undeclared', 'only items in statuses the definition no longer declares (left by an older version)')
    .option('--limit <n>', 'at most this many items', '100')
    .action(
      act<Options>(async (ctx) => {
        const [name, tracker] = await ctx.tracker();
        const def = tracker.definition;
        const limit = parseCount('--limit', ctx.options.limit) ?? 100;
        const undeclared = ctx.options.undeclared === true;
        if (undeclared && ctx.options.status !== undefined) throw usage('--undeclared lists statuses the definition does not declare; drop --status.');
        const statuses = ctx.options.status === undefined ? undefined : parseStatuses(name, def, '--status', ctx.options.status);
        // one more than asked tells whether the list was cut; items that no longer fit the schema
        // are listed apart (they are the ones an operator looks for), not a failure of the list
        const invalid: Array<{ key: unknown; status: string; issues: readonly { path: readonly PropertyKey[]; message: string }[] }> = [];
        const found = await tracker.find({
          ...(statuses ? { status: statuses } : {}),
          undeclared,
          // one more than asked, within what a limit may be
          limit: Math.min(limit + 1, Number.MAX_SAFE_INTEGER),
          onInvalid: (error, { status }) => void invalid.push({ key: error.key, status, issues: error.issues }),
        });
        // every row read is shown: the readable ones up to the limit, and the unreadable ones apart
        const items = found.slice(0, limit);
        // a readable row read beyond the limit says more match; a read that reached its bound with
        // unreadable rows among them (all shown) says only that more may
        const cutNote =
          found.length > limit
            ? `showing the first ${limit}; more match (raise --limit).`
            : found.length + invalid.length > limit
              ? `showing every row read (${found.length + invalid.length}, ${invalid.length} of them unreadable); more may match (raise --limit).`
              : undefined;
        if (ctx.json) {
          ctx.printJson(items);
          for (const i of invalid) ctx.note(`item ${keyText(i.key)} no longer fits the schema (${issuesText(i.issues)}); not in the JSON above.`);
          if (cutNote) ctx.note(cutNote);
          return;
        }
        if (invalid.length > 0) {
          ctx.print(
            table(
              invalid,
              [
                { header: 'KEY (no longer fits the schema)', value: (i) => keyText(i.key) },
                { header: 'STATUS', value: (i) => i.status },
                { header: 'PROBLEM', value: (i) => clip(issuesText(i.issues), 80) },
              ],
              ctx.paint,
            ),
          );
          ctx.note(`${invalid.length} item(s) above no longer fit the tracker's schema (changed by a deploy, or edited by hand): fix them in the database, \`cancel\` them by key while they wait or are held, or \`purge\` their status once they are finished.`);
        }
        if (items.length > 0) {
          const kinds = {
            failed: new Set(def.stages.map((s) => s.failed)),
            done: new Set(def.stages.flatMap((s) => s.done)),
            active: new Set(def.stages.map((s) => s.active)),
          };
          ctx.print(
            table<Item>(
              items,
              [
                { header: 'KEY', value: (i) => keyText(i.key) },
                { header: 'STATUS', value: (i) => i.status, colour: (i) => statusColour(i.status, kinds) },
                { header: 'ATTEMPTS', value: (i) => i.attempts, align: 'right' },
                { header: 'OWNER', value: (i) => i.owner ?? '-' },
                { header: 'UPDATED', value: (i) => timeText(i.updatedAt) },
                { header: 'LAST ERROR', value: (i) => clip(i.lastError, 60), colour: (i) => (i.lastError ? 'dim' : undefined) },
              ],
              ctx.paint,
            ),
          );
        } else if (invalid.length === 0) {
          ctx.note(`no items${statuses ? ` in status ${statuses.join(', ')}` : undeclared ? ' in undeclared statuses' : ''} in tracker \`${name}\`.`);
        }
        if (cutNote) ctx.note(cutNote);
      }),
    );
};
