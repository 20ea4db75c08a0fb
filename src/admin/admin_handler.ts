/**
 * The control API as a plain `(Request) => Promise<Response>` handler:
 * `GET /api/status`, `GET /metrics`, `GET /` (dashboard), `POST /api/reload`,
 * `POST /api/stop`. With a token, every path needs `Authorization: Bearer`.
 * Methods are checked (a GET never stops anything) and secrets never appear.
 *
 * It answers only its operator, not a web page the operator happens to visit:
 * - a Host that is not this listener gets 421 (DNS rebinding), see
 *   {@link adminHostMatcher};
 * - a POST needs `Content-Type: application/json` (415 otherwise), which a
 *   cross-site form cannot send and a cross-site fetch cannot send without
 *   a CORS preflight this API never grants;
 * - a POST with an `Origin` other than the API's own, or with
 *   `Sec-Fetch-Site` other than `same-origin`/`none`, gets 403.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { DASHBOARD_HTML } from "./dashboard.ts";
import { renderMetrics } from "./prometheus.ts";
import type { StatusSnapshot } from "./status.ts";

/** The result of `POST /api/reload`. */
export interface ReloadResult {
  ok: boolean;
  /** What happened, for people. */
  message: string;
  /** Validation problems, when the new config is invalid. */
  errors?: string[];
  /** What changed, section by section, when it was applied. */
  report?: unknown;
}

/** What the handler needs from the program. */
export interface AdminDeps {
  /** Bearer token; `undefined` = no authentication (loopback only by default). */
  token: string | undefined;
  /**
   * Whether a request's Host header names this API ({@link adminHostMatcher});
   * `undefined` = any Host (in-process use only).
   */
  acceptHost?: ((host: string | null) => boolean) | undefined;
  status(): StatusSnapshot;
  reload(): Promise<ReloadResult>;
  /** Starts a graceful stop; the response is sent first. */
  stop(): void;
}

const encoder = new TextEncoder();

function authorized(req: Request, token: string | undefined): boolean {
  if (token === undefined) return true;
  const header = req.headers.get("authorization") ?? "";
  const given = encoder.encode(header.startsWith("Bearer ") ? header.slice(7) : "");
  const want = encoder.encode(token);
  // Compare equal lengths in constant time; a length mismatch still does the work.
  const a = given.length === want.length ? given : want.map((b) => b ^ 0xff);
  return timingSafeEqual(a, want) && given.length === want.length;
}

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" },
  });
}

function methodNotAllowed(allow: string): Response {
  return new Response(`Method not allowed: use ${allow}\n`, { status: 405, headers: { allow } });
}

function formatHost(hostname: string, port: number | undefined): string {
  const h = hostname.includes(":") && !hostname.startsWith("[") ? `[${hostname}]` : hostname;
  return (port === undefined ? h : `${h}:${port}`).toLowerCase();
}

function splitHost(host: string): { name: string; port: number | undefined } {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(host.trim().toLowerCase());
  if (!m) return { name: host.toLowerCase(), port: undefined };
  const name = m[1]!.endsWith(".") ? m[1]!.slice(0, -1) : m[1]!;
  return { name, port: m[2] === undefined ? undefined : Number(m[2]) };
}

/**
 * Which Host header values name the control API bound at `bound`: the
 * address as bound and as configured (`listenHost`), `localhost`,
 * `127.0.0.1` and `[::1]`, each with the bound port; plus `extra`
 * (`admin.hosts`): `name:port` exactly, or `name` with any port or none
 * (for a reverse proxy in front that keeps the Host).
 */
export function adminHostMatcher(
  bound: { hostname: string; port: number },
  listenHost: string,
  extra: readonly string[] = [],
): (host: string | null) => boolean {
  const exact = new Set<string>();
  const anyPort = new Set<string>();
  for (const name of [bound.hostname, listenHost, "localhost", "127.0.0.1", "::1"]) {
    exact.add(formatHost(name, bound.port));
  }
  for (const e of extra) {
    const { name, port } = splitHost(e);
    if (port === undefined) anyPort.add(name);
    else exact.add(`${name}:${port}`);
  }
  return (host) => {
    if (host === null) return false;
    const { name, port } = splitHost(host);
    return anyPort.has(name) || (port !== undefined && exact.has(`${name}:${port}`)) ||
      (port === undefined && bound.port === 80 && exact.has(`${name}:80`));
  };
}

/** A POST a web page could have sent: 403 or 415, else `undefined`. */
function refusePost(req: Request): Response | undefined {
  const origin = req.headers.get("origin");
  const site = req.headers.get("sec-fetch-site");
  const own = `http://${(req.headers.get("host") ?? new URL(req.url).host).toLowerCase()}`;
  if (
    (origin !== null && origin.toLowerCase() !== own) ||
    (site !== null && site !== "same-origin" && site !== "none")
  ) {
    return new Response(
      `Forbidden: a cross-site request (Origin ${origin ?? "none"}, Sec-Fetch-Site ${
        site ?? "none"
      }); the control API takes POSTs only from itself or from non-browser clients\n`,
      { status: 403 },
    );
  }
  const type = (req.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json") {
    return new Response(
      `Unsupported Media Type: send Content-Type: application/json (got ${
        type === "" ? "none" : type
      })\n`,
      { status: 415, headers: { accept: "application/json" } },
    );
  }
  return undefined;
}

/** Builds the admin handler. */
export function createAdminHandler(deps: AdminDeps): (req: Request) => Promise<Response> {
  return async function adminHandler(req: Request): Promise<Response> {
    const host = req.headers.get("host");
    if (deps.acceptHost !== undefined && !deps.acceptHost(host)) {
      return new Response(
        `Misdirected Request: Host ${
          JSON.stringify(host ?? "")
        } is not this control API; use its address, or add the name to admin.hosts\n`,
        { status: 421 },
      );
    }
    if (!authorized(req, deps.token)) {
      return new Response("Unauthorized: send Authorization: Bearer <admin.token>\n", {
        status: 401,
        headers: { "www-authenticate": 'Bearer realm="wmproxy"' },
      });
    }
    const path = new URL(req.url).pathname;
    if (req.method === "POST") {
      const refused = refusePost(req);
      if (refused) {
        await req.body?.cancel();
        return refused;
      }
    }
    switch (path) {
      case "/":
        if (req.method !== "GET" && req.method !== "HEAD") return methodNotAllowed("GET");
        return new Response(DASHBOARD_HTML, {
          headers: {
            "content-type": "text/html; charset=utf-8",
            "content-security-policy":
              "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
          },
        });
      case "/api/status":
        if (req.method !== "GET") return methodNotAllowed("GET");
        return json(deps.status());
      case "/metrics":
        if (req.method !== "GET") return methodNotAllowed("GET");
        return new Response(renderMetrics(deps.status()), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      case "/api/reload": {
        if (req.method !== "POST") return methodNotAllowed("POST");
        const r = await deps.reload();
        return json(r, r.ok ? 200 : 422);
      }
      case "/api/stop":
        if (req.method !== "POST") return methodNotAllowed("POST");
        queueMicrotask(() => deps.stop());
        return json({ ok: true, message: "stopping gracefully" });
      default:
        return json({ error: `no such endpoint: ${path}` }, 404);
    }
  };
}
