/**
 * The I/O edge of the `http` section: `Deno.serve` listeners (HTTP/1.1, and
 * HTTP/2 over TLS by ALPN) around the pure handler, upstream groups with
 * their active health checks, and one pooled keep-alive HTTP client.
 *
 * TLS with several certificates on one address: `Deno.serve` takes one
 * certificate and no SNI resolver (checked on Deno 2.9.6), so such an address
 * is a TCP listener that reads the ClientHello's server name and relays the
 * connection to an internal `Deno.serve` on 127.0.0.1 holding the matching
 * certificate (the default server's one for clients without SNI). The
 * handler still sees the visitor's address. An address with one certificate
 * is served by `Deno.serve` directly.
 *
 * @module
 */
import type { HttpSectionConfig, VirtualServerConfig } from "../config/http_section.ts";
import { readClientHello } from "../mapping/sni.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import { relay } from "../proxy/relay.ts";
import { formatHostPort, type HostPort, parseHostPort } from "../transport/conn.ts";
import { dialTcp, listenTcp, type TcpListener } from "../transport/tcp.ts";
import { UpstreamGroup } from "../upstream/mod.ts";
import type { FetchLike } from "./context.ts";
import { createHttpHandler, type HttpHandler } from "./handler.ts";
import { selectServer } from "./router.ts";

/** Time allowed for a TLS client to send its ClientHello on an SNI-routed address. */
export const CLIENT_HELLO_TIMEOUT_MS = 10_000;

/** Options for {@link startHttpSection}. */
export interface StartHttpSectionOptions {
  log: Logger;
  /** Aborting closes the section. */
  signal?: AbortSignal;
}

/** A running `http` section. */
export interface HttpSection extends AsyncDisposable {
  /** Every bound listener, with its real address. */
  readonly listeners: { addr: string; tls: boolean }[];
  /** Upstream groups by name (their `status()` is for the admin API). */
  readonly upstreams: ReadonlyMap<string, UpstreamGroup>;
  close(): Promise<void>;
}

interface Closer {
  close(): Promise<void> | void;
}

async function readTls(server: VirtualServerConfig, index: number) {
  const tls = server.tls;
  if (tls === undefined) {
    throw new Error(`Cannot listen with TLS: http.servers[${index}].tls is not set`);
  }
  try {
    const [cert, key] = await Promise.all([
      Deno.readTextFile(tls.cert),
      Deno.readTextFile(tls.key),
    ]);
    return { cert, key };
  } catch (err) {
    throw new Error(
      `Cannot read the certificate of http.servers[${index}] (${tls.cert}, ${tls.key}): ${
        errorMessage(err)
      }`,
    );
  }
}

function bindParts(addr: string): HostPort {
  const hp = parseHostPort(addr);
  return { hostname: hp.hostname || "127.0.0.1", port: hp.port };
}

/**
 * Starts every listener of an `http` section; logs `listening` with
 * `component: "http"`, the bound `addr` and `tls` for each. Rejects (closing
 * what it opened) when a listener cannot be bound or a certificate read.
 */
