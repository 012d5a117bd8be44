import type { StageStats, TrackerStats } from '../../results.js';
import type { CliCommand } from '../context.js';
import { printable, table, type Column } from '../format.js';

interface Row extends StageStats {
  readonly tracker: string;
  readonly stage: string;
}

/** `leasehold stats`: per tracker and stage, what waits, what is held, where items ended. */
export const stats: CliCommand = (program, act) => {
  program
    .command('stats')
    .summary('counts per tracker and stage')
    .description('Counts per tracker and stage: waiting (backoff or scheduled), claimable, active, expired leases, failed, done; and items in undeclared statuses. Shows every tracker unless --tracker is given.')
    .action(
      act(async (ctx) => {
        const results: Array<[string, TrackerStats<string>]> = [];
        for (const [name, tracker] of await ctx.trackers()) results.push([name, await tracker.stats()]);
        if (ctx.json) {
          ctx.printJson(Object.fromEntries(results));
          return;
        }
        const rows: Row[] = results.flatMap(([tracker, s]) => Object.entries(s.stages).map(([stage, c]) => ({ tracker, stage, ...c })));
        const n = (pick: (r: Row) => number, colour?: 'red' | 'yellow' | 'green'): Column<Row> => ({
          header: '',
          value: pick,
          align: 'right',
          ...(colour ? { colour: (r: Row) => (pick(r) > 0 ? colour : undefined) } : {}),
        });
        const columns: Array<Column<Row>> = [
          { header: 'TRACKER', value: (r) => r.tracker },
          { header: 'STAGE', value: (r) => r.stage },
          { ...n((r) => r.waiting), header: 'WAITING' },
          { ...n((r) => r.claimable), header: 'CLAIMABLE' },
          { ...n((r) => r.active), header: 'ACTIVE' },
          { ...n((r) => r.expired, 'yellow'), header: 'EXPIRED' },
          { ...n((r) => r.failed, 'red'), header: 'FAILED' },
          { ...n((r) => r.done, 'green'), header: 'DONE' },
        ];
        ctx.print(table(rows, columns, ctx.paint));
        for (const [tracker, s] of results) {
          const undeclared = Object.entries(s.undeclared);
          if (undeclared.length === 0) continue;
          // statuses read from the store, not the definition: anyone's text
          const list = undeclared.map(([status, count]) => `${printable(status)} ${count}`).join(', ');
          ctx.print(ctx.paint('yellow', `${tracker}: items in undeclared statuses: ${list} (see them with \`leasehold list --tracker ${tracker} --undeclared\`)`));
        }
      }),
    );
};
