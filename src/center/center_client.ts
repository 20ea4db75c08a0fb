/**
 * The tunnel client ("center client"): keeps one authenticated session to the
 * server, reconnecting forever with jittered exponential backoff, and turns
 * every connection of its local proxy port into a stream without parsing it
 * (the server does the proxying). New local connections wait a bounded time
 * for the tunnel while it is down, then fail cleanly.
 *
 * @module
 */
import type { ClientConfig, MappingConfig } from "../config/types.ts";
import { configKey } from "../config/compare.ts";
import { errorMessage, EVENTS, type Logger } from "../observability/mod.ts";
import { Session, type VirtualStream } from "../mux/mod.ts";
import {
  ERROR_CODES,
  exchangePreamble,
  type OpenMessage,
  type RegisterResultMessage,
} from "../tunnel/mod.ts";
import {
  type NextAnswer,
  registerMappings,
  serveMappingStream,
  unregisterMappings,
} from "./mapping_client.ts";
import {
  type ByteConn,
  formatHostPort,
  type HostPort,
  listenTcp,
  parseHostPort,
} from "../transport/mod.ts";
import { relay } from "../proxy/relay.ts";
import { Backoff, sleep } from "./backoff.ts";
import { dialServer } from "./dial_server.ts";
import { clientHandshake } from "./handshake.ts";

/** Relayed local connections idle both ways this long are closed (the server has its own limit). */
const LOCAL_IDLE_TIMEOUT_MS = 3_600_000;

/** A running tunnel client. */
export interface CenterClient extends AsyncDisposable {
  /** The local proxy port, when configured. */
  readonly localAddr: HostPort | undefined;
  /** Whether a session is up now. */
  readonly connected: boolean;
  /**
   * Opens a stream to the server, waiting up to `connect_wait` for the tunnel.
   * Rejects with a message that says the tunnel is down.
   */
  openStream(info: OpenMessage): Promise<VirtualStream>;
  /**
   * Applies a new mapping list in place (reload): the live session withdraws
   * removed mappings and registers added or changed ones; later reconnects
   * register the new list.
   */
  updateMappings(mappings: readonly MappingConfig[]): Promise<void>;
  /** Graceful stop: GO_AWAY, open streams may finish up to `shutdown_timeout`. */
  close(): Promise<void>;
}

/**
 * Starts the client: binds the local port (if any) and begins connecting.
 * Rejects when the local port cannot be bound; never because the server is down.
 */
