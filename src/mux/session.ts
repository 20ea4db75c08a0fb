/**
 * A multiplexed session over one `ByteConn` (PROTOCOL.md §5–§15).
 *
 * @module
 */
import type { ByteConn, HostPort } from "../transport/conn.ts";
import type { Logger } from "../observability/log.ts";
import { EVENTS } from "../observability/events.ts";
import {
  DEFAULT_MAX_STREAMS,
  DEFAULT_RECEIVE_WINDOW,
  ERROR_CODES,
  errorCodeName,
  FIRST_CLIENT_STREAM_ID,
  FIRST_SERVER_STREAM_ID,
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  FRAME_HEADER_SIZE,
  FRAME_TYPE_CONTROL,
  FRAME_TYPE_DATA,
  FRAME_TYPE_GO_AWAY,
  FRAME_TYPE_NAMES,
  FRAME_TYPE_PING,
  FRAME_TYPE_WINDOW_UPDATE,
  type FrameType,
  HANDSHAKE_TIMEOUT_MS,
  HEARTBEAT_INTERVAL_MS,
  HEARTBEAT_TIMEOUT_MS,
  INITIAL_WINDOW,
  MAX_OUTGOING_BUFFER,
  MAX_PENDING_CONTROL,
  MAX_STREAM_ID,
  MAX_WINDOW,
} from "../tunnel/constants.ts";
import {
  decodeControlMessage,
  encodeControlMessage,
  HANDSHAKE_MESSAGE_TYPES,
  type OpenMessage,
  type SessionControlMessage,
} from "../tunnel/control.ts";
import { checkFrameHeader, readU32 } from "../tunnel/frame.ts";
import { ProtocolError } from "../tunnel/protocol_error.ts";
import { OutgoingBuffer } from "./_outgoing_buffer.ts";
import { StreamError } from "./stream_error.ts";
import { type StreamLink, VirtualStream } from "./virtual_stream.ts";

/** Which end of the connection this session is; decides stream id parity (§8). */
export type SessionRole = "client" | "server";

/** Options for {@link Session}. */
export interface SessionOptions {
  /** `client` opens odd stream ids, `server` even ones. */
  role: SessionRole;
  /** Where session events go. @default no logging */
  log?: Logger;
  /** A label for log lines (e.g. the peer or client name). @default the peer address */
  label?: string;
  /** Receive window per stream, INITIAL_WINDOW–MAX_WINDOW. @default 1 MiB */
  receiveWindow?: number;
  /** Concurrent streams (opened plus accepted). @default 4096 */
  maxStreams?: number;
  /** Milliseconds between heartbeat pings; 0 disables the heartbeat. @default 15000 */
  heartbeatIntervalMs?: number;
  /** Milliseconds of silence that end the session. @default 45000 */
  heartbeatTimeoutMs?: number;
  /**
   * Accept only handshake control messages, PING and GO_AWAY until `auth_ok`
   * is sent (server) or received (client) (§4). @default false
   */
  requireAuth?: boolean;
  /** With `requireAuth`: milliseconds to reach `auth_ok`. @default 10000 */
  handshakeTimeoutMs?: number;
  /**
   * With `requireAuth`: the handshake deadline, owned by the caller (it may
   * have started before this session, e.g. at accept). Aborting it before
   * `auth_ok` ends the session with HANDSHAKE_TIMEOUT. When given, the session
   * runs no timer of its own and `handshakeTimeoutMs` is ignored.
   */
  handshakeSignal?: AbortSignal;
  /** Milliseconds to flush a final GO_AWAY before closing the transport. @default 1000 */
  drainTimeoutMs?: number;
  /**
   * After reading frames of a live stream, send a zero-increment WINDOW_UPDATE
   * on it (at most one per 0.25 ms) so the transport carries our TCP ACK at
   * once (§10). Set it on
   * the side whose peer cannot turn Nagle off (the client of a `Deno.listenTls`
   * server); otherwise replies over 16 KiB stall ~40 ms. @default false
   */
  ackChatter?: boolean;
  /** Called for each incoming stream instead of queueing it for `accept()`. */
  onStream?: (stream: VirtualStream) => void;
  /** Called for each session control message instead of queueing it for `receiveControl()`. */
  onControl?: (message: SessionControlMessage) => void;
  /** Called when the peer sends GO_AWAY. */
  onGoAway?: (code: number) => void;
}

/** Why a session ended. */
export interface SessionCloseReason {
  /** Error code (PROTOCOL.md §15); `NORMAL` for a clean close. */
  code: number;
  /** The name of `code`. */
  codeName: string;
  /** What happened, as a sentence. */
  message: string;
  /** Whether the peer ended it (GO_AWAY received, transport closed by the peer). */
  remote: boolean;
}

/** Counters for the admin API. */
export interface SessionStats {
  /** Streams alive now. */
  streams: number;
  streamsOpened: number;
  streamsAccepted: number;
  /** Transport bytes. */
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
  /** Last measured round trip, or `null` before the first pong. */
  rttMs: number | null;
  /** Outgoing bytes waiting for the socket. */
  queuedBytes: number;
}

