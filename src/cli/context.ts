/**
 * What a command's action gets: its options, the trackers of the config (loaded on first use,
 * so that `--help` and usage errors never open a database), output helpers, confirmation and
 * progress. Also how an action's outcome becomes an exit code.
 * @module
 */
import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { loadConfig, type AnyTracker, type LoadedConfig } from './config.js';
import { CliError, EXIT, usage, type ExitCode } from './errors.js';
import { painter, printableLines, Progress, wantsColour, type Paint } from './format.js';

/** Options every command takes (declared on the program). */
export interface GlobalOptions {
  /** `--config PATH` */
  readonly config?: string;
  /** `--tracker NAME` */
  readonly tracker?: string;
  /** `--json` */
  readonly json?: boolean;
  /** `--no-color` sets it to false. */
  readonly color?: boolean;
}

/** One run of the program: the config once loaded, and the exit code. */
export class Session {
  #config: Promise<LoadedConfig> | undefined;
  /** The exit code of the last action (0 until one fails). */
  exitCode: ExitCode = EXIT.ok;

  /** Loads the config on first call. */
  config(path: string | undefined): Promise<LoadedConfig> {
    return (this.#config ??= loadConfig(path));
  }

  /** Closes the config if it was loaded; a failing close is reported and makes the run fail. */
  async close(): Promise<void> {
    if (!this.#config) return;
    try {
      const config = await this.#config;
      await config.close();
    } catch (error) {
      // a config that failed to load was reported already
      if (error instanceof CliError) return;
      process.stderr.write(`leasehold: closing the config failed: ${error instanceof Error ? error.message : String(error)}\n`);
      if (this.exitCode === EXIT.ok) this.exitCode = EXIT.failed;
    }
  }
}

/** The context of one command's action. */
export class Context<O> {
  /** The command's own options. */
  readonly options: O;
  /** The program-wide options. */
  readonly global: GlobalOptions;
  /** Colours stdout text when stdout is a terminal. */
  readonly paint: Paint;
  readonly #session: Session;
  readonly #command: Command;

  constructor(session: Session, command: Command) {
    this.#session = session;
    this.#command = command;
    this.options = command.opts() as O;
    this.global = command.optsWithGlobals<GlobalOptions>();
    this.paint = painter(this.global.color !== false && wantsColour(process.stdout));
  }

  /** The command's name, for messages. */
  get name(): string {
    return this.#command.name();
  }

  /** Whether `--json` was given. */
  get json(): boolean {
    return this.global.json === true;
  }

  /** The trackers `--tracker` selects: that one, or all of them. */
  async trackers(): Promise<Array<[string, AnyTracker]>> {
    const config = await this.#session.config(this.global.config);
    const selected = this.global.tracker;
    if (selected === undefined) return Object.entries(config.trackers);
    const tracker = config.trackers[selected];
    if (!tracker || !Object.hasOwn(config.trackers, selected)) {
      throw usage(`unknown tracker \`${selected}\`; ${config.path} defines: ${Object.keys(config.trackers).join(', ')}. Pass one of them to --tracker.`);
    }
    return [[selected, tracker]];
  }

  /** The one tracker this command acts on: `--tracker`, or the only one the config has. */
  async tracker(): Promise<[string, AnyTracker]> {
    const all = await this.trackers();
    if (all.length > 1) {
      throw usage(`the config defines ${all.length} trackers (${all.map(([n]) => n).join(', ')}); choose one with --tracker NAME.`);
    }
    return all[0]!;
  }

  /** Writes lines to stdout. */
  print(text: string): void {
    process.stdout.write(`${text}\n`);
  }

  /** Writes a value as JSON to stdout. */
  printJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Writes a note to stderr (it never mixes with `--json` output). */
  note(text: string): void {
    process.stderr.write(`${text}\n`);
  }

  /**
   * Asks before a destructive change unless `yes`. Without a terminal to ask on it refuses
   * (exit 2) rather than guess, even when there is nothing to change (`ask: false`), so that a
   * cron job without `--yes` fails on its first run and not on the first day it has work. A
   * "no" ends the command with exit 1 and nothing changed.
   */
  async confirm(question: string, yes: boolean | undefined, options: { ask?: boolean } = {}): Promise<void> {
    if (yes) return;
    if (!process.stdin.isTTY) {
      throw usage(`\`${this.name}\` changes items and needs confirmation, but stdin is not a terminal; pass --yes to confirm.`);
    }
    if (options.ask === false) return;
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const answer = await rl.question(`${question} [y/N] `);
      if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('not confirmed; nothing was changed.', EXIT.failed);
    } finally {
      rl.close();
    }
  }

  /** A progress bar on stderr when it is a terminal. */
  progress(label: string, total: number): Progress {
    return new Progress(process.stderr, label, total);
  }
}

/** A command's action: returns its exit code (default 0) or throws. */
export type Action<O> = (ctx: Context<O>, args: string[]) => Promise<ExitCode | void>;

/** Wraps an action as a commander action handler that records the exit code. */
export type Act = <O>(action: Action<O>) => (...args: unknown[]) => Promise<void>;

/** A command of the `leasehold` program: it adds itself to `program`, wrapping its action with `act`. */
export type CliCommand = (program: Command, act: Act) => void;

/** Turns an error into a message on stderr and an exit code. */
export function report(error: unknown, command: string): ExitCode {
  const debug = process.env.LEASEHOLD_DEBUG ? `\n${printableLines(error instanceof Error ? (error.stack ?? '') : '')}` : '';
  // messages quote keys, statuses and store errors: anyone's text, made printable
  if (error instanceof CliError) {
    process.stderr.write(`leasehold: ${printableLines(error.message)}${debug}\n`);
    return error.exitCode;
  }
  const name = error instanceof Error ? error.name : '';
  const message = printableLines(error instanceof Error ? error.message : String(error));
  // the library's own errors for bad input (checked before anything is written); matched by
  // name because the config may load another copy of leasehold than this command line
  // (an operator verb applied to an item whose stored data no longer fits is no usage error:
  // the change was written, and the message says so)
  // (and an item read back that no longer fits the schema is no usage error either)
  const { applied, stored } = (error ?? {}) as { applied?: unknown; stored?: unknown };
  if ((name === 'ValidationError' && applied !== true && stored !== true) || name === 'ConfigError') {
    process.stderr.write(`${message}${debug}\n`);
    return EXIT.usage;
  }
  const cause = error instanceof Error && error.cause instanceof Error ? ` (cause: ${printableLines(error.cause.message)})` : '';
  // a change that was written, with a warning about the item, is no failure of the command
  const outcome = name === 'ValidationError' && applied === true ? 'applied, with a warning' : 'failed';
  process.stderr.write(`leasehold: \`${command}\` ${outcome}: ${message}${cause}${debug}\n`);
  return EXIT.failed;
}

/** The `act` of a session. */
export function actIn(session: Session): Act {
  return <O>(action: Action<O>) =>
    async (...raw: unknown[]) => {
      // commander calls an action with its arguments, then the options, then the command
      const command = raw[raw.length - 1] as Command;
      const args = raw.slice(0, -2) as string[];
      try {
        session.exitCode = (await action(new Context<O>(session, command), args)) ?? EXIT.ok;
      } catch (error) {
        session.exitCode = report(error, command.name());
      }
    };
}
