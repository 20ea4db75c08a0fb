/**
 * One stream of a session: a `ByteConn` (read/write loops with reused buffers)
 * and, on demand, a byte `ReadableStream` plus a `WritableStream`.
 *
 * @module
 */
import type { ByteConn, HostPort } from "../transport/conn.ts";
import {
  ERROR_CODES,
  errorCodeName,
  FLAG_RST,
  FRAME_TYPE_WINDOW_UPDATE,
  MAX_PAYLOAD,
  MAX_WINDOW,
} from "../tunnel/constants.ts";
import type { OpenMessage } from "../tunnel/control.ts";
import { ProtocolError } from "../tunnel/protocol_error.ts";
import { canReceive, canSend, type StreamState, transition } from "./stream_state.ts";
import { StreamError } from "./stream_error.ts";

/** What a stream needs from its session. Internal. */
export interface StreamLink {
  /** Queues one DATA frame of `src[off, off+n)` (copied now), FIN when `fin`. */
  sendData(id: number, src: Uint8Array, off: number, n: number, fin: boolean): void;
  /** Queues a header-only frame (WINDOW_UPDATE, RST). */
  sendFrame(type: number, flags: number, id: number, length: number): void;
  /** Whether the session's outgoing buffer is above its high-water mark. */
  outgoingFull(): boolean;
  /** Resolves when the outgoing buffer drained or the session ended. */
  waitOutgoing(): Promise<void>;
  /** The stream is finished in both directions; forget its id. */
  forget(stream: VirtualStream): void;
}

/** Construction parameters. Internal. */
export interface VirtualStreamInit {
  id: number;
  info: OpenMessage;
  /** Whether we opened it (else the peer did). */
  outbound: boolean;
  /** Credit we may send now. */
  sendWindow: number;
  /** Credit granted to the peer (after any initial WINDOW_UPDATE). */
  receiveWindow: number;
  remoteAddr: HostPort;
  localAddr: HostPort;
}

const EMPTY = new Uint8Array(0);

/**
 * A multiplexed stream (PROTOCOL.md §9–§10). Use either the `ByteConn` methods
 * (`read`/`write`/`closeWrite`/`close`) or `readable`/`writable`, not both for
 * the same direction; one read and one write may be pending at a time.
 *
 * Consuming bytes (by `read` or the readable) returns credit to the peer; a
 * `write` resolves once every byte was granted credit and queued, after which
 * the caller may reuse its buffer.
 */
export class VirtualStream implements ByteConn {
  /** Stream id (§8). */
  readonly id: number;
  /** The `open` message of this stream. */
  readonly info: OpenMessage;
  /** Whether this side opened the stream. */
  readonly outbound: boolean;
  readonly #link: StreamLink;
  readonly #remoteAddr: HostPort;
  readonly #localAddr: HostPort;
  #state: StreamState = "open";
  #acknowledged = false;

  // receive side
  #queue: Uint8Array[] = [];
  #qHead = 0;
  #qBytes = 0;
  #recvCredit: number;
  readonly #updateThreshold: number;
  #unreturned = 0;
  #readWaiter: (() => void) | null = null;
  #readError: Error | null = null;
  #readClosed = false;
  #bytesIn = 0;

  // send side
  #sendCredit: number;
  #creditWaiter: (() => void) | null = null;
  #writeError: Error | null = null;
  #writing = false;
  #writeLockWaiters: (() => void)[] = [];
  #bytesOut = 0;

  #readable: ReadableStream<Uint8Array> | null = null;
  #writable: WritableStream<Uint8Array> | null = null;

  /** Internal: streams are made by `Session.open()` and `Session.accept()`. */
  constructor(link: StreamLink, init: VirtualStreamInit) {
    this.#link = link;
    this.id = init.id;
    this.info = init.info;
    this.outbound = init.outbound;
    this.#sendCredit = init.sendWindow;
    this.#recvCredit = init.receiveWindow;
    this.#updateThreshold = Math.max(1, Math.floor(init.receiveWindow / 2));
    this.#remoteAddr = init.remoteAddr;
    this.#localAddr = init.localAddr;
  }

  /** For a stream opened for a visitor: the visitor's address; else the session peer. */
  get remoteAddr(): HostPort {
    return this.#remoteAddr;
  }