const OPEN = 0;
const DRAINING = 1;
const CLOSED = 2;

const READ_CHUNK = 256 * 1024;
const MIN_READ = 16 * 1024;
/** DATA payloads at least this big are handed to streams as views of the read buffer. */
const VIEW_MIN = 32 * 1024;
/** Data writers wait while this many bytes are queued. */
const OUT_HIGH_WATER = 1024 * 1024;

const EMPTY = new Uint8Array(0);
/** Least time between two ACK-eliciting frames (SessionOptions.ackChatter). */
const CHATTER_INTERVAL_MS = 0.25;

interface PendingPing {
  t0: number;
  resolve: ((rtt: number) => void) | null;
  reject: ((err: Error) => void) | null;
}

/**
 * One multiplexed session: **one async loop per connection** that reacts to the
 * socket reader, the socket writer and the streams' queued frames, like
 * `tokio::select!`, without racing long-lived promises. The reader never
 * waits on a stream (each is bounded by its window), so one slow reader never
 * stalls the others.
 *
 * @example
 * ```ts
 * import { createPipe } from "@/transport/pipe.ts";
 * import { Session } from "@/mux/mod.ts";
 * const [a, b] = createPipe();
 * await using client = new Session(a, { role: "client" });
 * await using server = new Session(b, { role: "server" });
 * const s = await client.open({ type: "open", kind: "proxy" });
 * await s.write(new TextEncoder().encode("hi"));
 * const t = (await server.accept())!;
 * ```
 */
export class Session implements AsyncDisposable {
  readonly role: SessionRole;
  readonly #conn: ByteConn;
  readonly #log: Logger | null;
  readonly #label: string;
  readonly #receiveWindow: number;
  readonly #maxStreams: number;
  readonly #heartbeatInterval: number;
  readonly #ackChatter: boolean;
  /** Live stream of the last frame of the current read (ackChatter), 0 if none. */
  #dataSeen = 0;
  #lastChatter = 0;
  #chatterTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #heartbeatTimeout: number;
  readonly #drainTimeout: number;
  readonly #onStream: ((s: VirtualStream) => void) | null;
  readonly #onControl: ((m: SessionControlMessage) => void) | null;
  readonly #onGoAway: ((code: number) => void) | null;
  readonly #link: StreamLink;

  #phase = OPEN;
  #reason: SessionCloseReason | null = null;
  readonly #closed: Promise<SessionCloseReason>;
  #resolveClosed!: (r: SessionCloseReason) => void;

  // streams
  readonly #streams = new Map<number, VirtualStream>();
  #nextId: number;
  #lastPeerId = 0;
  #accepted: VirtualStream[] = [];
  #acceptWaiters: ((s: VirtualStream | null) => void)[] = [];
  #controls: SessionControlMessage[] = [];
  #controlWaiters: ((m: SessionControlMessage | null) => void)[] = [];
  #authenticated: boolean;
  #goAwaySent = false;
  #goAwayReceived = false;

  // reader (bump-allocated chunk, views handed to streams)
  #chunk = new Uint8Array(READ_CHUNK);
  #rStart = 0;
  #rEnd = 0;
  #need = FRAME_HEADER_SIZE;
  #chunkShared = false;
  #reading = false;
  #readEof = false;
  #readReady = false;
  #readN: number | null = 0;
  #readErr: unknown = null;
  #readP: Promise<void> = Promise.resolve();

  // writer
  readonly #out = new OutgoingBuffer();
  #writing = false;
  #writeReady = false;
  #writeN = 0;
  #writeErr: unknown = null;
  #writeBroken = false;
  #writeP: Promise<void> = Promise.resolve();
  #outWaiters: (() => void)[] = [];

  // loop wake-up
  #wakeResolve: (() => void) | null = null;
  #wakePending = false;

