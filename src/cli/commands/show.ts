import type { CliCommand } from '../context.js';
import { CliError, EXIT } from '../errors.js';
import { itemText, keyText } from '../format.js';
import { keyOf, parseKey } from '../parse.js';

/** `leasehold show <key-json>`: every field of one item. */
export const show: CliCommand = (program, act) => {
  program
    .command('show')
    .summary('show one item')
    .description('Show one item: status, stage, attempts, fence, owner, times, last error and data.')
    .argument('<key-json>', `the item's key as JSON, such as '{"id":"a1"}'`)
    .action(
      act(async (ctx, [keyJson]) => {
        const given = parseKey(keyJson!);
        const [name, tracker] = await ctx.tracker();
        const key = keyOf(tracker.definition, given);
        const item = await tracker.get(key);
        if (!item) throw new CliError(`no item ${keyText(key)} in tracker \`${name}\`.`, EXIT.notFound);
        if (ctx.json) ctx.printJson(item);
        else ctx.print(itemText(item, ctx.paint));
      }),
    );
};
