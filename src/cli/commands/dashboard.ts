import type { CliCommand } from '../context.js';
import { isHostName } from '../../dashboard/guard.js';
import { usage } from '../errors.js';

interface DashboardOptions {
  readonly port: string;
  readonly host: string;
  readonly token?: string;
  readonly readOnly?: boolean;
  readonly allowedHost?: string;
}

/** `leasehold dashboard`: the web dashboard for the config's trackers, until Ctrl-C. */
export const dashboard: CliCommand = (program, act) => {
  program
    .command('dashboard')
    .summary('serve the web dashboard (127.0.0.1:4321 by default)')
    .description(
      'Serve the web dashboard for the trackers of the config (every one, or --tracker) until Ctrl-C. It binds 127.0.0.1 by default ' +
        'and answers only requests addressed to a loopback name (or to --allowed-host, such as a reverse proxy\'s name). ' +
        'On any other --host everyone who reaches the port can read every item: the token guards only retry, cancel and purge, so put your own authentication in front. ' +
        'Without --token (or LEASEHOLD_DASHBOARD_TOKEN) one is made up for this run: the printed address carries it.',
    )
    .option('--port <n>', 'TCP port (0 picks a free one)', '4321')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--token <secret>', 'token every change (retry, cancel, purge) must carry (default: LEASEHOLD_DASHBOARD_TOKEN, else a new one)')
    .option('--read-only', 'no retry, cancel or purge at all')
    .option('--allowed-host <names>', 'also answer requests addressed to these host names (comma-separated, each with or without a port), such as the name a reverse proxy passes on')
    .action(
      act<DashboardOptions>(async (ctx) => {
        // digits only: Number('') is 0 (a random port) and Number('0x10') is 16
        const port = /^\d{1,5}$/.test(ctx.options.port) ? Number(ctx.options.port) : Number.NaN;
        if (!Number.isInteger(port) || port < 0 || port > 65_535) throw usage(`--port must be a TCP port from 0 to 65535, got \`${ctx.options.port}\`.`);
        const trackers = Object.fromEntries(await ctx.trackers());
        // the package's own subpath, resolved through its exports map (a self-reference)
        const { serveDashboard } = await import('leasehold/dashboard');
        const tokenSource = ctx.options.token !== undefined ? '--token' : 'LEASEHOLD_DASHBOARD_TOKEN';
        const token = ctx.options.token ?? process.env.LEASEHOLD_DASHBOARD_TOKEN;
        // an empty one (`--token "$TOKEN"` with TOKEN unset) is a mistake, not "make one up"
        if (token === '' && !ctx.options.readOnly) throw usage(`${tokenSource} is empty; give a long random secret (such as \`openssl rand -hex 16\` prints), or leave it out for a token made up for this run.`);
        const served = await serveDashboard({
          trackers: trackers as never,
          port,
          host: ctx.options.host,
          ...(token ? { token } : {}),
          ...(ctx.options.readOnly ? { readOnly: true } : {}),
          ...(ctx.options.allowedHost !== undefined ? { allowedHosts: allowedHostsOf(ctx.options.allowedHost) } : {}),
          warn: (message) => process.stderr.write(`leasehold: ${message}\n`),
        }).catch((error: unknown) => {
          throw asFlagError(error, tokenSource);
        });
        ctx.print(`dashboard: ${served.openUrl}`);
        ctx.print('(Ctrl-C to stop)');
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await served.close();
      }),
    );
};

/** `--allowed-host a,b:8080`: the names, checked (a usage error names the option). */
function allowedHostsOf(text: string): string[] {
  const names = text.split(',').map((n) => n.trim()).filter((n) => n !== '');
  if (names.length === 0 || !names.every(isHostName)) {
    throw usage(`--allowed-host takes host names as a browser sends them in \`Host\`, comma-separated, each with or without a port (dash.example.com,127.0.0.1:4321), got \`${text}\`.`);
  }
  return names;
}

/**
 * A refusal of `serveDashboard` for what the command line passed, told as a usage error naming
 * the flag or the config's tracker (its own message names the API option). By name: the
 * dashboard module may come from another copy of leasehold.
 */
function asFlagError(error: unknown, tokenSource: string): unknown {
  const { name, option } = (error ?? {}) as { name?: unknown; option?: unknown };
  if (name !== 'ConfigError' || typeof option !== 'string') return error;
  if (option === 'dashboard.token') return usage(`${tokenSource} must be at least 16 characters without spaces (a long random secret, such as \`openssl rand -hex 16\` prints).`);
  if (option.startsWith('dashboard.trackers.')) {
    const tracker = option.slice('dashboard.trackers.'.length);
    return usage(
      `tracker \`${tracker}\` cannot be shown on the dashboard: its name appears in URLs, so it must be 1 to 64 letters, digits, \`_\`, \`-\` or \`.\`; ` +
        'rename it in the config, or pick another tracker with --tracker.',
    );
  }
  return error;
}
