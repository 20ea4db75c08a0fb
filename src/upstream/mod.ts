/**
 * Upstream groups: load balancing over named server sets with passive and
 * active health checks, shared by the L4 stream proxy and the reverse proxy.
 *
 * @module
 */
export { UpstreamGroup } from "./upstream_group.ts";
export type {
  UpstreamGroupOptions,
  UpstreamPeer,
  UpstreamPeerStatus,
  UpstreamProbe,
} from "./upstream_group.ts";
export { MAX_PROBE_STATUS_LINE_BYTES, probeUpstream } from "./health_probe.ts";
export type { ProbeTarget } from "./health_probe.ts";
export type {
  BalanceStrategy,
  HealthCheckConfig,
  UpstreamGroupConfig,
  UpstreamServerConfig,
} from "../config/upstream_section.ts";