  /** The session's local address. */
  get localAddr(): HostPort {
    return this.#localAddr;
  }

  /** The state of §9. */
  get state(): StreamState {
    return this.#state;
  }

  /** Whether the peer accepted the stream (WINDOW_UPDATE + ACK); always true for accepted streams. */
  get acknowledged(): boolean {
    return this.outbound ? this.#acknowledged : true;
  }

  /** Bytes read by the application and written by it, for stats. */
  get stats(): { bytesIn: number; bytesOut: number; sendWindow: number; buffered: number } {
    return {
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      sendWindow: this.#sendCredit,
      buffered: this.#qBytes,
    };
  }

  // ---- ByteConn ----

  /**
   * Reads into `p`. Resolves to the byte count, or `null` after the peer's FIN
   * (or after a local `close()`). Rejects with a {@link StreamError} after the
   * bytes received before a reset or the end of the session.
   */
  async read(p: Uint8Array): Promise<number | null> {
    while (this.#qBytes === 0) {
      if (this.#readClosed) return null;
      if (this.#readError !== null) throw this.#readError;
      if (!canReceive(this.#state)) return null;
      if (this.#readWaiter !== null) {
        throw new TypeError(`Cannot read stream ${this.id}: another read is pending`);
      }
      await new Promise<void>((resolve) => this.#readWaiter = resolve);
    }
    if (p.length === 0) return 0;
    const n = this.#copyOut(p);
    this.#consumed(n);
    return n;
  }

  /**
   * Writes all of `p` as DATA frames of at most 64 KiB, waiting for credit and
   * for room in the session's outgoing buffer. Resolves to `p.length`.
   */
  async write(p: Uint8Array): Promise<number> {
    await this.#lockWrite();
    try {
      let off = 0;
      const len = p.length;
      if (len === 0 && this.#writeError !== null) throw this.#writeError;
      while (off < len) {
        if (this.#writeError !== null) throw this.#writeError;
        if (!canSend(this.#state)) {
          throw new StreamError(
            ERROR_CODES.STREAM_CLOSED,
            `Cannot write stream ${this.id}: the write side is closed`,
            false,
          );
        }
        if (this.#sendCredit === 0) {
          await new Promise<void>((resolve) => this.#creditWaiter = resolve);
          continue;
        }
        if (this.#link.outgoingFull()) {
          await this.#link.waitOutgoing();
          continue;
        }
        const n = Math.min(len - off, this.#sendCredit, MAX_PAYLOAD);
        this.#link.sendData(this.id, p, off, n, false);
        this.#sendCredit -= n;
        this.#bytesOut += n;
        off += n;
      }
      return len;
    } finally {
      this.#unlockWrite();
    }
  }

  /** Half-closes: sends FIN after every byte already written (§9). */
  async closeWrite(): Promise<void> {
    await this.#lockWrite();
    try {
      if (this.#writeError !== null) throw this.#writeError;
      if (!canSend(this.#state)) return;
      this.#sendFin();
    } finally {
      this.#unlockWrite();
    }
  }

  /**
   * Closes both directions: FIN after the bytes written so far, then RST
   * `CANCEL` if the peer has not finished sending (so its writes fail). A
   * write still waiting for credit is abandoned with RST. Pending and later
   * reads resolve `null`. Safe to call twice.
   */
  close(): void {
    this.#readClosed = true;
    this.#discardQueue();
    this.#wakeReader();
    if (this.#state === "reset" || this.#state === "closed") return;
    if (this.#writing) {
      this.#reset(ERROR_CODES.CANCEL, `Cannot write stream ${this.id}: the stream was closed`);
      return;
    }
    if (canSend(this.#state)) this.#sendFin();
    if (this.#state === "local_closed") {
      this.#reset(ERROR_CODES.CANCEL, `Cannot write stream ${this.id}: the stream was closed`);
    }
    if (this.#writeError === null) {
      this.#writeError = new StreamError(
        ERROR_CODES.STREAM_CLOSED,
        `Cannot write stream ${this.id}: the stream was closed`,
        false,
      );
    }
  }

  /** Aborts both directions with RST (`code`, default `CANCEL`). */
  reset(code: number = ERROR_CODES.CANCEL): void {
    this.#reset(
      code,
      `Cannot use stream ${this.id}: it was reset locally (${errorCodeName(code)})`,
    );
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- Web Streams ----

  /**
   * A byte stream of the received data, created on first use. Reading pulls
   * from the stream (returning credit); cancelling sends RST `CANCEL`.
   */
  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable !== null) return this.#readable;
    this.#readable = new ReadableStream({
      type: "bytes",
      pull: async (controller) => {
        const req = controller.byobRequest;
        if (req?.view) {
          const view = new Uint8Array(req.view.buffer, req.view.byteOffset, req.view.byteLength);
          const n = await this.read(view);
          if (n === null) {
            controller.close();
            req.respond(0);
          } else {
            req.respond(n);
          }
          return;
        }
        const chunk = await this.#readChunk();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      },
      cancel: () => {
        this.#reset(ERROR_CODES.CANCEL, `Cannot use stream ${this.id}: the readable was cancelled`);
      },
    }, { highWaterMark: 0 });
    return this.#readable;
  }

  /**
   * A writable over {@link VirtualStream.write}; `close()` sends FIN, `abort()`
   * sends RST `CANCEL`. Created on first use.
   */
  get writable(): WritableStream<Uint8Array> {
    if (this.#writable !== null) return this.#writable;
    this.#writable = new WritableStream<Uint8Array>({
      write: async (chunk) => {
        await this.write(chunk);
      },
      close: () => this.closeWrite(),
      abort: () => {
        this.#reset(ERROR_CODES.CANCEL, `Cannot use stream ${this.id}: the writable was aborted`);
      },
    });
    return this.#writable;
  }

  // ---- called by the session loop ----

  /** DATA arrived. Throws a ProtocolError on a window or state violation. */
  _receive(payload: Uint8Array, fin: boolean): void {
    const n = payload.length;
    if (n > 0) {
      if (transition(this.#state, "recv_data") === "peer_error") {
        throw new ProtocolError(
          ERROR_CODES.STREAM_CLOSED,
          `Cannot accept DATA on stream ${this.id}: the peer already sent FIN`,
        );
      }
      if (n > this.#recvCredit) {
        throw new ProtocolError(
          ERROR_CODES.FLOW_CONTROL_ERROR,
          `Cannot accept DATA on stream ${this.id}: ${n} bytes exceed the remaining window of ${this.#recvCredit}`,
        );
      }
      this.#recvCredit -= n;
      if (!this.#readClosed && this.#state !== "reset") {
        this.#queue.push(payload);
        this.#qBytes += n;
      }
    }
    if (fin) {
      const next = transition(this.#state, "recv_fin");
      if (next === "peer_error") {
        throw new ProtocolError(
          ERROR_CODES.STREAM_CLOSED,
          `Cannot accept FIN on stream ${this.id}: the peer already sent FIN`,
        );
      }
      if (next !== "local_error") this.#state = next;
      this.#maybeDone();
    }
    this.#wakeReader();
  }

  /** WINDOW_UPDATE arrived. Throws a ProtocolError above MAX_WINDOW. */
  _credit(increment: number, ack: boolean): void {
    if (ack) this.#acknowledged = true;
    if (this.#sendCredit + increment > MAX_WINDOW) {
      throw new ProtocolError(
        ERROR_CODES.FLOW_CONTROL_ERROR,
        `Cannot accept WINDOW_UPDATE on stream ${this.id}: window ${
          this.#sendCredit + increment
        } exceeds limit ${MAX_WINDOW}`,
      );
    }
    this.#sendCredit += increment;
    if (increment > 0) this.#wakeWriter();
  }

  /** RST arrived with `code`. */
  _remoteReset(code: number): void {
    if (this.#state === "reset" || this.#state === "closed") return;
    const name = errorCodeName(code);
    const readWasOpen = canReceive(this.#state);
    this.#state = "reset";
    if (this.#writeError === null) {
      this.#writeError = new StreamError(
        code,
        `Cannot write stream ${this.id}: reset by peer (${name})`,
        true,
      );
    }
    if (this.#readError === null && readWasOpen) {
      this.#readError = new StreamError(
        code,
        `Cannot read stream ${this.id}: reset by peer (${name})`,
        true,
      );
    }
    this.#wakeReader();
    this.#wakeWriter();
    this.#link.forget(this);
  }

  /** The session ended: fail what is still open. */
  _fail(error: StreamError): void {
    if (this.#writeError === null) this.#writeError = error;
    if (this.#readError === null && canReceive(this.#state)) this.#readError = error;
    if (this.#state !== "closed") this.#state = "reset";
    this.#wakeReader();
    this.#wakeWriter();
  }

  // ---- internals ----

  #sendFin(): void {
    const next = transition(this.#state, "send_fin");
    if (next === "local_error" || next === "peer_error") return;
    this.#link.sendData(this.id, EMPTY, 0, 0, true);
    this.#state = next;
    this.#maybeDone();
  }

  #reset(code: number, message: string): void {
    this.#readClosed = true;
    this.#discardQueue();
    if (this.#writeError === null) {
      this.#writeError = new StreamError(code, message, false);
    }
    if (this.#state !== "reset" && this.#state !== "closed") {
      this.#state = "reset";
      this.#link.sendFrame(FRAME_TYPE_WINDOW_UPDATE, FLAG_RST, this.id, code);
      this.#link.forget(this);
    }
    this.#wakeReader();
    this.#wakeWriter();
  }

  #maybeDone(): void {
    if (this.#state === "closed") this.#link.forget(this);
  }

  #copyOut(p: Uint8Array): number {
    let n = 0;
    while (n < p.length && this.#qBytes > 0) {
      const chunk = this.#queue[this.#qHead]!;
      const k = Math.min(chunk.length, p.length - n);
      if (k === chunk.length) {
        p.set(chunk, n);
        this.#queue[this.#qHead++] = EMPTY;
      } else {
        p.set(chunk.subarray(0, k), n);
        this.#queue[this.#qHead] = chunk.subarray(k);
      }
      n += k;
      this.#qBytes -= k;
    }
    if (this.#qBytes === 0) {
      this.#queue.length = 0;
      this.#qHead = 0;
    } else if (this.#qHead > 1024) {
      this.#queue.splice(0, this.#qHead);
      this.#qHead = 0;
    }
    return n;
  }

  async #readChunk(): Promise<Uint8Array | null> {
    while (this.#qBytes === 0) {
      if (this.#readClosed) return null;
      if (this.#readError !== null) throw this.#readError;
      if (!canReceive(this.#state)) return null;
      await new Promise<void>((resolve) => this.#readWaiter = resolve);
    }
    const head = this.#queue[this.#qHead]!;
    // Byte streams transfer what they enqueue, so hand out a copy, never a view
    // of the session's shared read buffer.
    const out = head.slice();
    this.#queue[this.#qHead++] = EMPTY;
    this.#qBytes -= out.length;
    if (this.#qBytes === 0) {
      this.#queue.length = 0;
      this.#qHead = 0;
    }
    this.#consumed(out.length);
    return out;
  }

  #consumed(n: number): void {
    this.#bytesIn += n;
    if (!canReceive(this.#state)) return;
    this.#unreturned += n;
    if (this.#unreturned >= this.#updateThreshold) {
      this.#link.sendFrame(FRAME_TYPE_WINDOW_UPDATE, 0, this.id, this.#unreturned);
      this.#recvCredit += this.#unreturned;
      this.#unreturned = 0;
    }
  }

  #discardQueue(): void {
    this.#queue.length = 0;
    this.#qHead = 0;
    this.#qBytes = 0;
  }

  #wakeReader(): void {
    const w = this.#readWaiter;
    if (w !== null) {
      this.#readWaiter = null;
      w();
    }
  }

  #wakeWriter(): void {
    const w = this.#creditWaiter;
    if (w !== null) {
      this.#creditWaiter = null;
      w();
    }
  }

  #lockWrite(): Promise<void> | void {
    if (!this.#writing) {
      this.#writing = true;
      return;
    }
    return new Promise<void>((resolve) => this.#writeLockWaiters.push(resolve));
  }

  #unlockWrite(): void {
    const next = this.#writeLockWaiters.shift();
    if (next !== undefined) next();
    else this.#writing = false;
  }
}
