/**
 * Header rules of an HTTP mapping, pure: `set`, `add`, `remove` and
 * `set_if_absent` applied to a header list, with `$remote_addr`, `$host` and
 * `$scheme` expanded in values.
 *
 * @module
 */
import type { HttpHeader } from "../proxy/http_head.ts";

/** One header rule; `value` may contain `$remote_addr`, `$host`, `$scheme` (`$$` is a `$`). */
export interface HeaderRule {
  action: "set" | "add" | "remove" | "set_if_absent";
  name: string;
  value?: string;
}

/** The values the variables of a rule expand to. */
export interface HeaderVariables {
  /** The visitor's IP address. */
  remote_addr: string;
  /** The host the request was routed by: lower-case, without port. */
  host: string;
  /** `http` or `https`: how the visitor reached the server. */
  scheme: string;
}

/**
 * Headers no rule may touch (lower-case): they frame the message or describe
 * the hop, so changing them would desynchronise the connection. Rules naming
 * them are skipped.
 */
export const PROTECTED_HEADER_NAMES: ReadonlySet<string> = new Set([
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "proxy-connection",
]);

/** Longest value a rule produces, in characters; longer results are cut. */
export const MAX_RULE_VALUE_CHARS = 8192;

const VARIABLE_REGEXP = /\$(?:(\$)|(remote_addr|host|scheme)(?![A-Za-z0-9_]))/g;

/**
 * Expands `$remote_addr`, `$host` and `$scheme` in `template`; `$$` gives a
 * single `$`, unknown `$names` stay as written. Control characters in the
 * result become spaces (a rule can never split a header line).
 *
 * @example
 * ```ts
 * expandVariables("$scheme://$host/", { remote_addr: "1.2.3.4", host: "a.example", scheme: "https" });
 * // "https://a.example/"
 * ```
 */
export function expandVariables(template: string, vars: HeaderVariables): string {
  const out = template.replace(VARIABLE_REGEXP, (_m, dollar?: string, name?: string) => {
    if (dollar !== undefined) return "$";
    switch (name) {
      case "remote_addr":
        return vars.remote_addr;
      case "host":
        return vars.host;
      default:
        return vars.scheme;
    }
  });
  // deno-lint-ignore no-control-regex
  const clean = out.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, " ");
  return clean.length > MAX_RULE_VALUE_CHARS ? clean.slice(0, MAX_RULE_VALUE_CHARS) : clean;
}

function sameName(a: string, lower: string): boolean {
  return a.length === lower.length && a.toLowerCase() === lower;
}

/**
 * Applies `rules` in order to a copy of `headers` and returns it:
 * - `set` replaces every field of that name by one (at the first one's place, else at the end);
 * - `add` appends a field;
 * - `remove` drops every field of that name;
 * - `set_if_absent` appends a field only when none of that name exists.
 *
 * Names compare case-insensitively; a rule's name is written as configured.
 * Rules on {@link PROTECTED_HEADER_NAMES} are skipped. A missing value is "".
 *
 * @example
 * ```ts
 * applyHeaderRules([["X-A", "1"]], [{ action: "set", name: "x-a", value: "$host" }],
 *   { remote_addr: "1.2.3.4", host: "a.example", scheme: "http" });
 * // [["x-a", "a.example"]]
 * ```
 */
export function applyHeaderRules(
  headers: readonly HttpHeader[],
  rules: readonly HeaderRule[],
  vars: HeaderVariables,
): HttpHeader[] {
  let out: HttpHeader[] = headers.slice();
  for (const rule of rules) {
    const lower = rule.name.toLowerCase();
    if (PROTECTED_HEADER_NAMES.has(lower) || rule.name === "") continue;
    switch (rule.action) {
      case "remove":
        out = out.filter(([n]) => !sameName(n, lower));
        break;
      case "add":
        out.push([rule.name, expandVariables(rule.value ?? "", vars)]);
        break;
      case "set_if_absent":
        if (!out.some(([n]) => sameName(n, lower))) {
          out.push([rule.name, expandVariables(rule.value ?? "", vars)]);
        }
        break;
      case "set": {
        const field: HttpHeader = [rule.name, expandVariables(rule.value ?? "", vars)];
        const first = out.findIndex(([n]) => sameName(n, lower));
        if (first === -1) {
          out.push(field);
        } else {
          out = out.filter(([n], i) => i === first || !sameName(n, lower));
          out[first] = field;
        }
        break;
      }
    }
  }
  return out;
}
