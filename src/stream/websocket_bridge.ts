/**
 * Relays bytes between a WebSocket and a TCP-like connection: each TCP read
 * becomes one binary message, each message (binary or text) becomes bytes.
 *
 * Back-pressure: reading the TCP side pauses while the socket's
 * `bufferedAmount` is above a high-water mark. The WebSocket API cannot pause
 * incoming messages, so messages waiting for a slow TCP peer are bounded by
 * `maxQueuedBytes`; past it the bridge ends with close code {@link WS_CLOSE_QUEUE_FULL}.
 *
 * Closing: a WebSocket has no half-close. When the TCP side ends, the bridge
 * waits until queued messages are sent and closes the socket (1000); when the
 * socket closes, every message received so far is written to TCP, which is
 * then half-closed and closed.
 *
 * @module
 */
import type { ByteConn } from "../transport/conn.ts";
import { writeAll } from "../transport/conn.ts";
import { IdleTimer } from "../proxy/_deadline.ts";

/** Pause reading TCP while this many bytes wait in the WebSocket. */
export const WS_HIGH_WATER_BYTES = 1024 * 1024;
/** Messages waiting for the TCP side, at most. */
export const WS_MAX_QUEUED_BYTES = 8 * 1024 * 1024;
/** TCP read size, and so the largest message the bridge sends. */
export const WS_READ_BUFFER_BYTES = 64 * 1024;
/**
 * Close code when messages pile up past `maxQueuedBytes` (scripts may not send
 * 1009, so the private-use range mirrors it).
 */
export const WS_CLOSE_QUEUE_FULL = 4009;
/** Close code when the TCP side fails (mirrors 1011). */
export const WS_CLOSE_RELAY_ERROR = 4011;
/** How long a closing handshake may take before the bridge stops waiting. */
export const WS_CLOSE_WAIT_MS = 3_000;

/** Options for {@link bridgeWebSocket}. */
export interface WebSocketBridgeOptions {
  /** End after this long with no bytes either way. */
  idleTimeoutMs: number;
  /** Aborting ends the bridge and closes both sides. */
  signal?: AbortSignal | undefined;
  /** @default WS_HIGH_WATER_BYTES */
  highWaterBytes?: number | undefined;
  /** @default WS_MAX_QUEUED_BYTES */
  maxQueuedBytes?: number | undefined;
  /** @default WS_READ_BUFFER_BYTES */
  bufferSize?: number | undefined;
}

/** What a finished bridge did. */
export interface WebSocketBridgeResult {
  /** Bytes from WebSocket messages written to the connection. */
  bytesFromSocket: number;
  /** Bytes read from the connection and sent as messages. */
  bytesToSocket: number;
  idleTimeout: boolean;
  /** The first failure (not set for a clean end, an idle timeout or an abort). */
  error: Error | undefined;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Relays until either side ends (see the module doc), an error, the idle
 * timeout or `signal`. `ws` may still be connecting. Takes ownership of both:
 * they are closed when it resolves. Never rejects.
 */
export async function bridgeWebSocket(
  ws: WebSocket,
  conn: ByteConn,
  options: WebSocketBridgeOptions,
): Promise<WebSocketBridgeResult> {
  const highWater = options.highWaterBytes ?? WS_HIGH_WATER_BYTES;
  const maxQueued = options.maxQueuedBytes ?? WS_MAX_QUEUED_BYTES;
  const bufferSize = options.bufferSize ?? WS_READ_BUFFER_BYTES;
  ws.binaryType = "arraybuffer";

  const queue: Uint8Array[] = [];
  let queued = 0;
  let wsClosed = ws.readyState === WebSocket.CLOSED;
  let wsError: string | undefined;
  let stopped = false;
  let error: Error | undefined;
  let bytesFromSocket = 0;
  let bytesToSocket = 0;
  let wake: (() => void) | undefined;
  let onClosed: (() => void) | undefined;
  const closed = new Promise<void>((resolve) => onClosed = resolve);
  if (wsClosed) onClosed!();

  const stop = (err?: Error, code = 1000) => {
    if (err !== undefined) error ??= err;
    if (stopped) return;
    stopped = true;
    if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
      try {
        ws.close(
          err === undefined ? 1000 : code,
          err === undefined ? undefined : err.message.slice(0, 120),
        );
      } catch {
        // already closing
      }
    }
    try {
      conn.close();
    } catch {
      // already closed
    }
    wake?.();
  };
  const idle = new IdleTimer(options.idleTimeoutMs, () => stop());

