/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number>;
/**
 * Starts a throw-away PostgreSQL; `stop()` removes it. Durability is off (fsync,
 * synchronous_commit, full_page_writes) unless `durable` is true.
 */
export function startEmbeddedPostgres(options?: { log?: (line: string) => void; durable?: boolean }): Promise<{
  url: string;
  port: number;
  /** The data directory (its `postmaster.pid` names the server process). */
  dataDir: string;
  /** Whether the server runs with PostgreSQL's default durability. */
  durable: boolean;
  stop(): Promise<void>;
  restart(): Promise<void>;
}>;
