/**
 * Byte connections: the shared interface and (later) TCP, TLS and pipe transports.
 *
 * @module
 */
export { closeOnce, formatHostPort, isLoopbackHost, parseHostPort, writeAll } from "./conn.ts";
export type { ByteConn, HostPort } from "./conn.ts";
export { createPipe, PipeConn } from "./pipe.ts";
export type { PipeOptions } from "./pipe.ts";
export { dialTcp, listenTcp, TcpListener } from "./tcp.ts";
export type { DialTcpOptions } from "./tcp.ts";
export { dialTls, listenTls, tlsHandshake, TlsListener, TUNNEL_ALPN } from "./tls.ts";
export type { DialTlsOptions, ListenTlsOptions } from "./tls.ts";
export { dialNodeTls } from "./node_tls.ts";
export type { DialNodeTlsOptions, PeerCertificateInfo } from "./node_tls.ts";
