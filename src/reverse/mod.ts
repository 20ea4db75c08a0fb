/**
 * The nginx-like reverse proxy and web server (`http` section): a pure
 * handler core and the `Deno.serve` edge around it.
 *
 * @module
 */
export {
  createHttpCore,
  createHttpHandler,
  MAX_INTERNAL_REDIRECTS,
  parseHostHeader,
} from "./handler.ts";
export type { CompiledServer, HttpCore, HttpHandler, HttpHandlerDeps } from "./handler.ts";
export { FAST_BODY_BYTES, FRONT_MAX_HEAD_BYTES, serveFrontConnection } from "./http_front.ts";
export type { FrontOptions, FrontVisitor } from "./http_front.ts";
export { UpstreamPool } from "./upstream_pool.ts";
export type { FetchLike, HttpRequestInfo, RequestContext } from "./context.ts";
export { startHttpSection } from "./http_server.ts";
export type { HttpSection, HttpUpdateReport, StartHttpSectionOptions } from "./http_server.ts";
export {
  hostMatches,
  LocationRouter,
  normalizePath,
  normalizeSegments,
  selectServer,
} from "./router.ts";
export type { LocationMatch, MatchInput } from "./router.ts";
export { cidrContains, compileIpRules, ipAllowed, parseCidr, parseIp } from "./ip_rules.ts";
export type { Cidr, IpRules } from "./ip_rules.ts";
export { LimitReqZone } from "./limit_req.ts";
export type { LimitVerdict } from "./limit_req.ts";
export { escapeHtml, parseRange, serveFile } from "./file_server.ts";
export type { ByteRange, FileRequest } from "./file_server.ts";
export { parseProxyPass, proxyRequest, REPLAY_BUFFER_BYTES } from "./upstream_proxy.ts";
export type { ProxyDeps, ProxyTarget } from "./upstream_proxy.ts";
export { isWebSocketUpgrade, proxyWebSocket, relayWebSockets } from "./websocket.ts";
export type { WebSocketDeps } from "./websocket.ts";
export { expandTemplate, variableValue } from "./variables.ts";
export type { RequestVariables } from "./variables.ts";
export {
  completeHttpSection,
  fileServerSectionConfig,
  readHttpSection,
  reverseProxySectionConfig,
} from "../config/http_section.ts";
export type { HttpSectionConfig, HttpSectionInput } from "../config/http_section.ts";