export function startCenterClient(
  config: ClientConfig,
  deps: { log: Logger },
): Promise<CenterClient> {
  const log = deps.log;
  const abort = new AbortController();
  const backoff = new Backoff({
    initialMs: config.reconnect.initial_delay_ms,
    maxMs: config.reconnect.max_delay_ms,
  });
  let current: Session | null = null;
  let waiters: ((s: Session | null) => void)[] = [];
  const tasks = new Set<Promise<void>>();
  let connections = 0;
  /** The mappings in force (a reload may change them). */
  let mappings: readonly MappingConfig[] = config.mappings;
  /** The live session's register/unregister channel; operations on it run one at a time. */
  let registrar: { session: Session; next: NextAnswer; chain: Promise<void> } | null = null;

  let listener: ReturnType<typeof listenTcp> | undefined;
  if (config.bind !== undefined) {
    try {
      listener = listenTcp(parseHostPort(config.bind));
    } catch (err) {
      return Promise.reject(new Error(`Cannot listen on "${config.bind}": ${errorMessage(err)}`));
    }
    log.info(EVENTS.listening, { component: "client", addr: formatHostPort(listener.addr) });
  }
  if (!config.tls.enabled) {
    log.warn(EVENTS.tls_disabled, {
      component: "client",
      warning: "client.tls.enabled is false: tunnel traffic is NOT encrypted",
    });
  }

  function track(p: Promise<void>): void {
    tasks.add(p);
    p.finally(() => tasks.delete(p));
  }

  function setSession(s: Session | null): void {
    current = s;
    if (s === null) return;
    const w = waiters;
    waiters = [];
    for (const resolve of w) resolve(s);
  }

  async function connectOnce(): Promise<Session> {
    const conn = await dialServer(config, { log, signal: abort.signal });
    let session: Session | undefined;
    const deadline = setTimeout(() => conn.close(), config.handshake_timeout_ms);
    try {
      await exchangePreamble(conn, {
        peer: "server",
        plain: !config.tls.enabled,
        tlsFix: "set client.tls.enabled: true",
      });
      session = new Session(conn, {
        role: "client",
        requireAuth: true,
        log,
        label: config.server,
        heartbeatIntervalMs: config.heartbeat_interval_ms,
        heartbeatTimeoutMs: config.heartbeat_timeout_ms,
        handshakeTimeoutMs: config.handshake_timeout_ms,
        // The server's Deno.listenTls socket keeps Nagle on: elicit our ACKs (§10).
        ackChatter: config.tls.enabled,
        onStream: (s) => {
          if (s.info.kind === "mapping") {
            track(serveMappingStream(s, { ...config, mappings }, log, abort.signal));
          } else s.reset(ERROR_CODES.NOT_FOUND);
        },
      });
      const result = await clientHandshake(session, {
        token: config.token.reveal(),
        name: config.name,
      });
      log.info(EVENTS.tunnel_connected, {
        component: "client",
        server: config.server,
        session: result.sessionId,
      });
      return session;
    } catch (err) {
      if (session) await session.close();
      else conn.close();
      throw err;
    } finally {
      clearTimeout(deadline);
    }
  }

  const connectLoop = (async () => {
    while (!abort.signal.aborted) {
      let session: Session;
      try {
        session = await connectOnce();
      } catch (err) {
        if (abort.signal.aborted) break;
        const delay = backoff.next();
        log.warn(EVENTS.tunnel_connect_failed, {
          component: "client",
          server: config.server,
          attempt: backoff.attempt,
          error: errorMessage(err),
          retry_in_ms: delay,
        });
        await sleep(delay, abort.signal);
        continue;
      }
      backoff.reset();
      setSession(session);
      track(controlLoop(session));
      const reason = await session.closed;
      setSession(null);
      if (abort.signal.aborted) break;
      log.warn(EVENTS.tunnel_disconnected, {
        component: "client",
        server: config.server,
        code: reason.codeName,
        reason: reason.message,
      });
    }
  })();

  /** Reads the session's control messages; registers the mappings first. */
  async function controlLoop(session: Session): Promise<void> {
    const answers: RegisterResultMessage[] = [];
    const waiter: { wake: (() => void) | null } = { wake: null };
    const next: NextAnswer = async () => {
      while (answers.length === 0) {
        if (!session.isOpen) return null;
        await new Promise<void>((r) => waiter.wake = r);
      }
      return answers.shift()!;
    };
    const reg = { session, next, chain: Promise.resolve() };
    registrar = reg;
    enqueue(reg, () => registerMappings(session, mappings, next, log));
    for await (const m of session.controlMessages()) {
      if (m.type === "register_result") {
        answers.push(m);
        waiter.wake?.();
      }
    }
    waiter.wake?.();
    if (registrar === reg) registrar = null;
    await reg.chain;
  }

  function enqueue(reg: { chain: Promise<void> }, op: () => Promise<void>): Promise<void> {
    reg.chain = reg.chain.then(op).catch((err) => {
      log.error(EVENTS.mapping_failed, { component: "client", error: errorMessage(err) });
    });
    return reg.chain;
  }

  function updateMappings(next: readonly MappingConfig[]): Promise<void> {
    const before = new Map(mappings.map((m) => [m.name, configKey(m)]));
    const removed = mappings.map((m) => m.name).filter((n) => !next.some((m) => m.name === n));
    const changed = next.filter((m) => before.get(m.name) !== configKey(m));
    mappings = next;
    const reg = registrar;
    if (reg === null || (removed.length === 0 && changed.length === 0)) return Promise.resolve();
    return enqueue(reg, async () => {
      await unregisterMappings(reg.session, removed, reg.next, log);
      await registerMappings(reg.session, changed, reg.next, log);
    });
  }

  function waitForSession(): Promise<Session | null> {
    if (current !== null && current.isOpen && !current.goAwayReceived) {
      return Promise.resolve(current);
    }
    if (abort.signal.aborted) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        waiters = waiters.filter((w) => w !== done);
        resolve(null);
      }, config.connect_wait_ms);
      const done = (s: Session | null) => {
        clearTimeout(timer);
        resolve(s);
      };
      waiters.push(done);
    });
  }

  async function openStream(info: OpenMessage): Promise<VirtualStream> {
    const session = await waitForSession();
    if (session === null) {
      throw new Error(
        `Cannot open a stream: the tunnel to ${config.server} is down (waited ${config.connect_wait_ms}ms)`,
      );
    }
    return await session.open(info);
  }

  async function serveLocal(conn: ByteConn): Promise<void> {
    const id = `c${++connections}`;
    const peer = formatHostPort(conn.remoteAddr);
    const t0 = performance.now();
    let stream: VirtualStream;
    try {
      stream = await openStream({ type: "open", kind: "proxy", visitor: { ...conn.remoteAddr } });
    } catch (err) {
      log.warn(EVENTS.connection_closed, {
        component: "client",
        conn: id,
        peer,
        error: errorMessage(err),
      });
      conn.close();
      return;
    }
    const r = await relay(conn, stream, {
      idleTimeoutMs: LOCAL_IDLE_TIMEOUT_MS,
      signal: abort.signal,
    });
    log.info(EVENTS.connection_closed, {
      component: "client",
      conn: id,
      peer,
      stream: stream.id,
      bytes_out: r.bytesUp,
      bytes_in: r.bytesDown,
      ms: Math.round(performance.now() - t0),
      ...(r.error ? { error: r.error.message } : {}),
    });
  }

  const acceptLoop = listener === undefined ? Promise.resolve() : (async () => {
    for await (const conn of listener) track(serveLocal(conn));
  })();

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    if (closing) return await closing;
    closing = (async () => {
      listener?.close();
      await acceptLoop;
      const session = current;
      if (session !== null) {
        session.goAway(ERROR_CODES.NORMAL);
        const until = Date.now() + config.shutdown_timeout_ms;
        while (Date.now() < until && session.isOpen && session.stats().streams > 0) {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      abort.abort();
      for (const w of waiters) w(null);
      waiters = [];
      if (session !== null) await session.close();
      await connectLoop;
      await Promise.allSettled([...tasks]);
      if (listener) {
        log.info(EVENTS.listener_closed, {
          component: "client",
          addr: formatHostPort(listener.addr),
        });
      }
    })();
    return await closing;
  }

  return Promise.resolve({
    localAddr: listener?.addr,
    get connected() {
      return current !== null && current.isOpen;
    },
    openStream,
    updateMappings,
    close,
    [Symbol.asyncDispose]: close,
  });
}
