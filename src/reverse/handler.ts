/**
 * The reverse proxy core: `(Request, info) => Promise<Response>`, no sockets
 * of its own. A request goes through small stages: virtual server selection,
 * location matching (nginx priority), IP rules, limit_req, then the
 * location's handler (static response, file server with try_files, upstream
 * proxy or WebSocket proxy), response header rules, and the access log.
 *
 * @module
 */
import type {
  HttpSectionConfig,
  LocationConfig,
  VirtualServerConfig,
} from "../config/http_section.ts";
import { EVENTS } from "../observability/events.ts";
import { errorMessage, type Logger } from "../observability/log.ts";
import { UpstreamGroup } from "../upstream/mod.ts";
import { statusResponse } from "./_errors.ts";
import { withAccessLog } from "./access_log.ts";
import type { FetchLike, HttpRequestInfo, RequestContext } from "./context.ts";
import { FileCache } from "./file_cache.ts";
import { serveFile } from "./file_server.ts";
import { applyRules } from "./headers.ts";
import { compileIpRules, ipAllowed, type IpRules } from "./ip_rules.ts";
import { LimitReqZone } from "./limit_req.ts";
import { LocationRouter, normalizePath, normalizeSegments, selectServer } from "./router.ts";
import { staticResponse } from "./static_response.ts";
import { proxyRequest } from "./upstream_proxy.ts";
import { expandTemplate, type RequestVariables } from "./variables.ts";
import { isWebSocketUpgrade, proxyWebSocket, type WebSocketDeps } from "./websocket.ts";

/** Internal redirects (try_files) one request may take. */
export const MAX_INTERNAL_REDIRECTS = 10;

/** Dependencies of {@link createHttpHandler}; all optional. */
export interface HttpHandlerDeps extends WebSocketDeps {
  /** Outbound HTTP. @default globalThis.fetch */
  fetch?: FetchLike;
  /** Upstream groups by name; groups missing here are created (passive checks only). */
  upstreams?: ReadonlyMap<string, UpstreamGroup>;
  /** Access and error log. @default none */
  log?: Logger;
  /** Milliseconds clock. @default Date.now */
  now?: () => number;
  /** limit_req delays. @default a timer that the client's disconnect cancels */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Called with the seconds from a request's arrival to its response head. */
  observe?: (listen: string | undefined, seconds: number) => void;
}

/** The handler's signature. */
export type HttpHandler = (req: Request, info: HttpRequestInfo) => Promise<Response>;

/** One virtual server, compiled for matching. */
export interface CompiledServer {
  config: VirtualServerConfig;
  server_names: readonly string[];
  default_server: boolean;
  router: LocationRouter;
  /** Label for logs: the first name or the first address. */
  label: string;
}

function defaultSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Splits a Host header into a lower-case name (no port, no brackets) and validates it. */
export function parseHostHeader(value: string): string | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]*)(?::\d{1,5})?$/.exec(value);
  if (!m) return undefined;
  return m[1]!.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
}

/**
 * Builds the handler for an `http` section.
 *
 * @example
 * ```ts
 * const handle = createHttpHandler(config, { fetch: fakeFetch });
 * const res = await handle(new Request("http://a.example/x"), {
 *   remoteAddr: { hostname: "127.0.0.1", port: 5000 }, scheme: "http",
 * });
 * ```
 */
export function createHttpHandler(
  config: HttpSectionConfig,
  deps: HttpHandlerDeps = {},
): HttpHandler {
  return createHttpCore(config, deps).handle;
}

/**
 * The compiled section: the handler, plus the routing pieces it uses, for an
 * edge that routes requests itself (the raw HTTP/1.1 front).
 */
export interface HttpCore {
  readonly config: HttpSectionConfig;
  readonly handle: HttpHandler;
  /** Upstream groups by name. */
  readonly groups: ReadonlyMap<string, UpstreamGroup>;
  /** The virtual server for `host` among those on `listen` (all servers when unknown). */
  selectServer(listen: string | undefined, host: string): CompiledServer | undefined;
  /** Compiled allow/deny rules of a location. */
  ipRules(location: LocationConfig): IpRules;
}

