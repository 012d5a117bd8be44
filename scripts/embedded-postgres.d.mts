/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number>;
/** Starts a throw-away PostgreSQL; `stop()` removes it. */
export function startEmbeddedPostgres(options?: { log?: (line: string) => void }): Promise<{
  url: string;
  port: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
}>;
