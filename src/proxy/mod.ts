/**
 * The forward proxy: HTTP (absolute-form), HTTPS (CONNECT) and SOCKS5
 * (CONNECT, UDP ASSOCIATE) on one port, the protocol detected from the first
 * bytes; plus the pure codecs it is built from.
 *
 * @module
 */
export { ForwardProxy, startForwardProxy } from "./forward_proxy.ts";
export type { ForwardProxyOptions, ForwardProxyStats } from "./forward_proxy.ts";
export { ProxyLatency } from "./proxy_latency.ts";
export { serveProxyConnection } from "./serve_proxy_connection.ts";
export type { DetectedProtocol, ProxyContext } from "./proxy_context.ts";
export { classifyDialError, DialError, dialTarget, dialTcpTarget, egressDialer } from "./dial.ts";
export type {
  Dialer,
  DialFailure,
  DialTargetOptions,
  EgressDenial,
  EgressDialerOptions,
} from "./dial.ts";
export {
  checkEgressAddress,
  checkEgressName,
  compileEgressPolicy,
  egressAllowsAll,
  parseEgressRule,
} from "./egress_policy.ts";
export type {
  EgressDecision,
  EgressHostInfo,
  EgressPolicy,
  EgressRule,
  EgressRules,
  OwnListener,
} from "./egress_policy.ts";
export { relay, RELAY_BUFFER_BYTES } from "./relay.ts";
export type { RelayOptions, RelayResult } from "./relay.ts";