/** Builds the handler for an `http` section and the routing state it shares. */
export function createHttpCore(
  config: HttpSectionConfig,
  deps: HttpHandlerDeps = {},
): HttpCore {
  const log = deps.log;
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? defaultSleep;
  const groups = new Map<string, UpstreamGroup>(deps.upstreams ?? []);
  for (const g of config.upstreams) {
    if (!groups.has(g.name)) groups.set(g.name, new UpstreamGroup(g, log ? { log } : {}));
  }
  const proxyDeps = {
    fetch: deps.fetch ?? ((input, init) => fetch(input, init)) as FetchLike,
    groups,
    now,
    log,
    ...(deps.connectWebSocket ? { connectWebSocket: deps.connectWebSocket } : {}),
    ...(deps.upgradeWebSocket ? { upgradeWebSocket: deps.upgradeWebSocket } : {}),
  };
  const files = new FileCache(now);
  const zones = new Map(config.limit_req_zones.map((z) => [z.name, new LimitReqZone(z)]));
  const ipRules = new Map<LocationConfig, IpRules>();
  const servers: CompiledServer[] = config.servers.map((s) => {
    for (const l of s.locations) ipRules.set(l, compileIpRules(l.allow, l.deny));
    return {
      config: s,
      server_names: s.server_names,
      default_server: s.default_server,
      router: new LocationRouter(s.locations),
      label: s.server_names[0] ?? s.listen[0] ?? s.listen_tls[0] ?? "-",
    };
  });
  const byListen = new Map<string, CompiledServer[]>();
  for (const s of servers) {
    for (const addr of [...s.config.listen, ...s.config.listen_tls]) {
      const list = byListen.get(addr) ?? [];
      list.push(s);
      byListen.set(addr, list);
    }
  }

  async function runLocation(
    ctx: RequestContext,
    server: CompiledServer,
    location: LocationConfig,
    first: boolean,
  ): Promise<Response> {
    if (!ipAllowed(ipRules.get(location)!, ctx.vars.remote_addr)) {
      return statusResponse(403, "Forbidden");
    }
    if (first && location.limit_req !== undefined) {
      const lr = location.limit_req;
      const zone = zones.get(lr.zone)!;
      const verdict = zone.check(expandTemplate(zone.key, ctx.vars), lr.burst, lr.nodelay, now());
      if (verdict.kind === "reject") {
        return statusResponse(lr.status, lr.status === 429 ? "Too Many Requests" : "Rejected");
      }
      if (verdict.kind === "delay") await sleep(verdict.ms, ctx.req.signal);
    }
    const declared = Number(ctx.req.headers.get("content-length") ?? 0);
    if (location.max_body_size > 0 && declared > location.max_body_size) {
      return statusResponse(413, "Content Too Large");
    }
    let res: Response;
    if (location.static_response !== undefined) {
      res = staticResponse(ctx.req, location.static_response, ctx.vars);
    } else if (location.file_server !== undefined) {
      res = location.try_files === undefined
        ? await serveFile(fileRequest(ctx, location), location.file_server, files)
        : await tryFiles(ctx, server, location);
    } else if (location.proxy_pass !== undefined) {
      res = location.websocket && isWebSocketUpgrade(ctx.req)
        ? await proxyWebSocket(ctx, location, proxyDeps)
        : await proxyRequest(ctx, location, proxyDeps);
    } else {
      res = statusResponse(500, "Internal Server Error");
    }
    if (location.response_headers.length === 0 || res.status === 101) return res;
    const headers = new Headers(res.headers);
    applyRules(headers, location.response_headers, ctx.vars);
    return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
  }

  function fileRequest(ctx: RequestContext, location: LocationConfig) {
    return {
      req: ctx.req,
      uri: ctx.vars.uri,
      search: ctx.url.search,
      prefix: location.pattern.kind === "exact" || location.pattern.kind.startsWith("prefix")
        ? location.pattern.value
        : "/",
    };
  }

  async function tryFiles(
    ctx: RequestContext,
    server: CompiledServer,
    location: LocationConfig,
  ): Promise<Response> {
    const tf = location.try_files!;
    for (const candidate of tf.candidates) {
      const path = normalizeSegments(expandTemplate(candidate, ctx.vars));
      if (path === undefined) continue;
      const res = await serveFile(
        { ...fileRequest(ctx, location), uri: path },
        location.file_server!,
        files,
      );
      const miss = res.status === 404 || (res.status === 301 && !path.endsWith("/"));
      if (!miss) return res;
      await res.body?.cancel();
    }
    const fb = tf.fallback;
    if (fb.kind === "status") return statusResponse(fb.status, "try_files");
    if (++ctx.redirects > MAX_INTERNAL_REDIRECTS) {
      log?.error(EVENTS.http_error, { uri: ctx.vars.request_uri, error: "internal redirect loop" });
      return statusResponse(500, "Internal Server Error");
    }
    if (fb.kind === "named") {
      return await runLocation(ctx, server, server.router.named(fb.name)!, false);
    }
    const expanded = expandTemplate(fb.uri, ctx.vars);
    const q = expanded.indexOf("?");
    const uri = normalizeSegments(q === -1 ? expanded : expanded.slice(0, q));
    if (uri === undefined) return statusResponse(500, "Internal Server Error");
    ctx.vars.uri = uri;
    const m = server.router.match(uri, matchInput(ctx));
    if (m === undefined) return statusResponse(404, "Not Found");
    return await runLocation(ctx, server, m.location, false);
  }

  function matchInput(ctx: RequestContext) {
    return {
      method: ctx.req.method,
      host: ctx.vars.host,
      scheme: ctx.info.scheme,
      clientIp: ctx.vars.remote_addr,
    };
  }

  async function handleHttp(req: Request, info: HttpRequestInfo): Promise<Response> {
    const start = now();
    const url = new URL(req.url);
    const hostHeader = req.headers.get("host") ?? url.host;
    const host = parseHostHeader(hostHeader);
    const candidates = (info.listen !== undefined ? byListen.get(info.listen) : undefined) ??
      servers;
    const server = selectServer(candidates, host || info.serverName || "");
    const uri = normalizePath(url.pathname);
    const vars: RequestVariables = {
      remote_addr: info.remoteAddr.hostname,
      remote_port: String(info.remoteAddr.port),
      host: host ?? "",
      hostname: host === undefined ? "" : hostHeader,
      scheme: info.scheme,
      request_method: req.method,
      request_uri: url.pathname + url.search,
      uri: uri ?? url.pathname,
      args: url.search.slice(1),
      server_name: server?.config.server_names[0] ?? "",
      server_port: url.port || (info.scheme === "https" ? "443" : "80"),
      request: `${req.method} ${url.pathname}${url.search} HTTP/1.1`,
      headers: req.headers,
      extra: {},
    };
    const ctx: RequestContext = { req, url, info, vars, start, upstream: [], redirects: 0 };
    let location = "-";
    let res: Response;
    try {
      if (host === undefined || uri === undefined) res = statusResponse(400, "Bad Request");
      else if (server === undefined) res = statusResponse(404, "Not Found");
      else {
        const m = server.router.match(uri, matchInput(ctx));
        if (m === undefined) res = statusResponse(404, "Not Found");
        else {
          location = m.location.path;
          res = await runLocation(ctx, server, m.location, true);
        }
      }
    } catch (err) {
      if (req.signal.aborted) res = statusResponse(499, "Client Closed Request");
      else {
        log?.error(EVENTS.http_error, { uri: vars.request_uri, error: errorMessage(err) });
        res = statusResponse(500, "Internal Server Error");
      }
    }
    deps.observe?.(info.listen, (now() - start) / 1000);
    return withAccessLog(
      ctx,
      res,
      { server: server?.label ?? "-", location },
      config.access_log,
      log,
      now,
    );
  }

  return {
    config,
    handle: handleHttp,
    groups,
    selectServer: (listen, host) =>
      selectServer((listen !== undefined ? byListen.get(listen) : undefined) ?? servers, host),
    ipRules: (location) => ipRules.get(location) ?? compileIpRules(location.allow, location.deny),
  };
}
