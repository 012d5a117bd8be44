import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import type { KeySchema, StageMap } from '../definition.js';
import type { TrackerOperations } from '../tracker.js';

/**
 * A tracker as the dashboard sees it: any statuses, key, data and stages. It reads and steers
 * items only, so any `Tracker` is one (it needs no more than its `TrackerOperations`).
 */
export type DashboardTracker = TrackerOperations<string, KeySchema, z.ZodType, StageMap<string>>;

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /**
   * The trackers to show, by name (letters, digits, `_`, `-` and `.`; the name appears in URLs).
   * The same shape as `trackers` in `leasehold.config.*`.
   */
  readonly trackers: Readonly<Record<string, DashboardTracker>>;
  /**
   * The path the dashboard is served under when the server does not strip it (plain
   * `node:http`): requests outside it are passed to `next` or answered 404. Leave it out when a
   * router mounts the handler (Express `app.use('/admin', handler)` strips the prefix itself).
   * @default '' (the root)
   */
  readonly basePath?: string;
  /**
   * No mutations at all: the retry, cancel and purge routes answer 405 and the page hides
   * their buttons.
   * @default false
   */
  readonly readOnly?: boolean;
  /**
   * The secret every mutation must carry, in the `x-leasehold-token` header or a `token` form
   * field (at least 16 characters). When absent (and not `readOnly`) a random one is made for
   * this handler: read it from `handler.token`.
   * @default a random 32-character token
   */
  readonly token?: string;
  /**
   * The `Host` headers this dashboard answers (others get 403), such as
   * `['dash.example.com', '127.0.0.1:4321']`: a name without a port matches it on any port.
   * Reads are open to whoever reaches the dashboard, so a handler that listens on a loopback
   * address without authentication in front of it should list its names: otherwise a web page
   * can read it through DNS rebinding. `serveDashboard` on a loopback address answers its
   * loopback names and these (a reverse proxy that passes its own `Host` on).
   * @default every host (`createDashboard`); the loopback names (`serveDashboard` on a loopback address)
   */
  readonly allowedHosts?: readonly string[];
  /**
   * How long one `stats()` result serves every page that polls, in milliseconds, so that many
   * open tabs cost one store query per tracker. A slow query stretches it to 4 times its own
   * duration; 0 turns the cache off.
   * @default 1000
   */
  readonly statsCacheMs?: number;
  /**
   * How often the dashboard samples `stats()` for the hour chart while it runs, in milliseconds.
   * @default 5000
   */
  readonly sampleIntervalMs?: number;
  /**
   * The time source of the hour chart, in epoch milliseconds (the screenshot script replays an
   * hour with it).
   * @internal
   */
  readonly now?: () => number;
}

/**
 * A Node request handler: `(req, res, next?)`. Use it with `node:http`, Express, Fastify (through
 * `@fastify/middie` or `@fastify/express`) or Koa (through `ctx.req`/`ctx.res`).
 */
export interface DashboardHandler {
  /** Answers one request; calls `next` (when given) for requests outside `basePath`. */
  (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void): void;
  /** The token mutations need (`undefined` when read-only). */
  readonly token: string | undefined;
  /** Stops the background sampling of the hour chart. Idempotent. */
  close(): void;
}

/** Options of {@link serveDashboard}: those of {@link createDashboard}, plus where to listen. */
export interface ServeDashboardOptions extends DashboardOptions {
  /**
   * The TCP port (0 picks a free one).
   * @default 4321
   */
  readonly port?: number;
  /**
   * The address to listen on. Anything other than a loopback address exposes every item's
   * data to whoever can reach it (the `token` guards changes only): a warning is printed.
   * @default '127.0.0.1'
   */
  readonly host?: string;
  /**
   * Where warnings go.
   * @default console.warn
   */
  readonly warn?: (message: string) => void;
}

/** A running dashboard server, from {@link serveDashboard}. */
export interface ServedDashboard {
  /** The address of the page, such as `http://127.0.0.1:4321/`. */
  readonly url: string;
  /** `url` with the token in its fragment (`#token=…`): opening it lets the page mutate. */
  readonly openUrl: string;
  /** The token mutations need (`undefined` when read-only). */
  readonly token: string | undefined;
  /** Stops the server and the sampling; resolves when every connection is closed. */
  close(): Promise<void>;
}
