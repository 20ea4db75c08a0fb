/**
 * Dialling proxy targets: the injectable {@link Dialer} shape, the default TCP
 * dialer (non-blocking name resolution, every address tried in order, Nagle
 * off), and {@link dialTarget}, which adds the connect timeout and turns any
 * failure into a {@link DialError} with a reason the protocols map to replies.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import type { ByteConn } from "../transport/conn.ts";
import { formatHostPort } from "../transport/conn.ts";
import { parseIpv4, parseIpv6 } from "./socks5_codec.ts";

/**
 * Opens a connection to `hostname:port`. Must reject (and close anything it
 * opened) once `signal` aborts.
 */
export type Dialer = (hostname: string, port: number, signal: AbortSignal) => Promise<ByteConn>;

/** Why a dial failed; HTTP and SOCKS5 map these to 502/504 and reply codes. */
export type DialFailure =
  | "refused"
  | "network_unreachable"
  | "host_unreachable"
  | "not_found"
  | "timeout"
  | "aborted"
  | "failed";

const FAILURE_TEXT: Record<DialFailure, string> = {
  refused: "connection refused",
  network_unreachable: "network unreachable",
  host_unreachable: "host unreachable",
  not_found: "name not resolved",
  timeout: "timed out",
  aborted: "aborted",
  failed: "failed",
};

/** A failed dial: `Cannot connect to "example.com:80": connection refused`. */
export class DialError extends Error {
  /** The classified reason. */
  readonly reason: DialFailure;
  /** `host:port` that was dialled. */
  readonly target: string;

  constructor(target: string, reason: DialFailure, detail?: string, options?: ErrorOptions) {
    super(
      `Cannot connect to "${target}": ${FAILURE_TEXT[reason]}${detail ? ` (${detail})` : ""}`,
      options,
    );
    this.name = "DialError";
    this.reason = reason;
    this.target = target;
  }
}

/** Classifies an error from `Deno.connect`, a resolver or an injected dialer. */
export function classifyDialError(err: unknown): DialFailure {
  if (err instanceof DialError) return err.reason;
  if (err instanceof Deno.errors.ConnectionRefused) return "refused";
  if (err instanceof Deno.errors.NetworkUnreachable) return "network_unreachable";
  if (err instanceof Deno.errors.TimedOut) return "timeout";
  if (err instanceof DOMException && err.name === "TimeoutError") return "timeout";
  const msg = err instanceof Error ? err.message.toLowerCase() : String(err).toLowerCase();
  if (msg.includes("refused")) return "refused";
  if (msg.includes("network is unreachable") || msg.includes("network unreachable")) {
    return "network_unreachable";
  }
  if (msg.includes("no route to host") || msg.includes("host unreachable")) {
    return "host_unreachable";
  }
  if (
    msg.includes("lookup") || msg.includes("enotfound") || msg.includes("not known") ||
    msg.includes("eai_")
  ) {
    return "not_found";
  }
  if (msg.includes("timed out") || msg.includes("timeout")) return "timeout";
  return "failed";
}

function isIpLiteral(hostname: string): boolean {
  return parseIpv4(hostname) !== null || parseIpv6(hostname) !== null;
}

async function connectOne(
  hostname: string,
  port: number,
  signal: AbortSignal,
): Promise<Deno.TcpConn> {
  signal.throwIfAborted();
  const conn = await Deno.connect({ hostname, port, transport: "tcp" });
  if (signal.aborted) {
    conn.close();
    signal.throwIfAborted();
  }
  conn.setNoDelay(true);
  return conn;
}

/**
 * The default dialer: TCP with `setNoDelay(true)`. A name is resolved without
 * blocking the event loop (`node:dns` runs getaddrinfo off-thread, honouring
 * /etc/hosts) and each address is tried in order until one connects.
 */
export async function dialTcpTarget(
  hostname: string,
  port: number,
  signal: AbortSignal,
): Promise<ByteConn> {
  if (isIpLiteral(hostname)) return await connectOne(hostname, port, signal);
  signal.throwIfAborted();
  let addresses: { address: string }[];
  try {
    addresses = await lookup(hostname, { all: true, verbatim: true });
  } catch (err) {
    throw new DialError(formatHostPort({ hostname, port }), "not_found", undefined, { cause: err });
  }
  if (addresses.length === 0) throw new DialError(formatHostPort({ hostname, port }), "not_found");
  let last: unknown;
  for (const { address } of addresses) {
    try {
      return await connectOne(address, port, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      last = err;
    }
  }
  throw last;
}

/** Options for {@link dialTarget}. */
export interface DialTargetOptions {
  /** Connect timeout in milliseconds. */
  timeoutMs: number;
  /** Aborting cancels the dial (reason `aborted`). */
  signal?: AbortSignal | undefined;
}

/**
 * Dials through `dial` with a timeout; rejects with a {@link DialError} only.
 * A connection that arrives after the timeout is closed.
 */
export async function dialTarget(
  dial: Dialer,
  hostname: string,
  port: number,
  options: DialTargetOptions,
): Promise<ByteConn> {
  const target = formatHostPort({ hostname, port });
  const { signal } = options;
  if (signal?.aborted) throw new DialError(target, "aborted");
  const ac = new AbortController();
  let timedOut = false;
  let rejectEarly: (err: unknown) => void = () => {};
  const early = new Promise<never>((_, reject) => rejectEarly = reject);
  early.catch(() => {});
  const onAbort = () => {
    ac.abort(new DialError(target, "aborted"));
    rejectEarly(new DialError(target, "aborted"));
  };
  signal?.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => {
    timedOut = true;
    const err = new DialError(target, "timeout", `after ${options.timeoutMs} ms`);
    ac.abort(err);
    rejectEarly(err);
  }, options.timeoutMs);
  const attempt = dial(hostname, port, ac.signal);
  try {
    return await Promise.race([attempt, early]);
  } catch (err) {
    // A dialer that ignores the signal may still deliver a connection later.
    attempt.then((conn) => conn.close(), () => {});
    if (err instanceof DialError) throw err;
    if (timedOut) throw new DialError(target, "timeout", `after ${options.timeoutMs} ms`);
    const reason = classifyDialError(err);
    const detail = reason === "failed" && err instanceof Error ? err.message : undefined;
    throw new DialError(target, reason, detail, { cause: err });
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}
