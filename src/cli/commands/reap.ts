import type { ReapResult } from '../../results.js';
import type { CliCommand } from '../context.js';
import { table } from '../format.js';

/** `leasehold reap`: expired leases become failed attempts, now. */
export const reap: CliCommand = (program, act) => {
  program
    .command('reap')
    .summary('hand on items whose lease expired')
    .description('Hand on items whose lease expired (store clock): each counts as a failed attempt, back for a retry or parked when its attempts ran out. Workers do this on their own; this runs it once, for every tracker unless --tracker is given.')
    .action(
      act(async (ctx) => {
        const results: Array<[string, ReapResult]> = [];
        for (const [name, tracker] of await ctx.trackers()) results.push([name, await tracker.reapStale()]);
        if (ctx.json) {
          ctx.printJson(Object.fromEntries(results));
          return;
        }
        ctx.print(
          table(
            results,
            [
              { header: 'TRACKER', value: ([name]) => name },
              { header: 'RETRIED', value: ([, r]) => r.retried, align: 'right' },
              { header: 'PARKED', value: ([, r]) => r.failed, align: 'right', colour: ([, r]) => (r.failed > 0 ? 'red' : undefined) },
            ],
            ctx.paint,
          ),
        );
      }),
    );
};
