/**
 * The per-request context the handler stages share.
 *
 * @module
 */
import type { HostPort } from "../transport/conn.ts";
import type { RequestVariables } from "./variables.ts";

/** What the listener knows about a request besides the request itself. */
export interface HttpRequestInfo {
  remoteAddr: HostPort;
  scheme: "http" | "https";
  /** TLS server name (SNI), when there was one. */
  serverName?: string;
  /** The listen address (as configured) the request came in on; `undefined` = any server. */
  listen?: string;
}

/** A `fetch` as the proxy uses it; injected so tests need no upstream. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** One request on its way through the handler. */
export interface RequestContext {
  readonly req: Request;
  readonly url: URL;
  readonly info: HttpRequestInfo;
  readonly vars: RequestVariables;
  /** When the request arrived (ms, the handler's clock). */
  readonly start: number;
  /** Upstream attempts, for the access log. */
  readonly upstream: { addr: string; status: string; ms: string }[];
  /** Internal redirects so far (try_files), to stop loops. */
  redirects: number;
}
