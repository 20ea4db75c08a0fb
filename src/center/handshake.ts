/**
 * The hello and token authentication of PROTOCOL.md §4 and §11.1–§11.5, run
 * over a fresh {@link Session} (created with `requireAuth: true`) on each side.
 *
 * @module
 */
import type { Session } from "../mux/mod.ts";
import {
  computeClientProof,
  computeServerProof,
  ERROR_CODES,
  errorCodeName,
  generateNonce,
  PROTOCOL_VERSION,
  type SessionControlMessage,
  verifyClientProof,
  verifyServerProof,
} from "../tunnel/mod.ts";
import type { TokenPolicy } from "../config/types.ts";
import { sleep } from "./backoff.ts";

/** Capabilities this version offers and grants (none yet; §16). */
export const CAPABILITIES: readonly string[] = [];

/** A failed handshake; `code` is from PROTOCOL.md §15, `message` says what to fix. */
export class HandshakeError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = "HandshakeError";
    this.code = code;
  }
}

/** The next control message; a session that ends instead is a HandshakeError. */
async function nextMessage(session: Session, who: string): Promise<SessionControlMessage> {
  const m = await session.receiveControl();
  if (m === null) {
    const reason = await session.closed;
    throw new HandshakeError(
      reason.code,
      `the ${who} ended the session during the handshake (${reason.codeName}: ${reason.message})`,
    );
  }
  return m;
}

/** What the client learns from a successful handshake. */
export interface ClientHandshakeResult {
  sessionId: string;
  capabilities: string[];
}

/**
 * Client side: hello, then the HMAC proof; verifies the server's proof too.
 * Throws {@link HandshakeError} with the server's reason on refusal.
 */
export async function clientHandshake(
  session: Session,
  options: { token: string; name?: string | undefined },
): Promise<ClientHandshakeResult> {
  const clientNonce = generateNonce();
  session.sendControl({
    type: "client_hello",
    version: PROTOCOL_VERSION,
    capabilities: [...CAPABILITIES],
    client_nonce: clientNonce,
    ...(options.name === undefined ? {} : { name: options.name }),
  });
  const hello = await nextMessage(session, "server");
  if (hello.type === "auth_failed") {
    throw new HandshakeError(hello.code, `the server refused the hello: ${hello.message}`);
  }
  if (hello.type !== "server_hello") {
    throw new HandshakeError(
      ERROR_CODES.PROTOCOL_ERROR,
      `the server sent ${hello.type} instead of server_hello`,
    );
  }
  const nonces = { server_nonce: hello.server_nonce, client_nonce: clientNonce };
  session.sendControl({ type: "auth", proof: await computeClientProof(options.token, nonces) });
  const answer = await nextMessage(session, "server");
  if (answer.type === "auth_failed") {
    throw new HandshakeError(
      answer.code,
      `the server refused the token: ${answer.message} (check client.token)`,
    );
  }
  if (answer.type !== "auth_ok") {
    throw new HandshakeError(
      ERROR_CODES.PROTOCOL_ERROR,
      `the server sent ${answer.type} instead of auth_ok`,
    );
  }
  if (!(await verifyServerProof(options.token, nonces, answer.server_proof))) {
    session.goAway(ERROR_CODES.AUTH_FAILED);
    throw new HandshakeError(
      ERROR_CODES.AUTH_FAILED,
      "the server's proof does not match our token: it does not know the token (wrong server?)",
    );
  }
  return { sessionId: hello.session_id, capabilities: hello.capabilities };
}

/** What the server learns from a successful handshake. */
export interface ServerHandshakeResult {
  token: TokenPolicy;
  clientName: string | undefined;
  sessionId: string;
}

/** Options of {@link serverHandshake}. */
export interface ServerHandshakeOptions {
  tokens: readonly TokenPolicy[];
  sessionId: string;
  /**
   * Milliseconds to wait before the answer to the proof, `auth_ok` and
   * `auth_failed` alike (an address that keeps failing is slowed down, and
   * the timing must not tell whether the token was right).
   */
  answerDelayMs?: () => number;
  /** The handshake deadline: aborting it cuts the delay short and fails the handshake. */
  signal?: AbortSignal;
}

/**
 * Server side: answers the hello, checks the proof against every token (in
 * constant time each) and answers `auth_ok` or `auth_failed`, each after
 * `answerDelayMs`.
 */
export async function serverHandshake(
  session: Session,
  options: ServerHandshakeOptions,
): Promise<ServerHandshakeResult> {
  const hello = await nextMessage(session, "client");
  if (hello.type !== "client_hello") {
    return await refuse(
      session,
      options,
      ERROR_CODES.PROTOCOL_ERROR,
      `expected client_hello, got ${hello.type}`,
    );
  }
  if (hello.version < PROTOCOL_VERSION) {
    return await refuse(
      session,
      options,
      ERROR_CODES.VERSION_MISMATCH,
      `protocol version ${hello.version} is not supported (supported: ${PROTOCOL_VERSION}); upgrade the client`,
    );
  }
  const serverNonce = generateNonce();
  session.sendControl({
    type: "server_hello",
    version: PROTOCOL_VERSION,
    capabilities: hello.capabilities.filter((c) => CAPABILITIES.includes(c)),
    server_nonce: serverNonce,
    session_id: options.sessionId,
  });
  const auth = await nextMessage(session, "client");
  if (auth.type !== "auth") {
    return await refuse(
      session,
      options,
      ERROR_CODES.PROTOCOL_ERROR,
      `expected auth, got ${auth.type}`,
    );
  }
  const nonces = { server_nonce: serverNonce, client_nonce: hello.client_nonce };
  const candidates = auth.key_id === undefined
    ? options.tokens
    : options.tokens.filter((t) => t.name === auth.key_id);
  let match: TokenPolicy | undefined;
  for (const t of candidates) {
    // Check every candidate so the time taken does not tell which one matched.
    if (await verifyClientProof(t.token.reveal(), nonces, auth.proof)) match ??= t;
  }
  if (match === undefined) {
    return await refuse(
      session,
      options,
      ERROR_CODES.AUTH_FAILED,
      "the token is not valid on this server",
    );
  }
  await answerDelay(options, session);
  if (!session.isOpen || options.signal?.aborted) {
    throw new HandshakeError(
      ERROR_CODES.HANDSHAKE_TIMEOUT,
      "the session ended before auth_ok could be sent (handshake deadline or disconnect)",
    );
  }
  session.sendControl({
    type: "auth_ok",
    server_proof: await computeServerProof(match.token.reveal(), nonces),
  });
  return { token: match, clientName: hello.name, sessionId: options.sessionId };
}

/** Waits `answerDelayMs`, or less when the deadline aborts or the session ends. */
async function answerDelay(options: ServerHandshakeOptions, session?: Session): Promise<void> {
  const delay = options.answerDelayMs?.() ?? 0;
  if (delay <= 0) return;
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
  void session?.closed.then(() => stop.abort());
  await sleep(delay, signal);
  stop.abort();
}

async function refuse(
  session: Session,
  options: ServerHandshakeOptions,
  code: number,
  message: string,
): Promise<never> {
  await answerDelay(options, session);
  if (session.isOpen) {
    session.sendControl({ type: "auth_failed", code, message });
    session.goAway(code === ERROR_CODES.AUTH_FAILED ? code : ERROR_CODES.PROTOCOL_ERROR);
  }
  throw new HandshakeError(code, `${errorCodeName(code)}: ${message}`);
}
