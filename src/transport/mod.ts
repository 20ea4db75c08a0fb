/**
 * Byte connections: the shared interface and (later) TCP, TLS and pipe transports.
 *
 * @module
 */
export { formatHostPort, isLoopbackHost, parseHostPort, writeAll } from "./conn.ts";
export type { ByteConn, HostPort } from "./conn.ts";
