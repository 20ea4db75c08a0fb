/**
 * The control API: status, metrics, dashboard, reload and stop.
 *
 * @module
 */
export { adminHostMatcher, createAdminHandler } from "./admin_handler.ts";
export type { AdminDeps, ReloadResult } from "./admin_handler.ts";
export { startAdminServer } from "./admin_server.ts";
export type { AdminServer } from "./admin_server.ts";
export { renderMetrics } from "./prometheus.ts";
export type { HistogramSample, SessionStatus, StatusSnapshot } from "./status.ts";
