/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number>;
/** The path of the system `redis-server`, or undefined when none is installed. */
export function redisServerBinary(): string | undefined;
/** The flags under which an acknowledged write survives a crash. */
export const DURABLE: readonly string[];
/** A started redis-server; `stop()` ends it and removes its dir. */
export interface RedisServer {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}
/** Starts `binary` on a free port in a temp dir, with the given persistence flags (default {@link DURABLE}). */
export function startRedisServer(binary: string, persistence?: readonly string[]): Promise<RedisServer>;
