/**
 * The tunnel server ("center server"): accepts clients over TLS (or plain TCP
 * when configured), authenticates them by token, keeps a registry of live
 * sessions, and hands each proxy stream to a handler (the forward proxy, or
 * the parent tunnel on a relay). Slow or silent clients never hold up the
 * accept loop: each connection's handshake runs on its own with a deadline.
 *
 * @module
 */
import type { ServerConfig } from "../config/types.ts";
import { errorMessage, EVENTS, type Logger } from "../observability/mod.ts";
import { Session, type VirtualStream } from "../mux/mod.ts";
import { ERROR_CODES, exchangePreamble } from "../tunnel/mod.ts";
import {
  type ByteConn,
  closeOnce,
  formatHostPort,
  type HostPort,
  listenTcp,
  listenTls,
  parseHostPort,
  tlsHandshake,
} from "../transport/mod.ts";
import {
  certificateFingerprint,
  certificateNames,
  loadServerIdentity,
  type ServerIdentity,
} from "../tls/mod.ts";
import { AuthThrottle } from "./auth_throttle.ts";
import { addressKey, PreauthLimits, type PreauthSlot } from "./preauth_limits.ts";
import { RefusalLog } from "./refusal_log.ts";
import { HandshakeError, serverHandshake } from "./handshake.ts";
import { type ClientSession, SessionRegistry } from "./session_registry.ts";
import { MappingService } from "./mapping_service.ts";

/** Serves one proxy stream of an authenticated client; must not throw. */
export type ProxyStreamHandler = (stream: VirtualStream, client: ClientSession) => Promise<void>;

/** Dependencies of {@link startCenterServer}. */
export interface CenterServerDeps {
  log: Logger;
  onProxyStream: ProxyStreamHandler;
}

/** A running tunnel server. */
export interface CenterServer extends AsyncDisposable {
  /** The bound tunnel address. */
  readonly addr: HostPort;
  /** The TLS identity, or `undefined` with TLS off. */
  readonly identity: ServerIdentity | undefined;
  readonly registry: SessionRegistry;
  /** Mapping registrations and the public HTTP/HTTPS/TCP/UDP listeners. */
  readonly mappings: MappingService;
  /**
   * Applies token and limit changes in place (reload): sessions whose token was
   * removed or changed are closed, the others get their token's new policy.
   * Listener, TLS and mapping-listener changes need a restart instead.
   */
  update(next: ServerConfig): void;
  /**
   * Graceful stop: no new clients, GO_AWAY to every session, open streams may
   * finish for up to `shutdown_timeout`, then everything is closed.
   */
  close(): Promise<void>;
}

function describeTlsFailure(err: unknown): string {
  const text = errorMessage(err);
  if (/corrupt message|InvalidContentType|peer is incompatible|wrong version/i.test(text)) {
    return `${text} (a client with TLS off? set its client.tls.enabled: true)`;
  }
  if (/UnknownIssuer|BadCertificate|certificate/i.test(text)) {
    return `${text} (the client does not trust this server's certificate: give it the CA file logged at start)`;
  }
  return text;
}

