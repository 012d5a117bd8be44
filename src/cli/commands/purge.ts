import type { CliCommand } from '../context.js';
import { usage } from '../errors.js';
import { inBatches } from '../batches.js';
import { parseCount, parseDuration, parseStatuses } from '../parse.js';
import { MAX_AGE_MS } from '../../validate.js';

interface Options {
  readonly status: string;
  readonly olderThan?: string;
  readonly limit?: string;
  readonly yes?: boolean;
}

/** `leasehold purge`: deletes finished items in bounded batches. */
export const purge: CliCommand = (program, act) => {
  program
    .command('purge')
    .summary('delete finished items in batches')
    .description('Delete finished items (a done status no stage claims from, or a failed status), in batches of 500 (asks first).')
    .requiredOption('--status <status>', 'the finished status to delete from')
    .option('--older-than <duration>', 'only items that finished longer ago than this, such as 7d or 12h')
    .option('--limit <n>', 'at most this many items')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      act<Options>(async (ctx) => {
        const limit = parseCount('--limit', ctx.options.limit);
        const age = ctx.options.olderThan === undefined ? undefined : parseDuration('--older-than', ctx.options.olderThan);
        if (age !== undefined && age > MAX_AGE_MS) throw usage(`--older-than \`${ctx.options.olderThan}\` reaches back further than every store does (about 6,300 years); use a shorter duration.`);
        const [name, tracker] = await ctx.tracker();
        const def = tracker.definition;
        // one status per run, as `tracker.purge` takes it
        const [status, ...more] = parseStatuses(name, def, '--status', ctx.options.status, def.terminalStatuses, 'is a status items wait or are held in; purge deletes only finished items');
        if (more.length > 0) throw usage(`--status \`${ctx.options.status}\`: purge deletes from one status per run; run it once for each.`);
        const inStatus = (await tracker.stats()).byStatus[status] ?? 0;
        const expected = Math.min(inStatus, limit ?? Number.POSITIVE_INFINITY);
        // the count is of the whole status: with --older-than it is an upper bound, and said so
        const upTo = limit !== undefined && limit < inStatus ? `up to ${limit} of ` : '';
        // the age is judged by the store's clock, by which items record when they finished
        const what = age !== undefined
          ? `${upTo}the items in \`${status}\` that finished more than ${ctx.options.olderThan} ago (of ${inStatus} in \`${status}\`) in tracker \`${name}\``
          : `${upTo}${inStatus} item(s) in \`${status}\` in tracker \`${name}\``;
        // nothing in the status: nothing to confirm, and nothing is deleted
        await ctx.confirm(`Delete ${what}?`, ctx.options.yes, { ask: inStatus > 0 });
        const bar = ctx.progress('purging', expected);
        let deleted = 0;
        try {
          // at most what was counted: workers finishing items into the status meanwhile add no more
          const progress = (n: number) => {
            deleted = n;
            bar.update(n);
          };
          await inBatches(expected, async (batch) => (await tracker.purge({ status, limit: batch, ...(age !== undefined ? { olderThanMs: age } : {}) })).deleted, progress);
        } catch (error) {
          ctx.note(`deleted ${deleted} item(s) before the failure below.`);
          throw error;
        } finally {
          bar.end();
        }
        if (ctx.json) ctx.printJson({ tracker: name, status, deleted });
        else ctx.print(`deleted ${deleted} item(s) in \`${status}\` from tracker \`${name}\`.`);
      }),
    );
};
