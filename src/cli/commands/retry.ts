import type { CliCommand } from '../context.js';
import { keyText, printable } from '../format.js';
import { checkStage, keyOf, parseCount, parseKey } from '../parse.js';
import { inBatches } from '../batches.js';
import { retryRefusal, type RetryRefusal } from '../../retry-refusal.js';
import { CliError, EXIT, usage } from '../errors.js';

interface Options {
  readonly all?: boolean;
  readonly stage?: string;
  readonly limit?: string;
  readonly yes?: boolean;
}

/** `leasehold retry`: parked (failed) items go back to their stage's first `from` status. */
export const retry: CliCommand = (program, act) => {
  program
    .command('retry')
    .summary('put a failed item (or all, --all) back to work')
    .description("Put a parked (failed) item back to its stage's first `from` status with its attempts reset, claimable now. With --all, every parked item (asks first).")
    .argument('[key-json]', `the item's key as JSON, such as '{"id":"a1"}'`)
    .option('--all', 'retry every parked item (of --stage, when given), in batches of 500')
    .option('--stage <stage>', 'the stage to retry into (with a key: also items parked before their stage was recorded)')
    .option('--limit <n>', 'with --all: at most this many items')
    .option('-y, --yes', 'with --all: do not ask for confirmation')
    .action(
      act<Options>(async (ctx, [keyJson]) => {
        const all = ctx.options.all === true;
        const yes = ctx.options.yes === true;
        if (all === (keyJson !== undefined)) throw usage('give either a key (retry \'{"id":"a1"}\') or --all, not both and not neither.');
        if (!all && (ctx.options.limit !== undefined || yes)) throw usage('--limit and --yes go with --all.');
        const given = keyJson === undefined ? undefined : parseKey(keyJson);
        const limit = parseCount('--limit', ctx.options.limit);
        const [name, tracker] = await ctx.tracker();
        const key = given === undefined ? undefined : keyOf(tracker.definition, given);
        const def = tracker.definition;
        const stage = checkStage(name, def, ctx.options.stage);

        if (key) {
          const item = await tracker.retry(key, stage === undefined ? {} : { stage });
          if (!item) throw retryRefused(name, key, retryRefusal(def, await tracker.get(key), stage), stage);
          if (ctx.json) ctx.printJson(item);
          else ctx.print(`retried ${keyText(item.key)}: now \`${item.status}\`, attempts reset, claimable now.`);
          return;
        }

        // an estimate for the prompt and the bar: a failed status shared by stages is counted once
        const s = await tracker.stats();
        const failedStatuses = [...new Set(def.stages.filter((st) => stage === undefined || st.name === stage).map((st) => st.failed))];
        const parked = failedStatuses.reduce((sum, st) => sum + (s.byStatus[st] ?? 0), 0);
        const expected = Math.min(parked, limit ?? Number.POSITIVE_INFINITY);
        const scope = `${stage ? ` of stage \`${stage}\`` : ''} in tracker \`${name}\``;
        // nothing parked: nothing to confirm, and nothing is changed
        // a failed status other stages share is counted whole: then the count is an upper bound
        const shared = stage !== undefined && def.stages.some((st) => st.name !== stage && failedStatuses.includes(st.failed));
        const upTo = limit !== undefined && limit < parked ? `up to ${limit} of ` : '';
        await ctx.confirm(
          shared
            ? `Retry ${upTo}the items stage \`${stage}\` parked (of ${parked} in \`${failedStatuses.join(', ')}\`, which other stages share) in tracker \`${name}\`?`
            : `Retry ${upTo}${parked} parked item(s)${scope}?`,
          yes,
          { ask: parked > 0 },
        );
        const bar = ctx.progress('retrying', expected);
        let total = 0;
        try {
          // the running total, for the note if a later batch fails
          const progress = (n: number) => {
            total = n;
            bar.update(n);
          };
          await inBatches(expected, (limit) => tracker.retryAll({ ...(stage === undefined ? {} : { stage }), limit }), progress);
        } catch (error) {
          ctx.note(`retried ${total} item(s) before the failure below.`);
          throw error;
        } finally {
          bar.end();
        }
        if (ctx.json) ctx.printJson({ tracker: name, retried: total });
        else ctx.print(`retried ${total} item(s)${scope}.`);
        // items with no stage recorded in a failed status several stages share are not retried
        // by --all (which stage would they go to?): say how many are left, and what to do
        const sharedStatuses = failedStatuses.filter((st) => def.stages.filter((x) => x.failed === st).length > 1);
        if (stage === undefined && sharedStatuses.length > 0 && (limit === undefined || total < limit)) {
          const after = await tracker.stats();
          const left = sharedStatuses.reduce((sum, st) => sum + (after.byStatus[st] ?? 0), 0);
          if (left > 0) {
            ctx.note(
              `${left} item(s) are still in \`${sharedStatuses.join(', ')}\`, the failed status of several stages: --all leaves those parked with no stage recorded ` +
                `(or parked again since); retry them by key with --stage.`,
            );
          }
        }
      }),
    );
};

/** The error (exit 3) for a retry of one item that changed nothing, saying why (see `retryRefusal`). */
function retryRefused(name: string, key: Record<string, unknown>, refusal: RetryRefusal, stage: string | undefined): CliError {
  const item = `item ${keyText(key)}`;
  const why = ((): string => {
    switch (refusal.why) {
      case 'missing':
        return `no item ${keyText(key)} in tracker \`${name}\``;
      case 'not-parked':
        return `${item} is \`${printable(refusal.status)}\`, and retry acts only on items parked in a failed status (${refusal.failedStatuses.join(', ')})`;
      case 'not-parked-here':
        return `${item} is \`${printable(refusal.status)}\` under stage \`${printable(refusal.stage)}\`, and items also wait or finish in \`${printable(refusal.status)}\` (a stage claims from or completes into it), so it is not parked there`;
      case 'other-stage':
        return `${item} is \`${printable(refusal.status)}\`, parked by stage \`${printable(refusal.parkedBy)}\`, and retry --stage ${stage} acts only on items that stage parked: pass --stage ${printable(refusal.parkedBy)}, or drop --stage`;
      case 'pick-stage': {
        const recorded = refusal.recorded === null ? 'no stage recorded' : `stage \`${printable(refusal.recorded)}\` recorded, which the tracker no longer declares`;
        const named = stage === undefined ? '' : ` (stage \`${stage}\` fails into another status)`;
        const owners = `stage${refusal.owners.length > 1 ? 's' : ''} ${refusal.owners.join(', ')}`;
        return `${item} is \`${printable(refusal.status)}\` with ${recorded}, and \`${printable(refusal.status)}\` is the failed status of ${owners}${named}: pass --stage with the one it should go back to`;
      }
      case 'unclear':
        return (
          `${item} is \`${printable(refusal.status)}\` ${refusal.recorded === null ? 'with no stage recorded' : `under stage \`${printable(refusal.recorded)}\`, which the tracker no longer declares,`} and items also wait in ` +
          `\`${printable(refusal.status)}\` (a stage claims from or completes into it), so retry cannot tell that it was parked${refusal.recorded === null ? '; look at it again (`show`): it may have moved meanwhile' : '; if it was, declare that stage again to retry it'}`
        );
    }
  })();
  return new CliError(`${why}; nothing was changed.`, EXIT.notFound);
}
