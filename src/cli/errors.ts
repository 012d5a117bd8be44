/**
 * Exit codes and the one error class of the `leasehold` command line.
 * @module
 */

/** Exit codes of `leasehold`; `--help` and docs/operating.md list them. */
export const EXIT = {
  /** The command did what it was asked (a bulk command that matched nothing is also a success). */
  ok: 0,
  /** The operation failed: the store, the config module, or the operator said no at the prompt. */
  failed: 1,
  /** Usage error: an unknown command, option, tracker, stage or status; bad JSON, duration or date; no config found. */
  usage: 2,
  /** The item does not exist, or is not in a status the command acts on; nothing was changed. */
  notFound: 3,
} as const;

/** One of {@link EXIT}. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * An error the command line reports as one line on stderr, exiting with `exitCode`.
 * `loadConfig` throws it too, so that other tools can tell a bad config from a failing store.
 */
export class CliError extends Error {
  /** Always `CliError`. */
  override name = 'CliError';
  /** The process exit code this error stands for. */
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

/** A usage error (exit 2): say what was wrong and how to fix it. */
export const usage = (message: string): CliError => new CliError(message, EXIT.usage);
