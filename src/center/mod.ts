/**
 * The tunnel's two roles: the center server (accepts and authenticates
 * clients, serves their streams) and the center client (keeps a session to a
 * server, forwards its local proxy port through it).
 *
 * @module
 */
export { startCenterServer } from "./center_server.ts";
export type { CenterServer, CenterServerDeps, ProxyStreamHandler } from "./center_server.ts";
export { startCenterClient } from "./center_client.ts";
export type { CenterClient } from "./center_client.ts";
export { SessionRegistry } from "./session_registry.ts";
export type { ClientSession } from "./session_registry.ts";
export { Backoff, sleep } from "./backoff.ts";
export { AuthThrottle } from "./auth_throttle.ts";
export { CAPABILITIES, clientHandshake, HandshakeError, serverHandshake } from "./handshake.ts";
