/**
 * The client's way to the server: TCP, then TLS verified against the system
 * roots or a CA file (native Deno TLS), or a pinned fingerprint / no check at
 * all (`node:tls`, the only TLS client here that lets us inspect the peer).
 *
 * @module
 */
import type { ClientConfig } from "../config/types.ts";
import type { Logger } from "../observability/log.ts";
import {
  type ByteConn,
  dialNodeTls,
  dialTcp,
  dialTls,
  parseHostPort,
  TUNNEL_ALPN,
} from "../transport/mod.ts";

function normalizeFingerprint(text: string): string {
  return text.replaceAll(":", "").toLowerCase();
}

/** Turns rustls' terse errors into what to change. */
function explainTlsError(err: unknown, config: ClientConfig): Error {
  const text = err instanceof Error ? err.message : String(err);
  if (/UnknownIssuer|invalid peer certificate|certificate/i.test(text)) {
    const fix = config.tls.ca === undefined
      ? "set client.tls.ca to the CA file the server printed at its start (or client.tls.pin_sha256)"
      : `client.tls.ca "${config.tls.ca}" is not the CA that signed the server's certificate`;
    return new Error(`Cannot verify the server's certificate (${text}): ${fix}`);
  }
  if (
    /corrupt message|InvalidContentType|wrong version|peer is incompatible|record overflow/i.test(
      text,
    )
  ) {
    return new Error(
      `Cannot start TLS with the server (${text}): the server does not speak TLS; ` +
        "if it runs with server.tls.enabled: false, set client.tls.enabled: false",
    );
  }
  return new Error(`Cannot start TLS with the server: ${text}`);
}

/** Dials the server as configured; resolves to a connection ready for the preamble. */
export async function dialServer(
  config: ClientConfig,
  options: { log: Logger; signal?: AbortSignal },
): Promise<ByteConn> {
  const addr = parseHostPort(config.server);
  const signalOpt = options.signal ? { signal: options.signal } : {};
  if (!config.tls.enabled) return await dialTcp(addr, signalOpt);
  const serverName = config.tls.server_name ?? addr.hostname;
  if (config.tls.insecure || config.tls.pin_sha256 !== undefined) {
    if (config.tls.insecure) {
      options.log.warn("tls_insecure", {
        server: config.server,
        warning: "client.tls.insecure is true: the server's certificate is NOT verified",
      });
    }
    const pin = config.tls.pin_sha256 === undefined
      ? undefined
      : normalizeFingerprint(config.tls.pin_sha256);
    return await dialNodeTls(addr, {
      serverName,
      alpnProtocols: [TUNNEL_ALPN],
      ...signalOpt,
      verify: (peer) => {
        if (pin === undefined || normalizeFingerprint(peer.fingerprint256) === pin) {
          return undefined;
        }
        return `Cannot verify the server's certificate: its SHA-256 fingerprint ${peer.fingerprint256} ` +
          "does not match client.tls.pin_sha256";
      },
    });
  }
  let caCerts: string[] | undefined;
  if (config.tls.ca !== undefined) {
    try {
      caCerts = [await Deno.readTextFile(config.tls.ca)];
    } catch (err) {
      throw new Error(`Cannot read client.tls.ca "${config.tls.ca}": ${(err as Error).message}`);
    }
  }
  try {
    return await dialTls(addr, { serverName, ...(caCerts ? { caCerts } : {}), ...signalOpt });
  } catch (err) {
    if (
      err instanceof Deno.errors.ConnectionRefused || err instanceof Deno.errors.ConnectionReset
    ) throw err;
    if (options.signal?.aborted) throw err;
    throw explainTlsError(err, config);
  }
}
