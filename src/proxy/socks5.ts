/**
 * The SOCKS5 side of the forward proxy (RFC 1928, RFC 1929): method
 * negotiation, user/password auth, CONNECT (IPv4, IPv6, names), UDP
 * ASSOCIATE; BIND and unknown commands get reply 0x07.
 *
 * @module
 */
import type { ByteConn, HostPort } from "../transport/conn.ts";
import { formatHostPort, writeAll } from "../transport/conn.ts";
import { EVENTS } from "../observability/events.ts";
import type { BufferedReader } from "./_buffered_reader.ts";
import { closeQuietly } from "./_counted_conn.ts";
import { DialError, type DialFailure, dialTarget } from "./dial.ts";
import { checkCredentials } from "./proxy_auth.ts";
import type { ConnState } from "./proxy_context.ts";
import { relay } from "./relay.ts";
import {
  AddressTypeError,
  CMD_CONNECT,
  CMD_UDP_ASSOCIATE,
  encodeMethodSelection,
  encodeReply,
  encodeUserPassReply,
  METHOD_NO_ACCEPTABLE,
  METHOD_NO_AUTH,
  METHOD_USERPASS,
  parseGreeting,
  parseIpv4,
  parseIpv6,
  parseRequest,
  parseUserPass,
  REPLY,
  type ReplyCode,
  type SocksAddress,
  type SocksRequest,
} from "./socks5_codec.ts";
import { serveUdpAssociate } from "./socks5_udp.ts";

const DIAL_REPLY: Record<DialFailure, ReplyCode> = {
  refused: REPLY.connection_refused,
  network_unreachable: REPLY.network_unreachable,
  host_unreachable: REPLY.host_unreachable,
  not_found: REPLY.host_unreachable,
  timeout: REPLY.ttl_expired,
  aborted: REPLY.general_failure,
  not_allowed: REPLY.not_allowed,
  failed: REPLY.general_failure,
};

/** The SOCKS5 reply code for a failed dial. */
export function replyForDialFailure(reason: DialFailure): ReplyCode {
  return DIAL_REPLY[reason];
}

/** A handshake that ended early: the client closed or sent too much. */
class HandshakeEnd extends Error {}

async function readMessage<T extends { size: number }>(
  reader: BufferedReader,
  parse: (buf: Uint8Array) => T | null,
  what: string,
): Promise<T> {
  while (true) {
    const m = parse(reader.buffered());
    if (m !== null) {
      reader.consume(m.size);
      return m;
    }
    let n: number | null;
    try {
      n = await reader.fill();
    } catch (err) {
      if (err instanceof RangeError) {
        throw new SyntaxError(`Cannot parse SOCKS5 ${what}: it is too long`);
      }
      throw err;
    }
    if (n === null) {
      throw new HandshakeEnd(
        `Cannot read SOCKS5 ${what}: the connection closed in the middle of it`,
      );
    }
  }
}

