/**
 * Dialling proxy targets: the injectable {@link Dialer} shape, the default TCP
 * dialer (non-blocking name resolution, every address tried in order, Nagle
 * off), {@link egressDialer} (the egress policy of `src/proxy/egress_policy.ts`
 * around a dialer), and {@link dialTarget}, which adds the connect timeout and turns any
 * failure into a {@link DialError} with a reason the protocols map to replies.
 *
 * @module
 */
import { lookup } from "node:dns/promises";
import type { ByteConn } from "../transport/conn.ts";
import { formatHostPort } from "../transport/conn.ts";
import { parseIp } from "../reverse/ip_rules.ts";
import {
  checkEgressAddress,
  checkEgressName,
  type EgressHostInfo,
  type EgressPolicy,
} from "./egress_policy.ts";
import { parseIpv4, parseIpv6 } from "./socks5_codec.ts";

/**
 * Opens a connection to `hostname:port`. Must reject (and close anything it
 * opened) once `signal` aborts.
 */
export type Dialer = (hostname: string, port: number, signal: AbortSignal) => Promise<ByteConn>;

/**
 * Why a dial failed; HTTP and SOCKS5 map these to 502/504 (403 for
 * `not_allowed`) and reply codes.
 */
export type DialFailure =
  | "refused"
  | "network_unreachable"
  | "host_unreachable"
  | "not_found"
  | "timeout"
  | "aborted"
  | "not_allowed"
  | "failed";

const FAILURE_TEXT: Record<DialFailure, string> = {
  refused: "connection refused",
  network_unreachable: "network unreachable",
  host_unreachable: "host unreachable",
  not_found: "name not resolved",
  timeout: "timed out",
  aborted: "aborted",
  not_allowed: "not allowed by the egress policy",
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

/** Resolves `hostname` to every address (getaddrinfo off-thread, /etc/hosts honoured). */
async function resolveAll(hostname: string, port: number): Promise<string[]> {
  let addresses: { address: string }[];
  try {
    addresses = await lookup(hostname, { all: true, verbatim: true });
  } catch (err) {
    throw new DialError(formatHostPort({ hostname, port }), "not_found", undefined, { cause: err });
  }
  if (addresses.length === 0) throw new DialError(formatHostPort({ hostname, port }), "not_found");
  return addresses.map((a) => a.address);
}

async function connectFirst(
  addresses: readonly string[],
  port: number,
  signal: AbortSignal,
  connect: Dialer,
): Promise<ByteConn> {
  let last: unknown;
  for (const address of addresses) {
    try {
      return await connect(address, port, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      last = err;
    }
  }
  throw last;
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
  return await connectFirst(await resolveAll(hostname, port), port, signal, connectOne);
}

/** A target refused by the egress policy, for the `egress_denied` event. */
export interface EgressDenial {
  /** `host:port` as the client asked for it. */
  target: string;
  /** The refused address a name resolved to; `undefined` when refused before DNS. */
  address: string | undefined;
  /** The rule or protection that refused it. */
  rule: string;
}

/** Options for {@link egressDialer}. */
export interface EgressDialerOptions {
  policy: EgressPolicy;
  /** This process's listeners and interface addresses, asked at each dial. */
  hostInfo: () => EgressHostInfo;
  /** Called once per refused dial (log `egress_denied` here). */
  onDenied: (denial: EgressDenial) => void;
  /** Dials an address that passed. @default dialTcpTarget */
  dial?: Dialer | undefined;
  /** Resolves a name to its addresses. @default getaddrinfo through node:dns */
  resolve?: ((hostname: string, port: number) => Promise<string[]>) | undefined;
}

/**
 * A {@link Dialer} that enforces an egress policy: the name is checked before
 * DNS, every resolved address after it, and only addresses that passed are
 * dialled (the exact address, so there is no second resolution an attacker's
 * DNS could answer differently). A refusal rejects with reason `not_allowed`.
 */
export function egressDialer(options: EgressDialerOptions): Dialer {
  const { policy } = options;
  const inner = options.dial ?? dialTcpTarget;
  const resolve = options.resolve ?? resolveAll;
  return async (hostname, port, signal) => {
    const target = formatHostPort({ hostname, port });
    const refuse = (rule: string, address: string | undefined): DialError => {
      options.onDenied({ target, address, rule });
      const detail = address === undefined || address === hostname
        ? `rule ${JSON.stringify(rule)}`
        : `${address}, rule ${JSON.stringify(rule)}`;
      return new DialError(target, "not_allowed", detail);
    };
    const literal = parseIp(hostname);
    if (literal !== undefined) {
      const d = checkEgressAddress(policy, options.hostInfo(), undefined, literal, port);
      if (!d.allowed) throw refuse(d.rule, hostname);
      return await inner(hostname, port, signal);
    }
    const early = checkEgressName(policy, hostname, port);
    if (early !== undefined && !early.allowed) throw refuse(early.rule, undefined);
    signal.throwIfAborted();
    const addresses = await resolve(hostname, port);
    signal.throwIfAborted();
    const info = options.hostInfo();
    const passed: string[] = [];
    let denied: { address: string; rule: string } | undefined;
    for (const address of addresses) {
      const d = checkEgressAddress(policy, info, hostname, address, port);
      if (d.allowed) passed.push(address);
      else denied ??= { address, rule: d.rule };
    }
    if (passed.length === 0) {
      if (denied === undefined) throw new DialError(target, "not_found");
      throw refuse(denied.rule, denied.address);
    }
    return await connectFirst(passed, port, signal, inner);
  };
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
