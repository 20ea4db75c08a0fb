/**
 * The access log: one `http_access` event per response, written when its
 * body is finished (B29: never before the response exists), with status,
 * bytes, timings and upstream addresses, and the line in the configured format.
 *
 * @module
 */
import type { AccessLogConfig } from "../config/http_section.ts";
import { EVENTS } from "../observability/events.ts";
import type { Logger } from "../observability/log.ts";
import { watchBody } from "./_body.ts";
import type { RequestContext } from "./context.ts";
import { expandTemplate } from "./variables.ts";

/** Where the request was routed, for the log line. */
export interface AccessLogRoute {
  server: string;
  location: string;
}

/**
 * Returns `res` with its body watched; when it ends (or at once without a
 * body) writes the access log line.
 */
export function withAccessLog(
  ctx: RequestContext,
  res: Response,
  route: AccessLogRoute,
  config: AccessLogConfig,
  log: Logger | undefined,
  now: () => number,
): Response {
  if (!config.enabled || log === undefined || !log.enabled("info")) return res;
  const write = (bytes: number, error: unknown) =>
    logAccess(ctx, route, config, log, now, { status: res.status, bytes, error });
  if (res.body === null || res.status === 101) {
    write(0, undefined);
    return res;
  }
  const body = watchBody(res.body, { onEnd: write });
  return new Response(body, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}

/** What one finished response did, for {@link logAccess}. */
export interface AccessOutcome {
  status: number;
  /** Body bytes sent to the client. */
  bytes: number;
  /** Why the response ended early, if it did. */
  error?: unknown;
}

/** Writes the `http_access` event (and its formatted line) for one finished response. */
export function logAccess(
  ctx: Pick<RequestContext, "vars" | "start" | "upstream">,
  route: AccessLogRoute,
  config: AccessLogConfig,
  log: Logger,
  now: () => number,
  outcome: AccessOutcome,
): void {
  const { status, bytes, error } = outcome;
  const extra = ctx.vars.extra;
  extra.status = String(status);
  extra.bytes_sent = String(bytes);
  extra.body_bytes_sent = String(bytes);
  extra.request_time = ((now() - ctx.start) / 1000).toFixed(3);
  extra.upstream_addr = ctx.upstream.map((u) => u.addr).join(", ") || "-";
  extra.upstream_status = ctx.upstream.map((u) => u.status).join(", ") || "-";
  extra.upstream_response_time = ctx.upstream.map((u) => u.ms).join(", ") || "-";
  log.info(EVENTS.http_access, {
    server: route.server,
    location: route.location,
    remote_addr: ctx.vars.remote_addr,
    method: ctx.vars.request_method,
    uri: ctx.vars.request_uri,
    status,
    bytes,
    ms: now() - ctx.start,
    upstream_addr: extra.upstream_addr,
    ...(error === undefined ? {} : { error: String((error as Error)?.message ?? error) }),
    line: expandTemplate(config.format, ctx.vars),
  });
}
