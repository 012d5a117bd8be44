/**
 * Finds and loads `leasehold.config.*`: the module that tells the command line (and, later, the
 * dashboard) which trackers exist. TypeScript configs are loaded through jiti, so that no build
 * step or loader flag is needed; JavaScript configs through Node's own `import()`.
 * @module
 */
import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { z } from 'zod';
import type { KeySchema, StageMap } from '../definition.js';
import type { Tracker } from '../tracker.js';
import { CliError, EXIT, usage } from './errors.js';

/** A tracker as the command line sees it: any statuses, key, data and stages. */
export type AnyTracker = Tracker<string, KeySchema, z.ZodType, StageMap<string>>;

/**
 * What `leasehold.config.*` exports, as its default export or as named exports `trackers` and
 * `close`. The default export may also be a function returning it (or a promise of it).
 *
 * @example
 * ```ts
 * // leasehold.config.ts
 * import { logs, pool } from './src/trackers';
 * export default { trackers: { logs }, close: () => pool.end() };
 * ```
 */
export interface LeaseholdConfig {
  /** The trackers, by the name `--tracker` selects them with. */
  readonly trackers: Readonly<Record<string, AnyTracker>>;
  /** Closes what the config opened (pools, clients), so that the process can exit. */
  close?(): Promise<void> | void;
}

/** A loaded config: its trackers, where it came from, and a `close` that is always there. */
export interface LoadedConfig {
  /** Absolute path of the config module. */
  readonly path: string;
  /** The trackers by name, in the order the config lists them. */
  readonly trackers: Readonly<Record<string, AnyTracker>>;
  /** Calls the config's `close` (once; later calls wait for the first). */
  close(): Promise<void>;
}

/** The file names looked for in the current directory, in this order. */
export const CONFIG_FILES = [
  'leasehold.config.ts',
  'leasehold.config.mts',
  'leasehold.config.cts',
  'leasehold.config.js',
  'leasehold.config.mjs',
  'leasehold.config.cjs',
] as const;

const TYPESCRIPT = new Set(['.ts', '.mts', '.cts']);

/** The config file: `path` when given (it must exist), else the first of {@link CONFIG_FILES} in `cwd`. */
export function findConfig(path?: string, cwd: string = process.cwd()): string {
  if (path !== undefined) {
    const file = resolve(cwd, path);
    if (!existsSync(file)) throw usage(`config file \`${path}\` not found (looked at ${file}); check the --config path.`);
    return file;
  }
  for (const name of CONFIG_FILES) {
    const file = resolve(cwd, name);
    if (existsSync(file)) return file;
  }
  throw usage(
    `no leasehold config in ${cwd}: create leasehold.config.ts (or .mts, .cts, .js, .mjs, .cjs) exporting \`{ trackers: { name: tracker } }\`, or pass --config PATH.`,
  );
}

async function importModule(file: string): Promise<Record<string, unknown>> {
  if (TYPESCRIPT.has(extname(file))) {
    // loaded only for TypeScript configs: jiti brings a transpiler, which plain JavaScript does not need
    const { createJiti } = await import('jiti');
    const jiti = createJiti(import.meta.url, { interopDefault: false });
    return (await jiti.import(file)) as Record<string, unknown>;
  }
  return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';

/** The config object among the module's exports: default (object or function), else named exports. */
async function pick(mod: Record<string, unknown>): Promise<unknown> {
  let candidate: unknown = mod.default;
  // a CommonJS module seen through an ESM loader may nest its exports one level deeper
  if (isObject(candidate) && !('trackers' in candidate) && isObject(candidate.default)) candidate = candidate.default;
  if (typeof candidate === 'function') candidate = await (candidate as () => unknown)();
  if (isObject(candidate) && 'trackers' in candidate) return candidate;
  if ('trackers' in mod) return { trackers: mod.trackers, close: mod.close };
  return candidate;
}

const looksLikeTracker = (v: unknown): v is AnyTracker =>
  isObject(v) && typeof v.stats === 'function' && typeof v.find === 'function' && isObject(v.definition);

/**
 * Loads the trackers from `leasehold.config.*` in `cwd` (or from `path`). Throws a
 * {@link CliError}: exit code 2 when the file is missing or exports no trackers, 1 when the
 * module itself throws while loading.
 *
 * @example
 * ```ts
 * const config = await loadConfig();
 * try { console.log(await config.trackers.logs!.stats()); } finally { await config.close(); }
 * ```
 */
export async function loadConfig(path?: string, options: { cwd?: string } = {}): Promise<LoadedConfig> {
  const file = findConfig(path, options.cwd);
  let mod: Record<string, unknown>;
  let picked: unknown;
  try {
    mod = await importModule(file);
    picked = await pick(mod);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new CliError(`loading ${file} failed: ${why}`, EXIT.failed, { cause: error });
  }
  const shape = 'export `{ trackers: { name: tracker } }` as the default export, or `export const trackers = { name: tracker }`';
  if (!isObject(picked) || !isObject(picked.trackers)) throw usage(`${file} exports no trackers: ${shape}.`);
  const trackers = picked.trackers;
  const names = Object.keys(trackers);
  if (names.length === 0) throw usage(`${file} exports an empty \`trackers\` object: ${shape}.`);
  for (const name of names) {
    if (!looksLikeTracker(trackers[name])) throw usage(`${file}: \`trackers.${name}\` is not a leasehold Tracker (expected \`new Tracker({ ... })\`).`);
  }
  const userClose = picked.close;
  if (userClose !== undefined && typeof userClose !== 'function') throw usage(`${file}: \`close\` must be a function returning a promise.`);
  let closing: Promise<void> | undefined;
  return {
    path: file,
    trackers: trackers as Record<string, AnyTracker>,
    close: () => (closing ??= Promise.resolve().then(() => (userClose as (() => unknown) | undefined)?.call(picked)).then(() => undefined)),
  };
}
