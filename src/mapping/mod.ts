/**
 * Mappings: how visitors on the tunnel server reach LAN services exposed by
 * tunnel clients (HTTP by Host, HTTPS by SNI).
 *
 * @module
 */
export { serveHttpVisitor } from "./http_vhost.ts";
export type { HttpMappingOptions, HttpRoute, HttpVhostContext, RouteResult } from "./http_vhost.ts";
export { applyHeaderRules, expandVariables, PROTECTED_HEADER_NAMES } from "./header_rules.ts";
export type { HeaderRule, HeaderVariables } from "./header_rules.ts";
export {
  MAX_CLIENT_HELLO_BYTES,
  MAX_CLIENT_HELLO_INPUT_BYTES,
  parseClientHello,
  readClientHello,
} from "./sni.ts";
export type { ClientHelloRead, ClientHelloResult } from "./sni.ts";
