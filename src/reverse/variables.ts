/**
 * nginx-style variables (`$remote_addr`, `$uri`, `$http_user_agent`, …)
 * expanded in header values, static bodies, try_files candidates, limit_req
 * keys and the access log. Pure.
 *
 * @module
 */

/** Everything a variable can expand to, for one request. */
export interface RequestVariables {
  readonly remote_addr: string;
  readonly remote_port: string;
  /** Host without port, lower-case. */
  readonly host: string;
  /** Host as the client sent it (with port). */
  readonly hostname: string;
  readonly scheme: string;
  readonly request_method: string;
  /** Path and query as received. */
  readonly request_uri: string;
  /** Decoded, normalised path (changes on internal redirects). */
  uri: string;
  /** Query without `?`. */
  readonly args: string;
  readonly server_name: string;
  readonly server_port: string;
  /** `GET /x HTTP/1.1`-like request line. */
  readonly request: string;
  /** Request headers, for `$http_NAME`. */
  readonly headers: Headers;
  /** Late values for the access log (`status`, `bytes_sent`, `upstream_addr`, …). */
  readonly extra: Record<string, string>;
}

const VARIABLE_REGEXP = /\$(?:(\$)|\{([a-z0-9_]+)\}|([a-z0-9_]+))/gi;

/** The value of one variable; `undefined` for an unknown name. */
export function variableValue(vars: RequestVariables, name: string): string | undefined {
  const lower = name.toLowerCase();
  if (lower.startsWith("http_")) {
    return vars.headers.get(lower.slice(5).replaceAll("_", "-")) ?? "";
  }
  if (lower in vars.extra) return vars.extra[lower];
  switch (lower) {
    case "remote_addr":
    case "remote_port":
    case "host":
    case "hostname":
    case "scheme":
    case "request_method":
    case "request_uri":
    case "uri":
    case "args":
    case "server_name":
    case "server_port":
    case "request":
      return vars[lower];
    case "query_string":
      return vars.args;
    case "time_iso8601":
      return new Date().toISOString();
    default:
      return undefined;
  }
}

/**
 * Expands `$name` and `${name}` in `template`; `$$` is a `$`, unknown names
 * stay as written. Control characters in expanded values become spaces, so a
 * value can never split a header line or a log line.
 *
 * @example
 * ```ts
 * expandTemplate("$scheme://$host$uri", vars); // "https://a.example/x"
 * ```
 */
export function expandTemplate(template: string, vars: RequestVariables): string {
  if (!template.includes("$")) return template;
  return template.replace(
    VARIABLE_REGEXP,
    (whole, dollar: string | undefined, braced: string | undefined, bare: string | undefined) => {
      if (dollar !== undefined) return "$";
      const value = variableValue(vars, (braced ?? bare)!);
      // deno-lint-ignore no-control-regex
      return value === undefined ? whole : value.replace(/[\x00-\x1f\x7f]/g, " ");
    },
  );
}
