/**
 * The control API as a plain `(Request) => Promise<Response>` handler:
 * `GET /api/status`, `GET /metrics`, `GET /` (dashboard), `POST /api/reload`,
 * `POST /api/stop`. With a token, every path needs `Authorization: Bearer`.
 * Methods are checked (a GET never stops anything) and secrets never appear.
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

/** Builds the admin handler. */
export function createAdminHandler(deps: AdminDeps): (req: Request) => Promise<Response> {
  return async function adminHandler(req: Request): Promise<Response> {
    if (!authorized(req, deps.token)) {
      return new Response("Unauthorized: send Authorization: Bearer <admin.token>\n", {
        status: 401,
        headers: { "www-authenticate": 'Bearer realm="wmproxy"' },
      });
    }
    const path = new URL(req.url).pathname;
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
