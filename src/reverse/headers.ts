/**
 * Header handling of the reverse proxy, pure: hop-by-hop removal (RFC 9110
 * §7.6.1), `X-Forwarded-For/-Proto/-Host`, and request/response rules (set,
 * add, remove, set_if_absent) with variables, through the shared
 * `applyHeaderRules` of the mapping layer.
 *
 * @module
 */
import type { HeaderRuleConfig } from "../config/types.ts";
import { applyHeaderRules } from "../mapping/header_rules.ts";
import { expandTemplate, type RequestVariables } from "./variables.ts";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "http2-settings",
]);

/** A copy of `headers` without hop-by-hop fields and those named in `Connection`. */
export function stripHopByHop(headers: Headers): Headers {
  const named = new Set(
    (headers.get("connection") ?? "").split(",").map((t) => t.trim().toLowerCase()).filter(
      Boolean,
    ),
  );
  const out = new Headers();
  for (const [name, value] of headers) {
    if (HOP_BY_HOP.has(name) || named.has(name)) continue;
    out.append(name, value);
  }
  return out;
}

/**
 * Applies rules to `headers` in place. Values are expanded with the request's
 * variables first; `$` in the results is escaped so that the shared rule engine
 * never expands a client-supplied value a second time.
 */
export function applyRules(
  headers: Headers,
  rules: readonly HeaderRuleConfig[],
  vars: RequestVariables,
): void {
  if (rules.length === 0) return;
  const list: [string, string][] = [];
  for (const [name, value] of headers) list.push([name, value]);
  const result = applyRulesToList(list, rules, vars);
  for (const name of [...headers.keys()]) headers.delete(name);
  for (const [name, value] of result) headers.append(name, value);
}

/** {@link applyRules} on a header list (names keep their case); returns the new list. */
export function applyRulesToList(
  list: readonly [string, string][],
  rules: readonly HeaderRuleConfig[],
  vars: RequestVariables,
): [string, string][] {
  if (rules.length === 0) return list.slice();
  const expanded = rules.map((r) =>
    r.value === undefined
      ? r
      : { ...r, value: expandTemplate(r.value, vars).replaceAll("$", "$$$$") }
  );
  return applyHeaderRules(list, expanded, {
    remote_addr: vars.remote_addr,
    host: vars.host,
    scheme: vars.scheme,
  });
}

/** Options for {@link upstreamRequestHeaders}. */
export interface UpstreamHeaderOptions {
  /** Keep the client's Host (else `upstreamHost`). */
  preserveHost: boolean;
  /** Add X-Forwarded-For/-Proto/-Host. */
  xForwarded: boolean;
  /** `host[:port]` of the upstream. */
  upstreamHost: string;
  rules: readonly HeaderRuleConfig[];
}

/**
 * The headers to send upstream: hop-by-hop removed, Host preserved or
 * replaced, X-Forwarded-* added, then the request rules. Nothing else is
 * added or changed: `accept-encoding` is the client's, and the response body
 * passes through as the upstream encoded it (the upstream fetch of
 * src/reverse/upstream_fetch.ts neither adds headers nor decodes bodies).
 */
export function upstreamRequestHeaders(
  req: Request,
  vars: RequestVariables,
  options: UpstreamHeaderOptions,
): Headers {
  const headers = stripHopByHop(req.headers);
  headers.set(
    "host",
    options.preserveHost && vars.hostname !== "" ? vars.hostname : options.upstreamHost,
  );
  if (options.xForwarded) {
    const prior = req.headers.get("x-forwarded-for");
    headers.set("x-forwarded-for", prior ? `${prior}, ${vars.remote_addr}` : vars.remote_addr);
    headers.set("x-forwarded-proto", vars.scheme);
    if (vars.hostname !== "") headers.set("x-forwarded-host", vars.hostname);
  }
  applyRules(headers, options.rules, vars);
  return headers;
}
