import type { CliCommand } from '../context.js';
import { clip, keyText, printable } from '../format.js';
import { checkStage, keyOf, parseKey } from '../parse.js';
import { unchanged } from '../unchanged.js';
import { usage } from '../errors.js';

interface Options {
  readonly reason: string;
  readonly stage?: string;
  readonly yes?: boolean;
}

/** `leasehold cancel`: a waiting or held item goes to its stage's failed status. */
export const cancel: CliCommand = (program, act) => {
  program
    .command('cancel')
    .summary('cancel a waiting or held item (to failed)')
    .description("Cancel an item that waits or is held: it goes to its stage's failed status with the reason as its last error. A holder's fence is advanced, so its next renew or complete is refused (asks first).")
    .argument('<key-json>', `the item's key as JSON, such as '{"id":"a1"}'`)
    .requiredOption('--reason <text>', 'why, kept as the last error ("cancelled: <text>")')
    .option('--stage <stage>', 'the stage to cancel into, when its waiting status is shared by several stages')
    .option('-y, --yes', 'do not ask for confirmation')
    .action(
      act<Options>(async (ctx, [keyJson]) => {
        const given = parseKey(keyJson!);
        const [name, tracker] = await ctx.tracker();
        const key = keyOf(tracker.definition, given);
        const stage = checkStage(name, tracker.definition, ctx.options.stage);
        // refused before asking, naming the flag (the tracker would refuse it after)
        if (ctx.options.reason.trim() === '') throw usage('--reason must say why the item is cancelled (it is kept as its last error), got an empty text.');
        await ctx.confirm(`Cancel item ${keyText(key)} in tracker \`${name}\` (a worker holding it loses its lease)?`, ctx.options.yes);
        const item = await tracker.cancel(key, { reason: ctx.options.reason, ...(stage === undefined ? {} : { stage }) });
        if (!item) {
          const own = stage === undefined ? undefined : tracker.definition.stages.find((s) => s.name === stage);
          const mine = own ? [...own.from, own.active] : [];
          throw await unchanged(name, tracker, key, 'cancel', 'that wait or are held (not done, not failed)', (found) =>
            // waiting or held, but not in a status of the stage --stage names
            own && !mine.includes(found.status) && tracker.definition.stages.some((s) => s.from.includes(found.status) || s.active === found.status)
              ? `item ${keyText(key)} is \`${printable(found.status)}\`, and cancel --stage ${stage} acts only on items that stage waits in or holds (${mine.join(', ')}): pass the stage the item is in, or drop --stage`
              : undefined,
          );
        }
        if (ctx.json) ctx.printJson(item);
        // the reason on one line, made printable, never cut
        else ctx.print(`cancelled ${keyText(item.key)}: now \`${item.status}\` (${clip(item.lastError, Number.POSITIVE_INFINITY)}).`);
      }),
    );
};
