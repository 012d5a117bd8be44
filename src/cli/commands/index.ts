/**
 * The commands of `leasehold`, in the order `--help` lists them. A new command is one file in
 * this folder exporting a {@link CliCommand}, and one line here.
 * @module
 */
import type { CliCommand } from '../context.js';
import { cancel } from './cancel.js';
import { dashboard } from './dashboard.js';
import { list } from './list.js';
import { purge } from './purge.js';
import { reap } from './reap.js';
import { reschedule } from './reschedule.js';
import { retry } from './retry.js';
import { show } from './show.js';
import { stats } from './stats.js';

/** Every command, registered by `main.ts`. */
export const commands: readonly CliCommand[] = [stats, list, show, retry, cancel, reschedule, purge, reap, dashboard];
