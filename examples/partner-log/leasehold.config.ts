/**
 * The config `npx leasehold` loads for this example: the partner-log tracker on the demo's
 * store. Run it from the repository root (where `npm run example` keeps `.data/`):
 *
 *   npx leasehold --config examples/partner-log/leasehold.config.ts stats
 *   LEASEHOLD_STORE=postgres://user:pass@localhost/fleet npx leasehold --config examples/partner-log/leasehold.config.ts stats
 */
import { open } from './tracker';

/** The store to open: `LEASEHOLD_STORE`, else the demo's default SQLite file. */
const spec = process.env.LEASEHOLD_STORE ?? 'sqlite:./.data/partner-log.sqlite';

// a function, because opening a store is asynchronous and this folder is CommonJS (no top-level await)
export default async function config() {
  const opened = await open(spec);
  return { trackers: { 'partner-logs': opened.tracker }, close: opened.close };
}
