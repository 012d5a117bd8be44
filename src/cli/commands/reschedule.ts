import type { CliCommand } from '../context.js';
import { usage } from '../errors.js';
import { keyText, timeText } from '../format.js';
import { keyOf, parseDuration, parseKey, parseTime } from '../parse.js';
import { unchanged } from '../unchanged.js';

interface Options {
  readonly at?: string;
  readonly in?: string;
}

/** `leasehold reschedule`: a waiting item is not claimable before a time. */
export const reschedule: CliCommand = (program, act) => {
  program
    .command('reschedule')
    .summary('delay a waiting item (--at TIME | --in 5m)')
    .description('Make a waiting item (in a stage\'s `from` status) claimable only from a given time: --at a time, or --in a delay from now (store clock).')
    .argument('<key-json>', `the item's key as JSON, such as '{"id":"a1"}'`)
    .option('--at <iso-time>', 'not claimable before this time, such as 2030-01-31T09:00:00Z')
    .option('--in <duration>', 'not claimable for this long, such as 90s, 5m, 2h or 7d')
    .action(
      act<Options>(async (ctx, [keyJson]) => {
        const given = parseKey(keyJson!);
        const { at, in: delay } = ctx.options;
        if ((at === undefined) === (delay === undefined)) throw usage('give exactly one of --at ISO-TIME and --in DURATION (such as --in 5m).');
        const when = at !== undefined ? { notBefore: parseTime('--at', at) } : { delayMs: parseDuration('--in', delay!) };
        const [name, tracker] = await ctx.tracker();
        const key = keyOf(tracker.definition, given);
        const item = await tracker.reschedule(key, when);
        if (!item) {
          const from = [...new Set(tracker.definition.stages.flatMap((s) => s.from))].join(', ');
          throw await unchanged(name, tracker, key, 'reschedule', `waiting in a \`from\` status (${from})`);
        }
        if (ctx.json) ctx.printJson(item);
        else ctx.print(`rescheduled ${keyText(item.key)}: \`${item.status}\`, not claimable before ${timeText(item.notBefore)}.`);
      }),
    );
};
