/**
 * The client side of intranet penetration: declares the configured mappings
 * to the server after every (re)connect, and serves each stream the server
 * opens for a visitor by connecting to the mapping's `local_addr` (with an
 * optional PROXY protocol header), or, for UDP, by exchanging datagrams with it.
 *
 * @module
 */
import dgram from "node:dgram";
import type { ClientConfig, MappingConfig } from "../config/types.ts";
import { errorMessage, EVENTS, type Logger } from "../observability/mod.ts";
import type { Session, VirtualStream } from "../mux/mod.ts";
import {
  ERROR_CODES,
  errorCodeName,
  type MappingSpec,
  type RegisterResultMessage,
  type SessionControlMessage,
} from "../tunnel/mod.ts";
import { formatHostPort, parseHostPort, writeAll } from "../transport/mod.ts";
import { dialTarget, dialTcpTarget, relay } from "../proxy/mod.ts";
import { DatagramDeframer, frameDatagram } from "../mapping/datagram_framing.ts";
import { encodeProxyHeader } from "../mapping/proxy_protocol.ts";

const LOCAL_IDLE_MS = 3_600_000;

/** What the client sends for one configured mapping. */
export function mappingSpec(m: MappingConfig): MappingSpec {
  if (m.type === "tcp" || m.type === "udp") {
    return { name: m.name, kind: m.type, remote_port: m.remote_port };
  }
  return {
    name: m.name,
    kind: m.type,
    domains: [...m.domains],
    http: {
      request_headers: m.request_headers.map((r) => ({ ...r })),
      response_headers: m.response_headers.map((r) => ({ ...r })),
      ...(m.host_rewrite === undefined ? {} : { host_rewrite: m.host_rewrite }),
      x_forwarded: m.x_forwarded,
      basic_auth: m.basic_auth.map((u) => ({
        username: u.username,
        password: u.password.reveal(),
      })),
    },
  };
}

/** Waits for the server's next answer to a register or unregister on this session. */
export type NextAnswer = () => Promise<RegisterResultMessage | null>;

/**
 * Sends `mappings` in one `register` and logs each result
 * (`mapping_ready` / `mapping_failed`).
 */
export async function registerMappings(
  session: Session,
  mappings: readonly MappingConfig[],
  next: NextAnswer,
  log: Logger,
): Promise<void> {
  if (mappings.length === 0) return;
  const requestId = Math.floor(Math.random() * 0xffffffff);
  session.sendControl({
    type: "register",
    request_id: requestId,
    mappings: mappings.map(mappingSpec),
  });
  const answer = await next();
  if (answer === null) return; // session ended
  for (const r of answer.results) {
    if (r.ok) {
      log.info(EVENTS.mapping_ready, {
        component: "client",
        mapping: r.name,
        public_addr: r.public_addr,
      });
    } else {
      log.error(EVENTS.mapping_failed, {
        component: "client",
        mapping: r.name,
        code: errorCodeName(r.code),
        reason: r.message,
      });
    }
  }
}

/** Withdraws mappings from the server (a reload removed them) and logs `mapping_removed`. */
export async function unregisterMappings(
  session: Session,
  names: readonly string[],
  next: NextAnswer,
  log: Logger,
): Promise<void> {
  if (names.length === 0) return;
  session.sendControl({
    type: "unregister",
    request_id: Math.floor(Math.random() * 0xffffffff),
    names: [...names],
  });
  const answer = await next();
  for (const r of answer?.results ?? []) {
    log.info(EVENTS.mapping_removed, { component: "client", mapping: r.name });
  }
}

