/**
 * WebSocket proxying. It runs after the same location rules, IP checks and
 * limits as any request (B23), and the client's upgrade completes only after
 * the upstream accepted its own handshake; otherwise the client gets 502/504
 * and no WebSocket. Messages are relayed one by one, close codes passed on.
 *
 * @module
 */
import type { LocationConfig } from "../config/http_section.ts";
import { formatHostPort } from "../transport/conn.ts";
import { EVENTS } from "../observability/events.ts";
import { statusResponse } from "./_errors.ts";
import type { RequestContext } from "./context.ts";
import { upstreamRequestHeaders } from "./headers.ts";
import { parseProxyPass, type ProxyDeps, upstreamPath } from "./upstream_proxy.ts";

/** Messages held for a side that is not open yet; more closes the sender. */
export const MAX_PENDING_MESSAGES = 256;

/** How WebSockets are opened; injected for tests. */
export interface WebSocketDeps {
  /** Opens the upstream WebSocket. @default `new WebSocket(url, options)` */
  connectWebSocket?: (url: string, options: { protocols: string[]; headers: Headers }) => WebSocket;
  /** Upgrades the client. @default Deno.upgradeWebSocket */
  upgradeWebSocket?: (
    req: Request,
    options: { protocol?: string },
  ) => { socket: WebSocket; response: Response };
}

/** Whether a request asks for a WebSocket upgrade. */
export function isWebSocketUpgrade(req: Request): boolean {
  return req.method === "GET" && (req.headers.get("upgrade") ?? "").toLowerCase() === "websocket";
}

function closeCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

function safeClose(ws: WebSocket, code: number, reason: string): void {
  if (ws.readyState === WebSocket.CLOSING || ws.readyState === WebSocket.CLOSED) return;
  try {
    ws.close(closeCode(code), reason.slice(0, 120));
  } catch {
    try {
      ws.close();
    } catch {
      // already closing
    }
  }
}

/** Waits for `ws` to open; rejects on error, close or timeout (then closes it). */
function opened(ws: WebSocket, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      safeClose(ws, 1000, "");
      reject(new DOMException("upstream WebSocket handshake timed out", "TimeoutError"));
    }, timeoutMs);
    const onOpen = () => {
      cleanup();
      resolve();
    };
    const onFail = (e: Event) => {
      cleanup();
      reject(new Error((e as ErrorEvent).message || "upstream refused the WebSocket"));
    };
    const cleanup = () => {
      clearTimeout(timer);
      ws.removeEventListener("open", onOpen);
      ws.removeEventListener("error", onFail);
      ws.removeEventListener("close", onFail);
    };
    ws.addEventListener("open", onOpen);
    ws.addEventListener("error", onFail);
    ws.addEventListener("close", onFail);
  });
}

/** Relays messages and closes between two open WebSockets. */
export function relayWebSockets(a: WebSocket, b: WebSocket): void {
  a.binaryType = "arraybuffer";
  b.binaryType = "arraybuffer";
  const pipe = (from: WebSocket, to: WebSocket) => {
    // Messages that arrive before `to` is open (the client side opens after
    // the 101 is sent) wait here, up to a bound.
    let pending: (string | ArrayBuffer)[] | undefined;
    to.addEventListener("open", () => {
      for (const m of pending ?? []) to.send(m);
      pending = undefined;
    }, { once: true });
    from.onmessage = (e) => {
      if (to.readyState === WebSocket.OPEN) to.send(e.data);
      else if (to.readyState === WebSocket.CONNECTING) {
        pending ??= [];
        if (pending.length >= MAX_PENDING_MESSAGES) {
          safeClose(from, 1008, "too many early messages");
        } else pending.push(e.data);
      }
    };
    from.onclose = (e) => safeClose(to, e.code, e.reason);
    from.onerror = () => safeClose(to, 1011, "peer error");
  };
  pipe(a, b);
  pipe(b, a);
}

/** Proxies a WebSocket upgrade to the location's upstream. */
export async function proxyWebSocket(
  ctx: RequestContext,
  location: LocationConfig,
  deps: ProxyDeps & WebSocketDeps,
): Promise<Response> {
  const target = parseProxyPass(location.proxy_pass!, new Set(deps.groups.keys()));
  const group = target.group === undefined ? undefined : deps.groups.get(target.group);
  const connect = deps.connectWebSocket ??
    ((url, o) => new WebSocket(url, { protocols: o.protocols, headers: o.headers }));
  const upgrade = deps.upgradeWebSocket ?? ((req, o) => Deno.upgradeWebSocket(req, o));
  const protocols = (ctx.req.headers.get("sec-websocket-protocol") ?? "").split(",").map((p) =>
    p.trim()
  ).filter(Boolean);
  const tries = group === undefined
    ? 1
    : location.next_upstream_tries > 0
    ? location.next_upstream_tries
    : group.peers.length;
  const tried = new Set<string>();
  let timedOut = false;
  for (let i = 0; i < tries; i++) {
    const peer = group?.pick(ctx.vars.remote_addr, tried);
    if (group !== undefined && peer === undefined) break;
    if (peer !== undefined) tried.add(peer.id);
    const hostPort = peer === undefined ? target.authority : formatHostPort(peer.addr);
    const record = { addr: hostPort, status: "-", ms: "-" };
    ctx.upstream.push(record);
    const headers = upstreamRequestHeaders(ctx.req, ctx.vars, {
      preserveHost: location.preserve_host,
      xForwarded: location.x_forwarded,
      upstreamHost: hostPort,
      rules: location.request_headers,
    });
    for (const name of [...headers.keys()]) {
      if (name.startsWith("sec-websocket-") || name === "accept-encoding") headers.delete(name);
    }
    const scheme = target.scheme === "https" ? "wss" : "ws";
    const url = `${scheme}://${hostPort}${upstreamPath(ctx, target, location)}`;
    const started = deps.now();
    let up: WebSocket;
    try {
      up = connect(url, { protocols, headers });
      await opened(up, location.timeouts.upstream_connect_ms + location.timeouts.upstream_read_ms);
    } catch (err) {
      record.ms = ((deps.now() - started) / 1000).toFixed(3);
      timedOut = err instanceof DOMException && err.name === "TimeoutError";
      deps.log?.warn(EVENTS.http_upstream_error, {
        upstream: hostPort,
        kind: timedOut ? "timeout" : "connect",
        error: (err as Error).message,
        uri: ctx.vars.request_uri,
        retry: i + 1 < tries,
      });
      if (peer !== undefined) group!.reportFailure(peer, `websocket: ${(err as Error).message}`);
      continue;
    }
    record.status = "101";
    record.ms = ((deps.now() - started) / 1000).toFixed(3);
    if (peer !== undefined) {
      group!.reportSuccess(peer);
      group!.acquire(peer);
      up.addEventListener("close", () => group!.release(peer), { once: true });
    }
    let upgraded: { socket: WebSocket; response: Response };
    try {
      upgraded = upgrade(ctx.req, up.protocol === "" ? {} : { protocol: up.protocol });
    } catch (err) {
      safeClose(up, 1011, "client upgrade failed");
      return statusResponse(400, `Bad Request: ${(err as Error).message}`);
    }
    relayWebSockets(upgraded.socket, up);
    return upgraded.response;
  }
  return timedOut ? statusResponse(504, "Gateway Timeout") : statusResponse(502, "Bad Gateway");
}