/** Binds the tunnel listener and starts accepting clients. */
export async function startCenterServer(
  config: ServerConfig,
  deps: CenterServerDeps,
): Promise<CenterServer> {
  const log = deps.log;
  const bind = parseHostPort(config.listen);
  let identity: ServerIdentity | undefined;
  if (config.tls.enabled) {
    identity = await loadServerIdentity({
      certFile: config.tls.cert,
      keyFile: config.tls.key,
      stateDir: config.state_dir,
      names: config.tls.names,
    });
  }
  let listener: { addr: HostPort; accept(): Promise<ByteConn>; close(): void };
  try {
    listener = identity
      ? listenTls({ ...bind, cert: identity.cert, key: identity.key })
      : listenTcp(bind);
  } catch (err) {
    throw new Error(`Cannot listen on "${config.listen}": ${errorMessage(err)}`);
  }
  const addr = listener.addr;
  const mappings = new MappingService(config, { log });
  try {
    await mappings.start();
  } catch (err) {
    listener.close();
    await mappings.close();
    throw err;
  }
  const registry = new SessionRegistry();
  /** Tokens and limits in force; a reload replaces them. */
  let live = config;
  const throttle = new AuthThrottle({
    // Delays stay well inside the handshake deadline, so that a client with the
    // right token from a throttled address still gets its auth_ok in time.
    maxDelayMs: Math.min(10_000, Math.floor(config.handshake_timeout_ms / 2)),
  });
  const preauth = new PreauthLimits({
    maxTotal: config.max_handshakes,
    maxPerAddress: config.max_handshakes_per_ip,
  });
  const refusals = new RefusalLog({
    emit: (line) =>
      log.warn(EVENTS.connection_rejected, {
        component: "tunnel",
        peer: line.peer,
        ip: line.peer.slice(0, line.peer.lastIndexOf(":")).replace(/^\[|\]$/g, ""),
        reason: line.reason,
        ...(line.suppressed > 0 ? { suppressed: line.suppressed } : {}),
      }),
  });
  const refusalFlush = setInterval(() => refusals.flush(), 1000);
  Deno.unrefTimer(refusalFlush);
  const pending = new Set<ByteConn>();
  const tasks = new Set<Promise<void>>();
  let stopping = false;
  let sessionCounter = 0;

  log.info(EVENTS.listening, {
    component: "tunnel",
    addr: formatHostPort(addr),
    tls: config.tls.enabled,
  });
  if (identity) {
    const trust = identity.caFile
      ? { ca_file: identity.caFile, client_settings: `client.tls.ca: "${identity.caFile}"` }
      : { client_settings: "client.tls.ca: the CA that signed server.tls.cert" };
    log.info(EVENTS.tls_identity, {
      component: "tunnel",
      created: identity.created,
      fingerprint: identity.fingerprint,
      pin_sha256: await certificateFingerprint(identity.cert),
      names: certificateNames(identity.cert),
      ...trust,
    });
    const covered = certificateNames(identity.cert);
    const missing = config.tls.names.filter((n) => !covered.includes(n.toLowerCase()));
    if (identity.caFile !== undefined && missing.length > 0) {
      log.warn(EVENTS.config_warning, {
        component: "tunnel",
        warning: `the certificate in ${config.state_dir} does not cover ${missing.join(", ")} ` +
          `(server.tls.names); clients using those names will fail verification. Re-issue it with ` +
          `wmproxy gen-cert --force --out ${config.state_dir} --names ${
            config.tls.names.join(",")
          }`,
      });
    }
  } else {
    log.warn(EVENTS.tls_disabled, {
      component: "tunnel",
      warning: "server.tls.enabled is false: tunnel traffic is NOT encrypted",
    });
  }

  function track(p: Promise<void>): void {
    tasks.add(p);
    p.finally(() => tasks.delete(p));
  }

  /**
   * One tunnel connection: TLS, preamble, hello and proof within ONE deadline
   * (`handshake_timeout`, an AbortSignal that this function owns: it closes
   * the connection before the session exists and ends the session after),
   * then the authenticated session. `slot` is the pre-auth slot taken at
   * accept; it is released when the handshake ends, either way. The
   * connection is closed exactly once: by the deadline, by the session, or
   * here; `closeOnce` makes the rest no-ops.
   */
  async function handleConnection(raw: ByteConn, slot: PreauthSlot): Promise<void> {
    const conn = closeOnce(raw);
    const peer = formatHostPort(conn.remoteAddr);
    const key = addressKey(conn.remoteAddr.hostname);
    const timeoutMs = config.handshake_timeout_ms;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(), timeoutMs);
    let session: Session | undefined;
    const onDeadline = () => {
      if (session === undefined) conn.close(); // TLS or preamble still running
    };
    deadline.signal.addEventListener("abort", onDeadline, { once: true });
    const late = (what: string) =>
      `${what} did not finish within handshake_timeout (${timeoutMs} ms)`;
    pending.add(conn);
    let result: Awaited<ReturnType<typeof serverHandshake>> | undefined;
    let delayMs = 0;
    let failure: string | undefined;
    const id = `s${++sessionCounter}`;
    try {
      if (identity) {
        try {
          await tlsHandshake(conn as Deno.TlsConn);
        } catch (err) {
          log.warn(EVENTS.tunnel_handshake_failed, {
            component: "tunnel",
            peer,
            error: deadline.signal.aborted ? late("the TLS handshake") : describeTlsFailure(err),
          });
          return;
        }
      }
      try {
        await exchangePreamble(conn, {
          peer: "client",
          plain: identity === undefined,
          tlsFix: "the client must not use TLS here, or set server.tls.enabled: true",
          signal: deadline.signal,
        });
      } catch (err) {
        log.warn(EVENTS.tunnel_handshake_failed, {
          component: "tunnel",
          peer,
          error: deadline.signal.aborted ? late("the preamble") : errorMessage(err),
        });
        return;
      }
      session = new Session(conn, {
        role: "server",
        requireAuth: true,
        log,
        label: `${id} ${peer}`,
        maxStreams: config.max_streams,
        heartbeatIntervalMs: config.heartbeat_interval_ms,
        heartbeatTimeoutMs: config.heartbeat_timeout_ms,
        handshakeSignal: deadline.signal,
      });
      try {
        result = await serverHandshake(session, {
          tokens: live.tokens,
          sessionId: id,
          answerDelayMs: () => (delayMs = throttle.delayFor(key)),
          signal: deadline.signal,
        });
      } catch (err) {
        if (err instanceof HandshakeError && err.code === ERROR_CODES.AUTH_FAILED) {
          throttle.fail(key);
        }
        failure = deadline.signal.aborted ? late("hello and proof") : errorMessage(err);
      }
    } finally {
      clearTimeout(timer);
      deadline.signal.removeEventListener("abort", onDeadline);
      if (result === undefined) {
        if (session !== undefined) await session.close();
        else conn.close();
      }
      pending.delete(conn);
      slot.release();
    }
    if (failure !== undefined) {
      // Written once the slot is free: the address may try again from here on.
      log.warn(EVENTS.auth_failed, {
        component: "tunnel",
        peer,
        error: failure,
        ...(delayMs > 0 ? { auth_delay_ms: delayMs } : {}),
      });
    }
    if (result === undefined || session === undefined) return;
    throttle.succeed(key);
    await serveClient(session, result, { id, peer, delayMs });
  }

  /** An authenticated session: admitted under `max_clients`, then served until it ends. */
  async function serveClient(
    session: Session,
    result: Awaited<ReturnType<typeof serverHandshake>>,
    info: { id: string; peer: string; delayMs: number },
  ): Promise<void> {
    const { id, peer } = info;
    if (stopping || registry.size >= live.max_clients) {
      log.warn(EVENTS.client_refused, {
        component: "tunnel",
        peer,
        reason: stopping
          ? "the server is shutting down"
          : `max_clients (${live.max_clients}) reached`,
      });
      session.goAway(ERROR_CODES.REFUSED_STREAM);
      await session.closed;
      return;
    }
    const client: ClientSession = {
      id,
      token: result.token,
      name: result.clientName,
      peer,
      since: new Date(),
      session,
    };
    registry.add(client);
    log.info(EVENTS.client_connected, {
      component: "tunnel",
      session: id,
      client: client.name,
      token: client.token.name,
      peer,
      ...(info.delayMs > 0 ? { auth_delay_ms: info.delayMs } : {}),
    });
    let reason;
    try {
      const streams = serveStreams(client);
      const controls = serveControl(client);
      reason = await session.closed;
      mappings.release(client);
      await streams;
      await controls;
    } finally {
      registry.remove(id);
    }
    const stats = session.stats();
    log.info(EVENTS.client_disconnected, {
      component: "tunnel",
      session: id,
      client: client.name,
      peer,
      code: reason.codeName,
      reason: reason.message,
      seconds: Math.round((Date.now() - client.since.getTime()) / 100) / 10,
      streams: stats.streamsAccepted + stats.streamsOpened,
      bytes_in: stats.bytesIn,
      bytes_out: stats.bytesOut,
    });
  }

  /** Answers the client's session control messages (mapping registration). */
  async function serveControl(client: ClientSession): Promise<void> {
    for await (const m of client.session.controlMessages()) {
      try {
        if (m.type === "register") {
          const answer = await mappings.register(client, m);
          if (client.session.isOpen) client.session.sendControl(answer);
        } else if (m.type === "unregister") {
          const results = mappings.unregister(client, m.names);
          client.session.sendControl({
            type: "register_result",
            request_id: m.request_id,
            results,
          });
        }
      } catch (err) {
        log.warn(EVENTS.mapping_error, {
          component: "tunnel",
          session: client.id,
          error: errorMessage(err),
        });
      }
    }
  }

  async function serveStreams(client: ClientSession): Promise<void> {
    const handlers = new Set<Promise<void>>();
    for await (const stream of client.session) {
      if (stream.info.kind !== "proxy") {
        stream.reset(ERROR_CODES.NOT_FOUND);
        continue;
      }
      if (!client.token.allow_proxy) {
        log.warn(EVENTS.stream_refused, {
          component: "tunnel",
          session: client.id,
          reason: `token "${client.token.name}" has allow_proxy: false`,
        });
        stream.reset(ERROR_CODES.FORBIDDEN);
        continue;
      }
      const h = deps.onProxyStream(stream, client).catch((err) => {
        log.error(EVENTS.stream_refused, {
          component: "tunnel",
          session: client.id,
          error: errorMessage(err),
        });
        stream.reset(ERROR_CODES.INTERNAL_ERROR);
      });
      handlers.add(h);
      h.finally(() => handlers.delete(h));
    }
    await Promise.allSettled(handlers);
  }

  const acceptLoop = (async () => {
    while (true) {
      let conn: ByteConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (stopping) return;
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
          return;
        }
        log.error(EVENTS.accept_error, { component: "tunnel", error: errorMessage(err) });
        await new Promise((r) => setTimeout(r, 100)); // e.g. EMFILE: back off, then go on
        continue;
      }
      const key = addressKey(conn.remoteAddr.hostname);
      const admission = preauth.admit(
        key,
        throttle.failing(key) ? throttle.parallelWhileFailing : undefined,
      );
      if (!admission.ok) {
        // Before any read or TLS work: a flood costs an accept and a close. Note: with TLS on,
        // Deno (2.9) keeps the socket of a connection closed before the peer's ClientHello
        // open until the peer sends one or goes away; the limits here bound the handshakes
        // this server runs, not such sockets (the peer holds one socket for each of them).
        conn.close();
        refusals.record(
          `${admission.refusal.kind} ${key}`,
          formatHostPort(conn.remoteAddr),
          admission.refusal.reason,
        );
        continue;
      }
      track(
        handleConnection(conn, admission.slot).catch((err) => {
          // Last resort: a bug here must cost one connection, never the server.
          admission.slot.release();
          conn.close();
          log.error(EVENTS.tunnel_handshake_failed, {
            component: "tunnel",
            peer: formatHostPort(conn.remoteAddr),
            error: `Cannot serve tunnel connection: ${errorMessage(err)}`,
          });
        }),
      );
    }
  })();

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    if (closing) return await closing;
    closing = (async () => {
      stopping = true;
      listener.close();
      clearInterval(refusalFlush);
      refusals.flush();
      await acceptLoop;
      for (const c of pending) c.close();
      const clients = registry.list();
      for (const c of clients) c.session.goAway(ERROR_CODES.NORMAL);
      const until = Date.now() + config.shutdown_timeout_ms;
      while (Date.now() < until && registry.list().some((c) => c.session.stats().streams > 0)) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await Promise.all(registry.list().map((c) => c.session.close()));
      await Promise.allSettled([...tasks]);
      await mappings.close();
      log.info(EVENTS.listener_closed, { component: "tunnel", addr: formatHostPort(addr) });
    })();
    return await closing;
  }

  function update(next: ServerConfig): void {
    live = next;
    preauth.update({ maxTotal: next.max_handshakes, maxPerAddress: next.max_handshakes_per_ip });
    for (const c of registry.list()) {
      const token = next.tokens.find((t) => t.name === c.token.name);
      if (token === undefined || token.token.reveal() !== c.token.token.reveal()) {
        log.warn(EVENTS.client_refused, {
          component: "tunnel",
          session: c.id,
          peer: c.peer,
          reason: `token "${c.token.name}" was removed or changed by a reload`,
        });
        c.session.goAway(ERROR_CODES.AUTH_FAILED);
        continue;
      }
      c.token = token;
    }
  }

  return {
    addr,
    identity,
    update,
    registry,
    mappings,
    close,
    [Symbol.asyncDispose]: close,
  };
}
