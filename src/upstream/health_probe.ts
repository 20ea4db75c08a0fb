/**
 * The default active health probe: a TCP connect, or an HTTP/1.1 `GET` whose
 * status line must carry the expected status.
 *
 * @module
 */
import type { HealthCheckConfig } from "../config/upstream_section.ts";
import { dialTcpTarget } from "../proxy/dial.ts";
import type { ByteConn, HostPort } from "../transport/conn.ts";
import { formatHostPort, writeAll } from "../transport/conn.ts";

/** Largest status line the HTTP probe reads before giving up. */
export const MAX_PROBE_STATUS_LINE_BYTES = 8 * 1024;

/** A peer as a probe sees it. */
export interface ProbeTarget {
  readonly addr: HostPort;
}

/**
 * Probes one server; resolves when it is healthy, rejects with the reason
 * otherwise. Aborting `signal` (the timeout) closes the connection.
 */
export async function probeUpstream(
  peer: ProbeTarget,
  check: HealthCheckConfig,
  signal: AbortSignal,
): Promise<void> {
  const target = formatHostPort(peer.addr);
  const conn = await dialTcpTarget(peer.addr.hostname, peer.addr.port, signal);
  const onAbort = () => conn.close();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    if (check.type === "tcp") return;
    await httpProbe(conn, target, check);
  } catch (err) {
    if (signal.aborted) throw new Error(`Cannot probe "${target}": timed out`, { cause: err });
    throw err;
  } finally {
    signal.removeEventListener("abort", onAbort);
    try {
      conn.close();
    } catch {
      // closed by the abort
    }
  }
}

async function httpProbe(conn: ByteConn, target: string, check: HealthCheckConfig): Promise<void> {
  const host = target;
  await writeAll(
    conn,
    new TextEncoder().encode(
      `GET ${check.path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: wmproxy-health\r\n` +
        `Connection: close\r\n\r\n`,
    ),
  );
  const buf = new Uint8Array(MAX_PROBE_STATUS_LINE_BYTES);
  let len = 0;
  while (true) {
    const end = buf.subarray(0, len).indexOf(0x0a);
    if (end >= 0) {
      const line = new TextDecoder().decode(buf.subarray(0, end)).trim();
      const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(line);
      if (!m) {
        throw new SyntaxError(`Cannot probe "${target}": bad status line ${JSON.stringify(line)}`);
      }
      const status = Number(m[1]);
      if (status !== check.expect_status) {
        throw new Error(
          `Cannot probe "${target}": status ${status} (expected ${check.expect_status})`,
        );
      }
      return;
    }
    if (len === buf.length) {
      throw new RangeError(
        `Cannot probe "${target}": status line longer than ${MAX_PROBE_STATUS_LINE_BYTES} bytes`,
      );
    }
    const n = await conn.read(buf.subarray(len));
    if (n === null) {
      throw new Error(`Cannot probe "${target}": connection closed before a response`);
    }
    len += n;
  }
}
