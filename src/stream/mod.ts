/**
 * L4 forwarding: TCP and UDP over upstream groups, and TCP↔WebSocket bridges
 * (ws2tcp, tcp2ws, tcp2wss), run from the `stream` config section.
 *
 * @module
 */
export { startStreamSection } from "./stream_section.ts";
export type {
  StartStreamSectionOptions,
  StreamListenerInfo,
  StreamReloadReport,
  StreamSection,
} from "./stream_section.ts";
export { listenerKey, planStreamReload } from "./stream_reload_plan.ts";
export type { StreamReloadPlan, StreamServerAction } from "./stream_reload_plan.ts";
export { TcpStreamServer } from "./tcp_stream_server.ts";
export type { TcpStreamServerOptions } from "./tcp_stream_server.ts";
export { UDP_PENDING_DATAGRAMS, UdpStreamServer } from "./udp_stream_server.ts";
export type { UdpStreamServerOptions } from "./udp_stream_server.ts";
export { WsToTcpServer } from "./ws_to_tcp_server.ts";
export type { WsToTcpServerOptions } from "./ws_to_tcp_server.ts";
export { openWebSocket, TcpToWsServer } from "./tcp_to_ws_server.ts";
export type { TcpToWsServerOptions } from "./tcp_to_ws_server.ts";
export {
  bridgeWebSocket,
  WS_CLOSE_WAIT_MS,
  WS_HIGH_WATER_BYTES,
  WS_MAX_QUEUED_BYTES,
  WS_READ_BUFFER_BYTES,
} from "./websocket_bridge.ts";
export type { WebSocketBridgeOptions, WebSocketBridgeResult } from "./websocket_bridge.ts";
export {
  completeStreamSection,
  readStreamSection,
  wsProxyStreamConfig,
} from "../config/stream_section.ts";
export type {
  StreamConfig,
  StreamProtocol,
  StreamServerConfig,
  WsProxyArgs,
} from "../config/stream_section.ts";