export async function startHttpSection(
  config: HttpSectionConfig,
  options: StartHttpSectionOptions,
): Promise<HttpSection> {
  const log = options.log.child({ component: "http" });
  const closers: Closer[] = [];
  const listeners: { addr: string; tls: boolean }[] = [];
  const tasks = new Set<Promise<unknown>>();
  const stop = new AbortController();
  const client = Deno.createHttpClient({ allowHost: true });
  closers.push({ close: () => client.close() });
  const upstreams = new Map<string, UpstreamGroup>();
  for (const g of config.upstreams) {
    const group = new UpstreamGroup(g, { log });
    upstreams.set(g.name, group);
    closers.push(group);
  }
  const fetchWithPool: FetchLike = (input, init) => fetch(input, { ...init, client });
  const handler: HttpHandler = createHttpHandler(config, { fetch: fetchWithPool, upstreams, log });
  /** SNI-routed connections: internal client port → visitor and server name. */
  const visitors = new Map<number, { addr: HostPort; serverName: string | undefined }>();

  const serve = (
    bind: HostPort,
    listen: string,
    tls: { cert: string; key: string } | undefined,
    internal: boolean,
  ): Deno.HttpServer<Deno.NetAddr> => {
    const scheme = tls === undefined && !internal ? "http" : "https";
    const server = Deno.serve({
      hostname: bind.hostname,
      port: bind.port,
      ...(tls ?? {}),
      signal: stop.signal,
      onListen: () => {},
      onError: (err) => {
        log.error(EVENTS.http_error, { error: errorMessage(err) });
        return new Response("500 Internal Server Error\n", { status: 500 });
      },
    }, (req, info) => {
      const visitor = internal ? visitors.get(info.remoteAddr.port) : undefined;
      return handler(req, {
        remoteAddr: visitor?.addr ??
          { hostname: info.remoteAddr.hostname, port: info.remoteAddr.port },
        scheme,
        listen,
        ...(visitor?.serverName ? { serverName: visitor.serverName } : {}),
      });
    });
    closers.push({ close: () => server.shutdown() });
    return server;
  };

  try {
    // Addresses and the servers on each.
    const plain = new Map<string, VirtualServerConfig[]>();
    const secure = new Map<string, { server: VirtualServerConfig; index: number }[]>();
    config.servers.forEach((s, index) => {
      for (const a of s.listen) plain.set(a, [...(plain.get(a) ?? []), s]);
      for (const a of s.listen_tls) secure.set(a, [...(secure.get(a) ?? []), { server: s, index }]);
    });
    for (const addr of plain.keys()) {
      const server = serve(bindParts(addr), addr, undefined, false);
      const bound = formatHostPort(server.addr);
      listeners.push({ addr: bound, tls: false });
      log.info(EVENTS.listening, { addr: bound, tls: false });
    }
    for (const [addr, entries] of secure) {
      const certs = new Map<
        string,
        { cert: string; key: string; servers: VirtualServerConfig[] }
      >();
      for (const { server, index } of entries) {
        const id = `${server.tls!.cert}\n${server.tls!.key}`;
        const known = certs.get(id);
        if (known) known.servers.push(server);
        else certs.set(id, { ...(await readTls(server, index)), servers: [server] });
      }
      if (certs.size === 1) {
        const only = [...certs.values()][0]!;
        const server = serve(bindParts(addr), addr, { cert: only.cert, key: only.key }, false);
        const bound = formatHostPort(server.addr);
        listeners.push({ addr: bound, tls: true });
        log.info(EVENTS.listening, { addr: bound, tls: true });
        continue;
      }
      // Several certificates: route by SNI to internal TLS servers.
      const internal = new Map<VirtualServerConfig, HostPort>();
      for (const c of certs.values()) {
        const s = serve({ hostname: "127.0.0.1", port: 0 }, addr, c, true);
        for (const v of c.servers) internal.set(v, { hostname: "127.0.0.1", port: s.addr.port });
      }
      const servers = entries.map((e) => e.server);
      let listener: TcpListener;
      try {
        listener = listenTcp(bindParts(addr));
      } catch (err) {
        throw new Error(`Cannot listen on "${addr}" (http TLS): ${errorMessage(err)}`);
      }
      closers.push(listener);
      const bound = formatHostPort(listener.addr);
      listeners.push({ addr: bound, tls: true });
      log.info(EVENTS.listening, { addr: bound, tls: true, sni_routed: true });
      const accept = async () => {
        for await (const conn of listener) {
          const task = (async () => {
            try {
              const hello = await readClientHello(conn, 16 * 1024, CLIENT_HELLO_TIMEOUT_MS);
              const chosen = selectServer(servers, hello.serverName ?? "");
              const target = chosen === undefined ? undefined : internal.get(chosen);
              if (target === undefined) {
                conn.close();
                return;
              }
              const upstream = await dialTcp(target);
              visitors.set(upstream.localAddr.port, {
                addr: { hostname: conn.remoteAddr.hostname, port: conn.remoteAddr.port },
                serverName: hello.serverName,
              });
              try {
                await upstream.write(hello.buffered);
                await relay(conn, upstream, { idleTimeoutMs: 3_600_000, signal: stop.signal });
              } finally {
                visitors.delete(upstream.localAddr.port);
              }
            } catch (err) {
              try {
                conn.close();
              } catch {
                // already closed
              }
              log.debug(EVENTS.protocol_error, {
                peer: formatHostPort(conn.remoteAddr),
                error: errorMessage(err),
              });
            }
          })();
          tasks.add(task);
          task.finally(() => tasks.delete(task));
        }
      };
      const loop = accept().catch(() => {});
      tasks.add(loop);
    }
  } catch (err) {
    stop.abort();
    for (const c of closers.reverse()) await Promise.resolve(c.close()).catch(() => {});
    throw err;
  }
  for (const g of upstreams.values()) g.start();

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      stop.abort();
      for (const c of [...closers].reverse()) {
        try {
          await c.close();
        } catch {
          // already closed
        }
      }
      await Promise.allSettled([...tasks]);
      for (const l of listeners) log.info(EVENTS.listener_closed, { addr: l.addr });
    })();
    return closing;
  };
  options.signal?.addEventListener("abort", () => void close(), { once: true });
  return {
    listeners,
    upstreams,
    close,
    [Symbol.asyncDispose]: close,
  };
}
