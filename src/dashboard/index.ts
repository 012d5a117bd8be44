/**
 * A web dashboard to see and steer a tracker's items: the state diagram with live counts,
 * expired leases and backoff called out, the last hour's throughput, failed items with retry and
 * cancel, search by key, an item page, and purge of a finished status. Hand-written HTML, CSS
 * and JavaScript shipped inside the package: no CDN, works offline.
 *
 * @example
 * ```ts
 * import { serveDashboard } from 'leasehold/dashboard';
 * const { openUrl } = await serveDashboard({ trackers: { logs } });
 * console.log(openUrl);
 * ```
 * @packageDocumentation
 *
 * @module leasehold/dashboard
 */
export { createDashboard } from './handler.js';
export { serveDashboard } from './serve.js';
export type { DashboardHandler, DashboardOptions, DashboardTracker, ServeDashboardOptions, ServedDashboard } from './types.js';
