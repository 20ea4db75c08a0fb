/**
 * A TLS client on `node:tls`, for the two cases native Deno TLS cannot do:
 * skipping verification (`insecure`) and pinning a certificate fingerprint.
 * Slower than {@link dialTls} (see deno-perf.md §3), so only used for those.
 *
 * @module
 */
import tls from "node:tls";
import { Buffer } from "node:buffer";
import type { ByteConn, HostPort } from "./conn.ts";

/** Bytes buffered from the socket before it is paused. */
const READ_HIGH_WATER = 1024 * 1024;

/** What the peer presented, for a verification callback. */
export interface PeerCertificateInfo {
  /** SHA-256 fingerprint of the server's certificate, `AB:CD:…`. */
  fingerprint256: string;
  subject: string;
  /** Why normal verification failed, if it did (e.g. `UNABLE_TO_VERIFY_LEAF_SIGNATURE`). */
  authorizationError: string | undefined;
}

/** Options for {@link dialNodeTls}. */
export interface DialNodeTlsOptions {
  serverName: string;
  alpnProtocols: string[];
  /** Returns an error message to refuse the peer, or `undefined` to accept it. */
  verify: (peer: PeerCertificateInfo) => string | undefined;
  signal?: AbortSignal;
  /** Local address to connect from (e.g. another loopback address). @default the system's choice */
  localAddress?: string;
}

/** A `ByteConn` over a `node:tls` socket. */
class NodeTlsConn implements ByteConn {
  readonly remoteAddr: HostPort;
  readonly localAddr: HostPort;
  readonly #socket: tls.TLSSocket;
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;
  #closed = false;

  constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    this.remoteAddr = { hostname: socket.remoteAddress ?? "", port: socket.remotePort ?? 0 };
    this.localAddr = { hostname: socket.localAddress ?? "", port: socket.localPort ?? 0 };
    socket.on("data", (d: Buffer) => {
      this.#chunks.push(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      this.#buffered += d.byteLength;
      if (this.#buffered > READ_HIGH_WATER) socket.pause();
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (err: Error) => {
      this.#error = err;
      this.#notify();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  async read(p: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error) throw this.#error;
      if (this.#ended || this.#closed) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
    }
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const c = this.#chunks[0]!;
      const take = Math.min(c.length, p.length - n);
      p.set(c.subarray(0, take), n);
      n += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#buffered -= n;
    if (this.#buffered <= READ_HIGH_WATER / 2 && this.#socket.isPaused()) this.#socket.resume();
    return n;
  }

  write(p: Uint8Array): Promise<number> {
    if (this.#error) return Promise.reject(this.#error);
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("Cannot write: the connection is closed"));
    }
    return new Promise((resolve, reject) => {
      const ok = this.#socket.write(Buffer.from(p), (err) => {
        if (err) reject(err);
        else if (ok) resolve(p.length);
      });
      if (!ok) this.#socket.once("drain", () => resolve(p.length));
    });
  }

  closeWrite(): Promise<void> {
    return new Promise((resolve) => this.#socket.end(resolve));
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket.destroy();
    this.#notify();
  }
}

/**
 * A `ByteConn` over a `node:tls` socket whose handshake is done (a server's
 * accepted connection, see ../reverse/tls_front.ts).
 */
export function nodeTlsConn(socket: tls.TLSSocket): ByteConn {
  return new NodeTlsConn(socket);
}

/** Dials TLS with `node:tls`, Nagle off, then applies `verify` to the peer certificate. */
export function dialNodeTls(addr: HostPort, options: DialNodeTlsOptions): Promise<ByteConn> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: addr.hostname,
      port: addr.port,
      // SNI carries names only (RFC 6066); node refuses an IP here.
      ...(/^[\d.]+$|:/.test(options.serverName) ? {} : { servername: options.serverName }),
      ALPNProtocols: options.alpnProtocols,
      rejectUnauthorized: false,
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    });
    socket.setNoDelay(true);
    const onAbort = () => {
      socket.destroy();
      reject(options.signal?.reason ?? new Error("aborted"));
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    socket.once("error", (err) => {
      options.signal?.removeEventListener("abort", onAbort);
      reject(err);
    });
    socket.once("secureConnect", () => {
      options.signal?.removeEventListener("abort", onAbort);
      const cert = socket.getPeerCertificate(false);
      const refusal = options.verify({
        fingerprint256: cert.fingerprint256 ?? "",
        subject: JSON.stringify(cert.subject ?? {}),
        authorizationError: socket.authorizationError
          ? String(socket.authorizationError)
          : undefined,
      });
      if (refusal !== undefined) {
        socket.destroy();
        reject(new Deno.errors.InvalidData(refusal));
        return;
      }
      if (!options.alpnProtocols.includes(String(socket.alpnProtocol))) {
        socket.destroy();
        reject(
          new Deno.errors.InvalidData(
            `Cannot use TLS connection to ${addr.hostname}:${addr.port}: the server selected ALPN ${
              JSON.stringify(socket.alpnProtocol || null)
            }, expected ${options.alpnProtocols.join(" or ")}`,
          ),
        );
        return;
      }
      resolve(new NodeTlsConn(socket));
    });
  });
}