/** Serves a stream the server opened for a visitor of one of our mappings. */
export async function serveMappingStream(
  stream: VirtualStream,
  config: ClientConfig,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const info = stream.info;
  const mapping = info.kind === "mapping"
    ? config.mappings.find((m) => m.name === info.mapping)
    : undefined;
  if (mapping === undefined) {
    log.warn(EVENTS.mapping_error, {
      component: "client",
      mapping: info.kind === "mapping" ? info.mapping : undefined,
      error: "the server opened a stream for a mapping this client does not have",
    });
    stream.reset(ERROR_CODES.NOT_FOUND);
    return;
  }
  if (mapping.type === "udp") return await serveUdpStream(stream, mapping, config, log, signal);
  const target = parseHostPort(mapping.local_addr);
  const visitor = formatHostPort(stream.remoteAddr);
  const t0 = performance.now();
  let local;
  try {
    local = await dialTarget(
      dialTcpTarget,
      target.hostname,
      target.port,
      { timeoutMs: config.local_connect_timeout_ms, signal },
    );
  } catch (err) {
    log.warn(EVENTS.mapping_error, {
      component: "client",
      mapping: mapping.name,
      visitor,
      local_addr: mapping.local_addr,
      error: `Cannot reach the LAN service: ${errorMessage(err)}`,
    });
    stream.reset(ERROR_CODES.CONNECT_FAILED);
    return;
  }
  try {
    const header = encodeProxyHeader(mapping.proxy_protocol, stream.remoteAddr, target);
    if (header.length > 0) await writeAll(local, header);
  } catch (err) {
    local.close();
    stream.reset(ERROR_CODES.CONNECT_FAILED);
    log.warn(EVENTS.mapping_error, {
      component: "client",
      mapping: mapping.name,
      error: errorMessage(err),
    });
    return;
  }
  const r = await relay(stream, local, { idleTimeoutMs: LOCAL_IDLE_MS, signal });
  log.info(EVENTS.connection_closed, {
    component: "client",
    mapping: mapping.name,
    stream: stream.id,
    visitor,
    bytes_in: r.bytesUp,
    bytes_out: r.bytesDown,
    ms: Math.round(performance.now() - t0),
    ...(r.error ? { error: r.error.message } : {}),
  });
}

async function serveUdpStream(
  stream: VirtualStream,
  mapping: MappingConfig,
  config: ClientConfig,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const target = parseHostPort(mapping.local_addr);
  const socket = dgram.createSocket({ type: target.hostname.includes(":") ? "udp6" : "udp4" });
  let last = Date.now();
  let writing = Promise.resolve();
  let queued = 0;
  const done = new AbortController();
  const onAbort = () => done.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  const idle = setInterval(() => {
    if (Date.now() - last >= config.udp_idle_timeout_ms) done.abort();
  }, Math.max(50, Math.min(config.udp_idle_timeout_ms / 4, 5000)));
  socket.on("message", (msg) => {
    last = Date.now();
    if (queued + msg.byteLength > 1024 * 1024) return; // the tunnel is slow: drop, as UDP may
    queued += msg.byteLength;
    const framed = frameDatagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
    writing = writing.then(() => stream.write(framed)).then(() => {
      queued -= msg.byteLength;
    }, () => done.abort());
  });
  socket.on("error", (err) => {
    log.warn(EVENTS.mapping_error, {
      component: "client",
      mapping: mapping.name,
      error: err.message,
    });
  });
  let datagrams = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.connect(target.port, target.hostname, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    const deframer = new DatagramDeframer();
    const buf = new Uint8Array(65536 + 2);
    const reading = (async () => {
      for (let n = await stream.read(buf); n !== null; n = await stream.read(buf)) {
        last = Date.now();
        for (const dg of deframer.push(buf.subarray(0, n))) {
          datagrams++;
          socket.send(dg);
        }
      }
    })();
    await Promise.race([
      reading,
      new Promise((r) => done.signal.addEventListener("abort", r, { once: true })),
    ]);
  } catch (err) {
    log.warn(EVENTS.mapping_error, {
      component: "client",
      mapping: mapping.name,
      error: errorMessage(err),
    });
  } finally {
    clearInterval(idle);
    signal.removeEventListener("abort", onAbort);
    try {
      socket.close();
    } catch {
      // already closed
    }
    await stream.closeWrite().catch(() => {});
    stream.close();
    log.info(EVENTS.connection_closed, {
      component: "client",
      mapping: mapping.name,
      stream: stream.id,
      visitor: formatHostPort(stream.remoteAddr),
      datagrams,
    });
  }
}

/** Splits control messages: register answers go to whoever waits for them. */
export function isRegisterResult(m: SessionControlMessage): m is RegisterResultMessage {
  return m.type === "register_result";
}
