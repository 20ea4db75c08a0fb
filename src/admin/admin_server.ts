/**
 * Serves the control API on its own listener (loopback by default).
 *
 * @module
 */
import { errorMessage, EVENTS, type Logger } from "../observability/mod.ts";
import { formatHostPort, type HostPort, parseHostPort } from "../transport/mod.ts";
import { type AdminDeps, adminHostMatcher, createAdminHandler } from "./admin_handler.ts";

/** A running admin listener. */
export interface AdminServer extends AsyncDisposable {
  readonly addr: HostPort;
  close(): Promise<void>;
}

/**
 * Binds `listen` and serves the admin API on it, to requests whose Host names
 * it (see `adminHostMatcher` in `src/admin/admin_handler.ts`; `hosts` adds names).
 */
export function startAdminServer(
  listen: string,
  deps: AdminDeps & { log: Logger; hosts?: readonly string[] | undefined },
): AdminServer {
  const bind = parseHostPort(listen);
  let acceptHost: (host: string | null) => boolean = () => false;
  const handler = createAdminHandler({ ...deps, acceptHost: (host) => acceptHost(host) });
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname: bind.hostname, port: bind.port, onListen() {} }, handler);
  } catch (err) {
    throw new Error(`Cannot listen on "${listen}" (admin.listen): ${errorMessage(err)}`);
  }
  const addr = { hostname: server.addr.hostname, port: server.addr.port };
  acceptHost = adminHostMatcher(addr, bind.hostname, deps.hosts);
  deps.log.info(EVENTS.listening, { component: "admin", addr: formatHostPort(addr) });
  const close = async () => {
    await server.shutdown();
  };
  return { addr, close, [Symbol.asyncDispose]: close };
}
