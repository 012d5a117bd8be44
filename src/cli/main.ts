/**
 * `leasehold`: the operator's command line. It loads the trackers from `leasehold.config.*`
 * and runs one verb of the Tracker API (stats, list, show, retry, cancel, reschedule, purge,
 * reap). Each command is one file in `commands/`.
 * @module
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { commands } from './commands/index.js';
import { actIn, Session } from './context.js';
import { EXIT } from './errors.js';

const EXIT_CODES = `
Exit codes:
  0  done (a bulk command that matched nothing is done too)
  1  the operation failed (store or config module error), or was not confirmed
  2  usage error: unknown command, option, tracker, stage or status; bad key JSON,
     duration or time; no config found; confirmation needed but no terminal (use --yes)
  3  the item does not exist, or is not in a status the command acts on

Keys are JSON objects of the key fields:  leasehold show '{"logId":"a1","partnerCode":"acme"}'
Config: leasehold.config.{ts,mts,cts,js,mjs,cjs} in the current directory exporting
  { trackers: { name: tracker }, close?() } (default export, or named exports).
Guide: docs/operating.md ("Operating") in the leasehold repository.`;

const COMMAND_EXIT_CODES = '\nExit codes: 0 done, 1 failed, 2 usage error, 3 no such item or not in a status this command acts on.';

function version(): string {
  try {
    // dist/cli.js sits one level below package.json
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Builds the program; every command in `commands/` adds itself. */
export function createProgram(session: Session): Command {
  const program = new Command('leasehold')
    .description("Operate leasehold trackers: counts, items, and the operator's verbs (retry, cancel, reschedule, purge, reap).")
    .version(version(), '-V, --version')
    .option('-c, --config <path>', 'the config module (default: leasehold.config.* in the current directory)')
    .option('-t, --tracker <name>', 'the tracker to act on (needed when the config has several)')
    .option('--json', 'machine-readable output on stdout')
    .addOption(new Option('--no-color', 'no colour, even on a terminal (also NO_COLOR=1)'))
    .addHelpText('after', EXIT_CODES)
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .exitOverride();
  const act = actIn(session);
  for (const add of commands) add(program, act);
  for (const command of program.commands) {
    command
      .exitOverride()
      .showHelpAfterError(`(run \`leasehold ${command.name()} --help\` for usage)`)
      .addHelpText('after', COMMAND_EXIT_CODES);
  }
  return program;
}

/** Runs the command line with `argv` and returns the exit code, having closed the config. */
export async function run(argv: readonly string[]): Promise<number> {
  const session = new Session();
  const program = createProgram(session);
  try {
    if (argv.length <= 2) {
      program.outputHelp({ error: true });
      return EXIT.usage;
    }
    await program.parseAsync(argv);
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    // help and version end with code 0; commander has printed its own message for the rest
    const shown = ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(error.code);
    session.exitCode = shown && error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } finally {
    await session.close();
  }
  return session.exitCode;
}

// `leasehold list | head` closes the pipe early: that is the reader's choice, not a failure
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(EXIT.ok);
  throw error;
});
const code = await run(process.argv);
// the config's pools may still hold sockets; leave once stdout has been written out
process.stdout.write('', () => process.exit(code));