/** Serves a connection whose first byte is 0x05. */
export async function serveSocks5(s: ConnState): Promise<void> {
  const { ctx, client, reader } = s;
  const config = ctx.config;
  s.protocol = "socks5";
  if (!config.protocols.includes("socks5")) {
    ctx.log.warn(EVENTS.protocol_disabled, {
      component: "proxy",
      conn: ctx.id,
      peer: s.peer,
      protocol: "socks5",
    });
    s.error = `protocol "socks5" is disabled on this proxy`;
    await tryWrite(client, encodeMethodSelection(METHOD_NO_ACCEPTABLE));
    return;
  }
  try {
    const greeting = await readMessage(reader, parseGreeting, "greeting");
    const needAuth = config.users.length > 0;
    const want = needAuth ? METHOD_USERPASS : METHOD_NO_AUTH;
    const method = greeting.methods.includes(want) ? want : METHOD_NO_ACCEPTABLE;
    if (method === METHOD_NO_ACCEPTABLE) {
      s.error = needAuth
        ? "Cannot authenticate: the client does not offer user/password (0x02)"
        : "Cannot negotiate: the client does not offer no-auth (0x00)";
      if (needAuth) authFailed(s, "method", undefined);
      await tryWrite(client, encodeMethodSelection(method));
      return;
    }
    await writeAll(client, encodeMethodSelection(method));
    if (method === METHOD_USERPASS) {
      const cred = await readMessage(reader, parseUserPass, "user/password");
      const ok = checkCredentials(config.users, cred.username, cred.password);
      if (!ok) {
        s.error = "Cannot authenticate: wrong user name or password";
        authFailed(s, "wrong", new TextDecoder().decode(cred.username));
        await tryWrite(client, encodeUserPassReply(false));
        return;
      }
      await writeAll(client, encodeUserPassReply(true));
    }
    let req: SocksRequest;
    try {
      req = await readMessage(reader, parseRequest, "request");
    } catch (err) {
      if (err instanceof AddressTypeError) {
        await tryWrite(client, encodeReply(REPLY.address_type_not_supported));
      } else if (err instanceof SyntaxError) {
        await tryWrite(client, encodeReply(REPLY.general_failure));
      }
      throw err;
    }
    s.handshake.cancel();
    s.target = formatHostPort(req.address);
    if (req.command === CMD_CONNECT) {
      await socksConnect(s, req.address);
    } else if (req.command === CMD_UDP_ASSOCIATE) {
      if (!config.udp.enabled) {
        s.error = "Cannot associate UDP: UDP is disabled on this proxy";
        await tryWrite(client, encodeReply(REPLY.not_allowed));
        return;
      }
      if (ctx.udpRefused !== undefined) {
        s.error = `Cannot associate UDP: ${ctx.udpRefused}`;
        ctx.log.warn(EVENTS.egress_denied, {
          component: "proxy",
          conn: ctx.id,
          peer: s.peer,
          target: s.target,
          rule: `udp associate: ${ctx.udpRefused}`,
        });
        await tryWrite(client, encodeReply(REPLY.not_allowed));
        return;
      }
      await serveUdpAssociate(s, req.address);
    } else {
      s.error = `Cannot serve SOCKS5 command 0x${
        req.command.toString(16).padStart(2, "0")
      }: not supported`;
      await tryWrite(client, encodeReply(REPLY.command_not_supported));
    }
  } catch (err) {
    if (err instanceof SyntaxError) {
      s.error = err.message;
      ctx.log.info(EVENTS.protocol_error, {
        component: "proxy",
        conn: ctx.id,
        peer: s.peer,
        protocol: "socks5",
        error: err.message,
      });
      return;
    }
    if (err instanceof HandshakeEnd) {
      s.error = err.message;
      return;
    }
    throw err;
  }
}

function authFailed(s: ConnState, reason: string, user: string | undefined): void {
  s.ctx.log.warn(EVENTS.auth_failed, {
    component: "proxy",
    conn: s.ctx.id,
    peer: s.peer,
    protocol: "socks5",
    reason,
    user,
  });
}

async function tryWrite(conn: ByteConn, bytes: Uint8Array): Promise<void> {
  try {
    await writeAll(conn, bytes);
  } catch {
    // the client is gone
  }
}

/** BND.ADDR for a reply: the target connection's local IP, or 0.0.0.0:0 when it has none. */
function bindAddress(conn: ByteConn): HostPort {
  try {
    const a = conn.localAddr;
    if (parseIpv4(a.hostname) !== null || parseIpv6(a.hostname) !== null) return a;
  } catch {
    // no address (e.g. a stream without one)
  }
  return { hostname: "0.0.0.0", port: 0 };
}

async function socksConnect(s: ConnState, address: SocksAddress): Promise<void> {
  const { ctx, client } = s;
  const limits = ctx.config.limits;
  let conn: ByteConn;
  const dialStarted = performance.now();
  try {
    conn = await dialTarget(s.dial, address.hostname, address.port, {
      timeoutMs: limits.connect_timeout_ms,
      signal: ctx.signal,
    });
    ctx.latency?.socks5.observe((performance.now() - dialStarted) / 1000);
  } catch (err) {
    if (!(err instanceof DialError)) throw err;
    s.error = err.message;
    await tryWrite(client, encodeReply(replyForDialFailure(err.reason)));
    return;
  }
  try {
    await writeAll(client, encodeReply(REPLY.succeeded, bindAddress(conn)));
    const early = s.reader.take();
    if (early.length > 0) await writeAll(conn, early);
  } catch (err) {
    closeQuietly(conn);
    throw err;
  }
  const r = await relay(client, conn, {
    idleTimeoutMs: limits.idle_timeout_ms,
    signal: ctx.signal,
  });
  if (r.error) s.error = r.error.message;
  else if (r.idleTimeout) s.error = `idle timeout after ${limits.idle_timeout_ms} ms`;
}
