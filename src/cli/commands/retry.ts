import type { CliCommand } from '../context.js';
import { usage } from '../errors.js';
import { keyText, printable } from '../format.js';
import { checkStage, keyOf, parseCount, parseKey } from '../parse.js';
import { inBatches } from '../batches.js';
import { unchanged } from '../unchanged.js';

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
          if (!item) {
            const failed = [...new Set(def.stages.map((s) => s.failed))].join(', ');
            throw await unchanged(name, tracker, key, 'retry', `parked in a failed status (${failed})`, (item) => {
              const owners = def.stages.filter((s) => s.failed === item.status).map((s) => s.name);
              if (owners.length === 0) return undefined;
              const declared = item.stage !== null && def.stages.some((s) => s.name === item.stage);
              // parked, but by another stage than --stage names
              if (stage !== undefined && declared && item.stage !== stage) {
                return `item ${keyText(key)} is \`${printable(item.status)}\`, parked by stage \`${printable(item.stage!)}\`, and retry --stage ${stage} acts only on items that stage parked: pass --stage ${printable(item.stage!)}, or drop --stage`;
              }
              // no stage recorded, or one a redeploy renamed, in a failed status several stages share
              if (!declared && stage === undefined) {
                const recorded = item.stage === null ? 'no stage recorded' : `stage \`${printable(item.stage)}\` recorded, which the tracker no longer declares`;
                return `item ${keyText(key)} is \`${printable(item.status)}\` with ${recorded}, and \`${printable(item.status)}\` is the failed status of stages ${owners.join(', ')}: pass --stage with the one it should go back to`;
              }
              return undefined;
            });
          }
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
      }),
    );
};