  const onMessage = (ev: MessageEvent) => {
    if (stopped) return;
    const data = typeof ev.data === "string"
      ? new TextEncoder().encode(ev.data)
      : new Uint8Array(ev.data as ArrayBuffer);
    if (data.length === 0) return;
    queued += data.length;
    if (queued > maxQueued) {
      stop(
        new RangeError(
          `Cannot relay WebSocket message: more than ${maxQueued} bytes wait for the TCP side`,
        ),
        WS_CLOSE_QUEUE_FULL,
      );
      return;
    }
    queue.push(data);
    idle.touch();
    wake?.();
  };
  const onError = (ev: Event) => {
    wsError ??= (ev as ErrorEvent).message || "WebSocket error";
  };
  const onClose = (ev: CloseEvent) => {
    wsClosed = true;
    if (!ev.wasClean && wsError !== undefined && !stopped) {
      error ??= new Error(`Cannot relay WebSocket: ${wsError}`);
    }
    onClosed!();
    wake?.();
  };
  ws.addEventListener("message", onMessage);
  ws.addEventListener("error", onError);
  ws.addEventListener("close", onClose);
  const signal = options.signal;
  const onAbort = () => stop();
  if (signal?.aborted) stop();
  signal?.addEventListener("abort", onAbort, { once: true });

  // WebSocket -> connection
  const fromSocket = async () => {
    try {
      while (true) {
        const chunk = queue.shift();
        if (chunk !== undefined) {
          await writeAll(conn, chunk);
          queued -= chunk.length; // counted until written: it is still held
          bytesFromSocket += chunk.length;
          continue;
        }
        if (wsClosed || stopped) break;
        await new Promise<void>((resolve) => wake = resolve);
        wake = undefined;
      }
      if (!stopped) {
        try {
          await conn.closeWrite();
        } catch {
          // the peer is gone already
        }
      }
    } catch (err) {
      if (!stopped) stop(err instanceof Error ? err : new Error(String(err)), WS_CLOSE_RELAY_ERROR);
    }
    stop();
  };

  // connection -> WebSocket
  const toSocket = async () => {
    if (ws.readyState === WebSocket.CONNECTING) {
      await new Promise<void>((resolve) => {
        const done = () => {
          ws.removeEventListener("open", done);
          resolve();
        };
        ws.addEventListener("open", done);
        closed.then(done);
      });
    }
    const buf = new Uint8Array(bufferSize);
    try {
      while (!stopped && ws.readyState === WebSocket.OPEN) {
        const n = await conn.read(buf);
        if (n === null) break;
        idle.touch();
        if (ws.readyState !== WebSocket.OPEN) break;
        ws.send(buf.slice(0, n));
        bytesToSocket += n;
        while (ws.bufferedAmount > highWater && ws.readyState === WebSocket.OPEN && !stopped) {
          await delay(5);
        }
      }
      // End of the TCP side: let queued messages go, then close the socket.
      while (ws.bufferedAmount > 0 && ws.readyState === WebSocket.OPEN && !stopped) {
        await delay(5);
      }
      if (!stopped && ws.readyState === WebSocket.OPEN) ws.close(1000);
    } catch (err) {
      if (!stopped) stop(err instanceof Error ? err : new Error(String(err)), WS_CLOSE_RELAY_ERROR);
    }
  };

  await Promise.all([fromSocket(), toSocket()]);
  // Wait (bounded) for the closing handshake so that the socket's resources go.
  if (!wsClosed) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([closed, new Promise<void>((r) => timer = setTimeout(r, WS_CLOSE_WAIT_MS))]);
    clearTimeout(timer);
  }
  idle.cancel();
  signal?.removeEventListener("abort", onAbort);
  ws.removeEventListener("message", onMessage);
  ws.removeEventListener("error", onError);
  ws.removeEventListener("close", onClose);
  return { bytesFromSocket, bytesToSocket, idleTimeout: idle.fired, error };
}