  // timers
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #handshakeTimer: ReturnType<typeof setTimeout> | undefined;
  #handshakeSignal: AbortSignal | undefined;
  readonly #onHandshakeAbort = (): void => {
    this.#handshakeDue = true;
    this.#wake();
  };
  #drainTimer: ReturnType<typeof setTimeout> | undefined;
  #tickDue = false;
  #handshakeDue = false;
  #drainDeadline = 0;
  #lastRecv = performance.now();

  // pings and stats
  readonly #pings = new Map<number, PendingPing>();
  #pingSeq = 0;
  #heartbeatPing = -1;
  #rtt: number | null = null;
  #bytesIn = 0;
  #bytesOut = 0;
  #framesIn = 0;
  #framesOut = 0;
  #streamsOpened = 0;
  #streamsAccepted = 0;

  constructor(conn: ByteConn, options: SessionOptions) {
    this.role = options.role;
    this.#conn = conn;
    this.#log = options.log ?? null;
    this.#label = options.label ?? formatAddr(conn.remoteAddr);
    const window = options.receiveWindow ?? DEFAULT_RECEIVE_WINDOW;
    if (!Number.isInteger(window) || window < INITIAL_WINDOW || window > MAX_WINDOW) {
      throw new RangeError(
        `Cannot create session: receiveWindow ${window} is outside ${INITIAL_WINDOW}–${MAX_WINDOW}`,
      );
    }
    this.#receiveWindow = window;
    this.#maxStreams = options.maxStreams ?? DEFAULT_MAX_STREAMS;
    this.#heartbeatInterval = options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS;
    this.#ackChatter = options.ackChatter ?? false;
    this.#heartbeatTimeout = options.heartbeatTimeoutMs ?? HEARTBEAT_TIMEOUT_MS;
    this.#drainTimeout = options.drainTimeoutMs ?? 1000;
    this.#onStream = options.onStream ?? null;
    this.#onControl = options.onControl ?? null;
    this.#onGoAway = options.onGoAway ?? null;
    this.#nextId = this.role === "client" ? FIRST_CLIENT_STREAM_ID : FIRST_SERVER_STREAM_ID;
    this.#authenticated = !(options.requireAuth ?? false);
    this.#closed = new Promise((resolve) => this.#resolveClosed = resolve);
    this.#link = {
      sendData: (id, src, off, n, fin) => {
        this.#out.header(FRAME_TYPE_DATA, fin ? FLAG_FIN : 0, id, n);
        if (n > 0) this.#out.bytesFrom(src, off, n);
        this.#framesOut++;
        this.#wake();
      },
      sendFrame: (type, flags, id, length) => {
        if (this.#phase !== OPEN) return;
        this.#queueFrame(type, flags, id, length);
      },
      outgoingFull: () => this.#out.bytes >= OUT_HIGH_WATER,
      waitOutgoing: () => {
        if (this.#phase !== OPEN) return Promise.resolve();
        return new Promise<void>((resolve) => this.#outWaiters.push(resolve));
      },
      forget: (stream) => {
        if (this.#streams.get(stream.id) === stream) this.#streams.delete(stream.id);
      },
    };
    if (this.#heartbeatInterval > 0) {
      this.#heartbeatTimer = setInterval(() => {
        this.#tickDue = true;
        this.#wake();
      }, this.#heartbeatInterval);
    }
    if (!this.#authenticated && options.handshakeSignal !== undefined) {
      this.#handshakeSignal = options.handshakeSignal;
      if (this.#handshakeSignal.aborted) this.#handshakeDue = true;
      else this.#handshakeSignal.addEventListener("abort", this.#onHandshakeAbort, { once: true });
    } else if (!this.#authenticated) {
      this.#handshakeTimer = setTimeout(() => {
        this.#handshakeDue = true;
        this.#wake();
      }, options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS);
    }
    this.#log?.info(EVENTS.session_opened, { session: this.#label, role: this.role });
    void this.#run();
  }

  // ---- public API ----

  /** Resolves once, when the session has ended and released its transport. */
  get closed(): Promise<SessionCloseReason> {
    return this.#closed;
  }

  /** Whether the session still accepts new work. */
  get isOpen(): boolean {
    return this.#phase === OPEN;
  }

  /** Whether `auth_ok` has been sent or received (always true without `requireAuth`). */
  get authenticated(): boolean {
    return this.#authenticated;
  }

  /** Whether the peer sent GO_AWAY. */
  get goAwayReceived(): boolean {
    return this.#goAwayReceived;
  }

  /** The transport's peer address. */
  get remoteAddr(): HostPort {
    return this.#conn.remoteAddr;
  }

  /** The transport's local address. */
  get localAddr(): HostPort {
    return this.#conn.localAddr;
  }

  /** Counters for the admin API. */
  stats(): SessionStats {
    return {
      streams: this.#streams.size,
      streamsOpened: this.#streamsOpened,
      streamsAccepted: this.#streamsAccepted,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      framesIn: this.#framesIn,
      framesOut: this.#framesOut,
      rttMs: this.#rtt,
      queuedBytes: this.#out.bytes,
    };
  }

  /**
   * Opens a stream carrying `info` in its SYN (§9). Data may be written at
   * once; the peer refuses with a reset that fails the stream's operations.
   */
  open(info: OpenMessage): Promise<VirtualStream> {
    try {
      return Promise.resolve(this.#open(info));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The next incoming stream, or `null` once the session has ended. */
  accept(): Promise<VirtualStream | null> {
    const s = this.#accepted.shift();
    if (s !== undefined) return Promise.resolve(s);
    if (this.#phase !== OPEN) return Promise.resolve(null);
    return new Promise((resolve) => this.#acceptWaiters.push(resolve));
  }

  /** Incoming streams until the session ends. */
  async *[Symbol.asyncIterator](): AsyncGenerator<VirtualStream> {
    for (let s = await this.accept(); s !== null; s = await this.accept()) yield s;
  }

  /** Queues a session control message on stream 0 (§11). */
  sendControl(message: SessionControlMessage): void {
    if (this.#phase !== OPEN) {
      throw new StreamError(
        this.#reason?.code ?? ERROR_CODES.NORMAL,
        `Cannot send ${message.type}: the session is closed`,
        false,
      );
    }
    if ((message.type as string) === "open") {
      throw new TypeError("Cannot send open on stream 0: use open() instead");
    }
    if (!this.#authenticated && !HANDSHAKE_MESSAGE_TYPES.has(message.type)) {
      throw new TypeError(`Cannot send ${message.type}: the session is not authenticated yet`);
    }
    const payload = encodeControlMessage(message);
    this.#out.header(FRAME_TYPE_CONTROL, 0, 0, payload.length);
    this.#out.bytesFrom(payload, 0, payload.length);
    this.#framesOut++;
    if (message.type === "auth_ok") this.#setAuthenticated();
    this.#wake();
  }

  /** The next session control message, or `null` once the session has ended. */
  receiveControl(): Promise<SessionControlMessage | null> {
    const m = this.#controls.shift();
    if (m !== undefined) return Promise.resolve(m);
    if (this.#phase !== OPEN) return Promise.resolve(null);
    return new Promise((resolve) => this.#controlWaiters.push(resolve));
  }

  /** Session control messages until the session ends. */
  async *controlMessages(): AsyncGenerator<SessionControlMessage> {
    for (let m = await this.receiveControl(); m !== null; m = await this.receiveControl()) {
      yield m;
    }
  }

  /** Sends a PING and resolves with the round trip in milliseconds (§12). */
  ping(): Promise<number> {
    if (this.#phase !== OPEN) {
      return Promise.reject(
        new StreamError(this.#reason?.code ?? 0, "Cannot ping: the session is closed", false),
      );
    }
    return new Promise<number>((resolve, reject) => {
      const id = this.#nextPingId();
      this.#pings.set(id, { t0: performance.now(), resolve, reject });
      this.#queueFrame(FRAME_TYPE_PING, FLAG_SYN, 0, id);
    });
  }

  /**
   * Sends GO_AWAY (§13). With `NORMAL`, streams already open go on while new
   * ones are refused on both sides; call `close()` when they are done. Any
   * other code ends the session with that error.
   */
  goAway(code: number = ERROR_CODES.NORMAL): void {
    if (this.#phase !== OPEN) return;
    if (code !== ERROR_CODES.NORMAL) {
      this.#terminate(code, `went away with ${errorCodeName(code)}`, false, true);
      return;
    }
    if (this.#goAwaySent) return;
    this.#goAwaySent = true;
    this.#log?.info(EVENTS.session_go_away, {
      session: this.#label,
      code: "NORMAL",
      remote: false,
    });
    this.#queueFrame(FRAME_TYPE_GO_AWAY, 0, 0, code);
  }

  /**
   * Ends the session: sends GO_AWAY `NORMAL`, flushes what is queued (up to
   * `drainTimeoutMs`), closes the transport; open streams fail. Resolves when
   * everything is released.
   */
  async close(): Promise<void> {
    this.#terminate(ERROR_CODES.NORMAL, "closed by this side", false, true);
    await this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- the loop ----

  #wake(): void {
    const r = this.#wakeResolve;
    if (r !== null) {
      this.#wakeResolve = null;
      r();
    } else {
      this.#wakePending = true;
    }
  }

  #sleep(): Promise<void> | void {
    if (this.#wakePending) {
      this.#wakePending = false;
      return;
    }
    return new Promise<void>((resolve) => this.#wakeResolve = resolve);
  }

  async #run(): Promise<void> {
    while (this.#phase !== CLOSED) {
      this.#wakePending = false;
      try {
        if (this.#writeReady) this.#handleWrite();
        if (this.#readReady) this.#handleRead();
        if (this.#tickDue) this.#heartbeat();
        if (this.#handshakeDue) this.#handshakeExpired();
      } catch (err) {
        this.#onError(err);
      }
      try {
        if (this.#phase === OPEN && !this.#reading && !this.#readEof) this.#startRead();
        if (!this.#writing && !this.#writeBroken && this.#out.bytes > 0) this.#startWrite();
      } catch (err) {
        this.#writeBroken = true;
        this.#onError(err);
      }
      if (
        this.#phase === DRAINING &&
        (this.#writeBroken || (!this.#writing && this.#out.bytes === 0) ||
          performance.now() >= this.#drainDeadline)
      ) {
        break;
      }
      await this.#sleep();
    }
    await this.#finish();
  }

  #startRead(): void {
    let chunk = this.#chunk;
    if (this.#rStart === this.#rEnd && !this.#chunkShared) {
      this.#rStart = this.#rEnd = 0;
    }
    const pending = this.#rEnd - this.#rStart;
    if (chunk.length - this.#rEnd < MIN_READ || chunk.length - this.#rStart < this.#need) {
      const size = Math.max(READ_CHUNK, this.#need + MIN_READ);
      if (!this.#chunkShared && size <= chunk.length) {
        chunk.copyWithin(0, this.#rStart, this.#rEnd);
      } else {
        const fresh = new Uint8Array(size);
        fresh.set(chunk.subarray(this.#rStart, this.#rEnd));
        this.#chunk = chunk = fresh;
        this.#chunkShared = false;
      }
      this.#rStart = 0;
      this.#rEnd = pending;
    }
    this.#reading = true;
    this.#readP = this.#conn.read(chunk.subarray(this.#rEnd)).then(
      this.#onRead,
      this.#onReadError,
    );
  }

  readonly #onRead = (n: number | null): void => {
    this.#reading = false;
    this.#readN = n;
    this.#readReady = true;
    this.#wake();
  };

  readonly #onReadError = (err: unknown): void => {
    this.#reading = false;
    this.#readErr = err;
    this.#readN = null;
    this.#readReady = true;
    this.#wake();
  };

  #startWrite(): void {
    const view = this.#out.peek();
    if (view === null) return;
    this.#writing = true;
    this.#writeP = this.#conn.write(view).then(this.#onWrite, this.#onWriteError);
  }

  readonly #onWrite = (n: number): void => {
    this.#writing = false;
    this.#writeN = n;
    this.#writeReady = true;
    this.#wake();
  };

  readonly #onWriteError = (err: unknown): void => {
    this.#writing = false;
    this.#writeErr = err;
    this.#writeN = -1;
    this.#writeReady = true;
    this.#wake();
  };

  #handleWrite(): void {
    this.#writeReady = false;
    if (this.#writeN < 0) {
      this.#writeBroken = true;
      this.#out.clear();
      this.#terminate(
        ERROR_CODES.TRANSPORT_CLOSED,
        `the transport failed on write (${errorText(this.#writeErr)})`,
        true,
        false,
      );
      return;
    }
    this.#out.advance(this.#writeN);
    this.#bytesOut += this.#writeN;
    if (this.#out.bytes < OUT_HIGH_WATER && this.#outWaiters.length > 0) {
      const waiters = this.#outWaiters;
      this.#outWaiters = [];
      for (const w of waiters) w();
    }
  }

  #handleRead(): void {
    this.#readReady = false;
    const n = this.#readN;
    if (n === null) {
      this.#readEof = true;
      // After the peer's GO_AWAY any end of the transport is the expected one
      // (a TLS peer may close without close_notify).
      if (this.#readErr !== null && !this.#goAwayReceived) {
        this.#terminate(
          ERROR_CODES.TRANSPORT_CLOSED,
          `the transport failed on read (${errorText(this.#readErr)})`,
          true,
          false,
        );
      } else if (this.#goAwayReceived) {
        this.#terminate(ERROR_CODES.NORMAL, "the peer went away and closed", true, false);
      } else {
        this.#terminate(
          ERROR_CODES.TRANSPORT_CLOSED,
          "the peer closed the transport without GO_AWAY",
          true,
          false,
        );
      }
      return;
    }
    if (this.#phase !== OPEN) return;
    this.#rEnd += n;
    this.#bytesIn += n;
    this.#lastRecv = performance.now();
    this.#parse();
    if (this.#ackChatter && this.#dataSeen !== 0) this.#chatter();
  }

  /** Queues a zero-increment WINDOW_UPDATE so our ACK leaves now (§10). */
  #chatter(): void {
    const id = this.#dataSeen;
    this.#dataSeen = 0;
    if (this.#out.bytes > 0 || this.#phase !== OPEN) return; // a pending write carries the ACK
    const now = performance.now();
    if (now - this.#lastChatter >= CHATTER_INTERVAL_MS) {
      this.#lastChatter = now;
      this.#queueFrame(FRAME_TYPE_WINDOW_UPDATE, 0, id, 0);
      return;
    }
    if (this.#chatterTimer !== undefined) return;
    this.#chatterTimer = setTimeout(() => {
      this.#chatterTimer = undefined;
      if (this.#phase !== OPEN || this.#out.bytes > 0) return;
      this.#lastChatter = performance.now();
      this.#queueFrame(FRAME_TYPE_WINDOW_UPDATE, 0, id, 0);
    }, 0);
  }

  #parse(): void {
    const c = this.#chunk;
    while (this.#phase === OPEN) {
      const o = this.#rStart;
      const avail = this.#rEnd - o;
      if (avail < FRAME_HEADER_SIZE) {
        this.#need = FRAME_HEADER_SIZE;
        return;
      }
      const type = c[o + 1]!;
      const flags = (c[o + 2]! << 8) | c[o + 3]!;
      const id = readU32(c, o + 4);
      const length = readU32(c, o + 8);
      checkFrameHeader(c[o]!, type, flags, id, length);
      const plen = type === FRAME_TYPE_DATA || type === FRAME_TYPE_CONTROL ? length : 0;
      if (avail < FRAME_HEADER_SIZE + plen) {
        this.#need = FRAME_HEADER_SIZE + plen;
        // A DATA frame cut by a TLS record boundary: its rest may sit behind the
        // peer's Nagle until we ACK, so this read counts for ackChatter too.
        if (id !== 0 && this.#streams.has(id)) this.#dataSeen = id;
        return;
      }
      this.#rStart = o + FRAME_HEADER_SIZE + plen;
      this.#framesIn++;
      this.#frame(type, flags, id, length, o + FRAME_HEADER_SIZE, plen);
    }
  }

  #frame(type: number, flags: number, id: number, length: number, po: number, plen: number): void {
    switch (type) {
      case FRAME_TYPE_DATA: {
        this.#requireAuth(type);
        const s = this.#streams.get(id);
        if (s === undefined) return this.#checkRetired(type, id);
        let payload = EMPTY;
        if (plen >= VIEW_MIN) {
          payload = this.#chunk.subarray(po, po + plen);
          this.#chunkShared = true;
        } else if (plen > 0) {
          payload = this.#chunk.slice(po, po + plen);
        }
        s._receive(payload, (flags & FLAG_FIN) !== 0);
        this.#dataSeen = id;
        return;
      }
      case FRAME_TYPE_WINDOW_UPDATE: {
        this.#requireAuth(type);
        const s = this.#streams.get(id);
        if (s === undefined) return this.#checkRetired(type, id);
        if ((flags & FLAG_RST) !== 0) s._remoteReset(length);
        else {
          s._credit(length, (flags & FLAG_ACK) !== 0);
          this.#dataSeen = id;
        }
        return;
      }
      case FRAME_TYPE_PING:
        if (flags === FLAG_SYN) {
          if (this.#out.bytes > MAX_OUTGOING_BUFFER) {
            throw new ProtocolError(
              ERROR_CODES.RESOURCE_EXHAUSTED,
              `Cannot answer PING: ${this.#out.bytes} bytes of outgoing frames are waiting; the peer is not reading`,
            );
          }
          this.#queueFrame(FRAME_TYPE_PING, FLAG_ACK, 0, length);
        } else {
          this.#pong(length);
        }
        return;
      case FRAME_TYPE_GO_AWAY:
        this.#goAwayReceived = true;
        this.#log?.info(EVENTS.session_go_away, {
          session: this.#label,
          code: errorCodeName(length),
          remote: true,
        });
        try {
          this.#onGoAway?.(length);
        } catch (err) {
          this.#callbackFailed("onGoAway", err);
        }
        if (length !== ERROR_CODES.NORMAL) {
          this.#terminate(length, `the peer went away with ${errorCodeName(length)}`, true, false);
        }
        return;
      case FRAME_TYPE_CONTROL:
        if (id === 0) this.#control(this.#chunk.subarray(po, po + plen));
        else this.#syn(id, this.#chunk.subarray(po, po + plen));
        return;
    }
  }

  #requireAuth(type: number): void {
    if (!this.#authenticated) {
      throw new ProtocolError(
        ERROR_CODES.PROTOCOL_ERROR,
        `Cannot accept ${FRAME_TYPE_NAMES[type as FrameType]} before authentication`,
      );
    }
  }

  /** A frame for an id not in the map: ignore if retired, fail if never opened (§8). */
  #checkRetired(type: number, id: number): void {
    const ours = id % 2 === (this.role === "client" ? 1 : 0);
    if (ours ? id >= this.#nextId : id > this.#lastPeerId) {
      throw new ProtocolError(
        ERROR_CODES.STREAM_ID_ERROR,
        `Cannot accept ${
          FRAME_TYPE_NAMES[type as FrameType]
        } for stream ${id}: it was never opened`,
      );
    }
  }

  #syn(id: number, payload: Uint8Array): void {
    this.#requireAuth(FRAME_TYPE_CONTROL);
    const peerParity = this.role === "client" ? 0 : 1;
    if (id % 2 !== peerParity) {
      throw new ProtocolError(
        ERROR_CODES.STREAM_ID_ERROR,
        `Cannot accept stream ${id}: the ${
          this.role === "client" ? "server" : "client"
        } must open ${peerParity === 0 ? "even" : "odd"} ids`,
      );
    }
    if (id <= this.#lastPeerId) {
      throw new ProtocolError(
        ERROR_CODES.STREAM_ID_ERROR,
        `Cannot accept stream ${id}: ids must increase (last was ${this.#lastPeerId})`,
      );
    }
    this.#lastPeerId = id;
    const info = decodeControlMessage(payload);
    if (info.type !== "open") {
      throw new ProtocolError(
        ERROR_CODES.INVALID_MESSAGE,
        `Cannot accept stream ${id}: its SYN carries ${info.type}, not open`,
      );
    }
    if (this.#goAwaySent || this.#goAwayReceived || this.#streams.size >= this.#maxStreams) {
      this.#queueFrame(FRAME_TYPE_WINDOW_UPDATE, FLAG_RST, id, ERROR_CODES.REFUSED_STREAM);
      return;
    }
    const extra = this.#receiveWindow - INITIAL_WINDOW;
    const remote = info.visitor ?? this.#conn.remoteAddr;
    const stream = new VirtualStream(this.#link, {
      id,
      info,
      outbound: false,
      sendWindow: INITIAL_WINDOW,
      receiveWindow: this.#receiveWindow,
      remoteAddr: { hostname: remote.hostname, port: remote.port },
      localAddr: this.#conn.localAddr,
    });
    this.#streams.set(id, stream);
    this.#streamsAccepted++;
    this.#queueFrame(FRAME_TYPE_WINDOW_UPDATE, FLAG_ACK, id, extra);
    if (this.#onStream !== null) {
      try {
        this.#onStream(stream);
      } catch (err) {
        this.#callbackFailed("onStream", err);
      }
      return;
    }
    const waiter = this.#acceptWaiters.shift();
    if (waiter !== undefined) waiter(stream);
    else this.#accepted.push(stream);
  }

  #control(payload: Uint8Array): void {
    const message = decodeControlMessage(payload);
    if (message.type === "open") {
      throw new ProtocolError(
        ERROR_CODES.PROTOCOL_ERROR,
        "Cannot accept open on stream 0: it must be the SYN of a new stream",
      );
    }
    if (!this.#authenticated && !HANDSHAKE_MESSAGE_TYPES.has(message.type)) {
      throw new ProtocolError(
        ERROR_CODES.PROTOCOL_ERROR,
        `Cannot accept ${message.type} before authentication`,
      );
    }
    if (message.type === "auth_ok") this.#setAuthenticated();
    if (this.#onControl !== null) {
      try {
        this.#onControl(message);
      } catch (err) {
        this.#callbackFailed("onControl", err);
      }
      return;
    }
    const waiter = this.#controlWaiters.shift();
    if (waiter !== undefined) {
      waiter(message);
      return;
    }
    if (this.#controls.length >= MAX_PENDING_CONTROL) {
      throw new ProtocolError(
        ERROR_CODES.RESOURCE_EXHAUSTED,
        `Cannot queue control message: ${MAX_PENDING_CONTROL} are already waiting to be read`,
      );
    }
    this.#controls.push(message);
  }

  #open(info: OpenMessage): VirtualStream {
    if (this.#phase !== OPEN) {
      throw new StreamError(
        this.#reason?.code ?? ERROR_CODES.NORMAL,
        `Cannot open stream: the session is closed (${this.#reason?.message ?? "closing"})`,
        false,
      );
    }
    if (!this.#authenticated) {
      throw new StreamError(
        ERROR_CODES.PROTOCOL_ERROR,
        "Cannot open stream: the session is not authenticated yet",
        false,
      );
    }
    if (this.#goAwaySent || this.#goAwayReceived) {
      throw new StreamError(
        ERROR_CODES.REFUSED_STREAM,
        `Cannot open stream: ${
          this.#goAwaySent ? "this side" : "the peer"
        } sent GO_AWAY; open a new session`,
        this.#goAwayReceived,
      );
    }
    const id = this.#nextId;
    if (id > MAX_STREAM_ID) {
      throw new StreamError(
        ERROR_CODES.STREAM_IDS_EXHAUSTED,
        "Cannot open stream: stream ids are exhausted; open a new session",
        false,
      );
    }
    if (this.#streams.size >= this.#maxStreams) {
      throw new StreamError(
        ERROR_CODES.REFUSED_STREAM,
        `Cannot open stream: ${this.#maxStreams} streams are open (maxStreams)`,
        false,
      );
    }
    const payload = encodeControlMessage(info);
    this.#nextId = id + 2;
    const stream = new VirtualStream(this.#link, {
      id,
      info,
      outbound: true,
      sendWindow: INITIAL_WINDOW,
      receiveWindow: this.#receiveWindow,
      remoteAddr: this.#conn.remoteAddr,
      localAddr: this.#conn.localAddr,
    });
    this.#streams.set(id, stream);
    this.#streamsOpened++;
    this.#out.header(FRAME_TYPE_CONTROL, FLAG_SYN, id, payload.length);
    this.#out.bytesFrom(payload, 0, payload.length);
    this.#framesOut++;
    const extra = this.#receiveWindow - INITIAL_WINDOW;
    if (extra > 0) this.#queueFrame(FRAME_TYPE_WINDOW_UPDATE, 0, id, extra);
    this.#wake();
    return stream;
  }

  #queueFrame(type: number, flags: number, id: number, length: number): void {
    this.#out.header(type, flags, id, length);
    this.#framesOut++;
    this.#wake();
  }

  #nextPingId(): number {
    this.#pingSeq = (this.#pingSeq + 1) >>> 0;
    return this.#pingSeq;
  }

  #pong(value: number): void {
    const p = this.#pings.get(value);
    if (p === undefined) return;
    this.#pings.delete(value);
    this.#rtt = performance.now() - p.t0;
    if (value === this.#heartbeatPing) this.#heartbeatPing = -1;
    p.resolve?.(this.#rtt);
  }

  #heartbeat(): void {
    this.#tickDue = false;
    if (this.#phase !== OPEN) return;
    const idle = performance.now() - this.#lastRecv;
    if (idle >= this.#heartbeatTimeout) {
      const message = `nothing received for ${
        Math.round(idle)
      } ms (timeout ${this.#heartbeatTimeout} ms)`;
      this.#log?.warn(EVENTS.heartbeat_timeout, { session: this.#label, error: message });
      this.#terminate(ERROR_CODES.HEARTBEAT_TIMEOUT, message, false, true);
      return;
    }
    if (this.#heartbeatPing === -1) {
      const id = this.#nextPingId();
      this.#heartbeatPing = id;
      this.#pings.set(id, { t0: performance.now(), resolve: null, reject: null });
      this.#queueFrame(FRAME_TYPE_PING, FLAG_SYN, 0, id);
    }
  }

  #handshakeExpired(): void {
    this.#handshakeDue = false;
    if (this.#authenticated || this.#phase !== OPEN) return;
    const message = "the handshake did not finish in time";
    this.#log?.warn(EVENTS.session_protocol_error, {
      session: this.#label,
      code: "HANDSHAKE_TIMEOUT",
      error: message,
    });
    this.#terminate(ERROR_CODES.HANDSHAKE_TIMEOUT, message, false, true);
  }

  #setAuthenticated(): void {
    this.#authenticated = true;
    if (this.#handshakeTimer !== undefined) {
      clearTimeout(this.#handshakeTimer);
      this.#handshakeTimer = undefined;
    }
    this.#handshakeSignal?.removeEventListener("abort", this.#onHandshakeAbort);
    this.#handshakeSignal = undefined;
  }

  #onError(err: unknown): void {
    if (err instanceof ProtocolError) {
      this.#log?.warn(EVENTS.session_protocol_error, {
        session: this.#label,
        code: err.codeName,
        error: err.message,
      });
      this.#terminate(err.code, err.message, false, true);
      return;
    }
    this.#log?.error(EVENTS.session_protocol_error, {
      session: this.#label,
      code: "INTERNAL_ERROR",
      error: errorText(err),
    });
    this.#terminate(ERROR_CODES.INTERNAL_ERROR, `internal error: ${errorText(err)}`, false, true);
  }

  #callbackFailed(name: string, err: unknown): void {
    this.#log?.error(EVENTS.session_protocol_error, {
      session: this.#label,
      code: "INTERNAL_ERROR",
      error: `${name} threw: ${errorText(err)}`,
    });
  }

  /** Starts the end of the session; the loop drains and then calls #finish. */
  #terminate(code: number, message: string, remote: boolean, sendGoAway: boolean): void {
    if (this.#phase !== OPEN) return;
    this.#phase = DRAINING;
    this.#reason = { code, codeName: errorCodeName(code), message, remote };
    if (sendGoAway && !this.#writeBroken) {
      this.#queueFrame(FRAME_TYPE_GO_AWAY, 0, 0, code);
      this.#drainDeadline = performance.now() + this.#drainTimeout;
      this.#drainTimer = setTimeout(() => this.#wake(), this.#drainTimeout);
    } else {
      this.#drainDeadline = 0;
    }
    this.#clearTimers();
    const err = new StreamError(code, `Cannot use stream: the session ended (${message})`, remote);
    for (const s of this.#streams.values()) s._fail(err);
    this.#streams.clear();
    for (const s of this.#accepted) s._fail(err);
    for (const w of this.#acceptWaiters) w(null);
    this.#acceptWaiters = [];
    for (const w of this.#controlWaiters) w(null);
    this.#controlWaiters = [];
    for (const w of this.#outWaiters) w();
    this.#outWaiters = [];
    const pingErr = new StreamError(code, `Cannot ping: the session ended (${message})`, remote);
    for (const p of this.#pings.values()) p.reject?.(pingErr);
    this.#pings.clear();
    this.#wake();
  }

  #clearTimers(): void {
    if (this.#chatterTimer !== undefined) clearTimeout(this.#chatterTimer);
    this.#chatterTimer = undefined;
    if (this.#heartbeatTimer !== undefined) clearInterval(this.#heartbeatTimer);
    if (this.#handshakeTimer !== undefined) clearTimeout(this.#handshakeTimer);
    this.#handshakeSignal?.removeEventListener("abort", this.#onHandshakeAbort);
    this.#handshakeSignal = undefined;
    this.#heartbeatTimer = undefined;
    this.#handshakeTimer = undefined;
  }

  async #finish(): Promise<void> {
    this.#phase = CLOSED;
    if (this.#drainTimer !== undefined) clearTimeout(this.#drainTimer);
    this.#clearTimers();
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
    await this.#readP;
    await this.#writeP;
    this.#out.clear();
    const reason = this.#reason ?? {
      code: ERROR_CODES.INTERNAL_ERROR,
      codeName: "INTERNAL_ERROR",
      message: "the loop ended",
      remote: false,
    };
    this.#log?.info(EVENTS.session_closed, {
      session: this.#label,
      code: reason.codeName,
      error: reason.code === ERROR_CODES.NORMAL ? undefined : reason.message,
      remote: reason.remote,
      bytes_in: this.#bytesIn,
      bytes_out: this.#bytesOut,
    });
    this.#resolveClosed(reason);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function formatAddr(addr: HostPort): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}
