/**
 * Serves the control API on its own listener (loopback by default).
 *
 * @module
 */
import { errorMessage, EVENTS, type Logger } from "../observability/mod.ts";
import { formatHostPort, type HostPort, parseHostPort } from "../transport/mod.ts";
import { type AdminDeps, createAdminHandler } from "./admin_handler.ts";

/** A running admin listener. */
export interface AdminServer extends AsyncDisposable {
  readonly addr: HostPort;
  close(): Promise<void>;
}

/** Binds `listen` and serves the admin API on it. */
export function startAdminServer(listen: string, deps: AdminDeps & { log: Logger }): AdminServer {
  const bind = parseHostPort(listen);
  const handler = createAdminHandler(deps);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname: bind.hostname, port: bind.port, onListen() {} }, handler);
  } catch (err) {
    throw new Error(`Cannot listen on "${listen}" (admin.listen): ${errorMessage(err)}`);
  }
  const addr = { hostname: server.addr.hostname, port: server.addr.port };
  deps.log.info(EVENTS.listening, { component: "admin", addr: formatHostPort(addr) });
  const close = async () => {
    await server.shutdown();
  };
  return { addr, close, [Symbol.asyncDispose]: close };
}
