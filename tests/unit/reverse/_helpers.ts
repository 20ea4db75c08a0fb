/**
 * Shared helpers for the reverse proxy tests: configs through the real
 * reader, request info, a recording fake fetch, and captured logs.
 */
import { ConfigReader } from "@/config/reader.ts";
import type { ConfigIssue } from "@/config/errors.ts";
import {
  completeHttpSection,
  type HttpSectionConfig,
  readHttpSection,
} from "@/config/http_section.ts";
import { Logger, MemorySink } from "@/observability/log.ts";
import type { FetchLike, HttpRequestInfo } from "@/reverse/mod.ts";

/** The fixture web root. */
export const WWW = new URL("../../testdata/www", import.meta.url).pathname;

/** Reads `doc` as the `http` section; returns the issues (empty when valid). */
export function readIssues(doc: unknown): ConfigIssue[] {
  const r = new ConfigReader(() => undefined);
  readHttpSection(r, doc);
  return r.issues;
}

/** Reads and completes `doc` as the `http` section; throws on any issue. */
export function httpConfig(doc: unknown): HttpSectionConfig {
  const r = new ConfigReader(() => undefined);
  const input = readHttpSection(r, doc);
  if (r.issues.length > 0 || input === undefined) {
    throw new Error(`config issues: ${JSON.stringify(r.issues)}`);
  }
  return completeHttpSection(input);
}

/** Request info of a plain HTTP client at `ip`. */
export function info(ip = "127.0.0.1", scheme: "http" | "https" = "http"): HttpRequestInfo {
  return { remoteAddr: { hostname: ip, port: 50000 }, scheme };
}

/** One call the fake fetch saw. */
export interface FetchCall {
  url: string;
  method: string;
  headers: Headers;
  body: string | null;
}

/**
 * A fake `fetch`: `respond(url, call)` returns a Response or throws (to act
 * like a failed connect or a reset). Every call is recorded.
 */
export function fakeFetch(
  respond: (url: URL, call: FetchCall, signal: AbortSignal) => Response | Promise<Response>,
): FetchLike & { calls: FetchCall[] } {
  const calls: FetchCall[] = [];
  const f = async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    const body = init?.body === undefined || init.body === null
      ? null
      : new TextDecoder().decode(await new Response(init.body).arrayBuffer());
    const call: FetchCall = {
      url: url.href,
      method: init?.method ?? "GET",
      headers: new Headers(init?.headers),
      body,
    };
    calls.push(call);
    init?.signal?.throwIfAborted();
    return await respond(url, call, init?.signal ?? new AbortController().signal);
  };
  return Object.assign(f, { calls });
}

/** An error shaped like Deno's fetch connect failure. */
export function connectError(): TypeError {
  return new TypeError("fetch failed", {
    cause: new Error(
      "client error (Connect): tcp connect error: Connection refused (os error 111)",
    ),
  });
}

/** An error shaped like an upstream closing before the response header. */
export function resetError(): TypeError {
  return new TypeError("fetch failed", {
    cause: new Error("client error (SendRequest): connection closed before message completed"),
  });
}

/** A JSON logger into memory; `events(name)` parses the lines of one event. */
export function memoryLog(): { log: Logger; events: (name: string) => Record<string, unknown>[] } {
  const sink = new MemorySink();
  const log = new Logger({ format: "json", sink, level: "debug" });
  return {
    log,
    events: (name) =>
      sink.lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) =>
        e.event === name
      ),
  };
}

/** A promise that rejects with the signal's reason when it aborts (a hung upstream). */
export function hang(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

/** A root with a secret next to it and symlinks pointing out. */
export async function traversalFixture(): Promise<{ base: string; root: string }> {
  const base = await Deno.makeTempDir({ prefix: "wmproxy-trav-" });
  const root = `${base}/root`;
  await Deno.mkdir(`${root}/sub`, { recursive: true });
  await Deno.writeTextFile(`${base}/secret.txt`, "TOP-SECRET\n");
  await Deno.writeTextFile(`${root}/index.html`, "public index\n");
  await Deno.writeTextFile(`${root}/sub/ok.txt`, "ok\n");
  await Deno.writeTextFile(`${root}/.env`, "TOP-SECRET env\n");
  await Deno.symlink(`${base}/secret.txt`, `${root}/link-out`);
  await Deno.symlink(base, `${root}/dir-out`);
  await Deno.symlink("../../secret.txt", `${root}/sub/rel-out`);
  await Deno.symlink(`${root}/.env`, `${root}/env-alias`);
  return { base, root };
}

/** Paths that must never reach a file outside the root (or a hidden one). */
export const HOSTILE_PATHS: readonly string[] = [
  "/../secret.txt",
  "/%2e%2e/secret.txt",
  "/%2E%2E/secret.txt",
  "/..%2fsecret.txt",
  "/..%2Fsecret.txt",
  "/%2e%2e%2fsecret.txt",
  "/..%5csecret.txt",
  "/..%5c..%5csecret.txt",
  "/%252e%252e/secret.txt",
  "/%252e%252e%252fsecret.txt",
  "/link-out",
  "/dir-out/secret.txt",
  "/dir-out/root/../secret.txt",
  "/dir-out/",
  "/sub/rel-out",
  "/sub/../../secret.txt",
  "/sub/%2e%2e/%2e%2e/secret.txt",
  "/sub/..%2f..%2fsecret.txt",
  "/%c0%ae%c0%ae/secret.txt",
  "/.%2e/secret.txt",
  "/%2e./secret.txt",
  "/..%00/secret.txt",
  "/secret.txt%00.html",
  "/..;/secret.txt",
  "/%2f..%2fsecret.txt",
  "/....//secret.txt",
  "/./../secret.txt",
  "/.env",
  "/env-alias",
  "/%2eenv",
];
