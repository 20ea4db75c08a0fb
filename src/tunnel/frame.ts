/**
 * Frame header codec (PROTOCOL.md §5–§8). Pure: bytes in, values out.
 *
 * @module
 */
import {
  ERROR_CODES,
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  FLAGS_ALL,
  FRAME_HEADER_SIZE,
  FRAME_TYPE_CONTROL,
  FRAME_TYPE_DATA,
  FRAME_TYPE_GO_AWAY,
  FRAME_TYPE_NAMES,
  FRAME_TYPE_PING,
  FRAME_TYPE_WINDOW_UPDATE,
  type FrameType,
  MAX_CONTROL_PAYLOAD,
  MAX_PAYLOAD,
  PROTOCOL_VERSION,
} from "./constants.ts";
import { ProtocolError } from "./protocol_error.ts";

/** A decoded frame header. */
export interface FrameHeader {
  /** Frame type code (§6). */
  type: FrameType;
  /** Flag bits (§7). */
  flags: number;
  /** Stream id; 0 is the session (§8). */
  streamId: number;
  /** Payload length (DATA, CONTROL) or a value (WINDOW_UPDATE, PING, GO_AWAY). */
  length: number;
}

/** What {@link encodeFrame} takes: any type code (it is checked), payload optional. */
export interface FrameInput {
  type: number;
  flags: number;
  streamId: number;
  /** Ignored for DATA and CONTROL (the payload's length is used). */
  length: number;
  payload?: Uint8Array;
}

/** A whole frame: header plus payload (empty for the types without one). */
export interface Frame extends FrameHeader {
  payload: Uint8Array;
}

const EMPTY = new Uint8Array(0);

/** Whether frames of `type` carry `length` payload bytes (DATA and CONTROL). */
export function hasPayload(type: number): boolean {
  return type === FRAME_TYPE_DATA || type === FRAME_TYPE_CONTROL;
}

function hex(n: number, digits: number): string {
  return "0x" + n.toString(16).padStart(digits, "0");
}

function typeName(type: number): string {
  return FRAME_TYPE_NAMES[type as FrameType] ?? hex(type, 2);
}

/**
 * Checks one header against §5–§8 without allocating. Throws a
 * {@link ProtocolError} naming the broken rule; returns nothing when valid.
 * Stream-state rules (windows, id reuse) are the session's job.
 */
export function checkFrameHeader(
  version: number,
  type: number,
  flags: number,
  streamId: number,
  length: number,
): void {
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      ERROR_CODES.PROTOCOL_ERROR,
      `Cannot decode frame: version ${version} is not supported (supported: ${PROTOCOL_VERSION})`,
    );
  }
  if ((flags & ~FLAGS_ALL) !== 0) {
    throw new ProtocolError(
      ERROR_CODES.PROTOCOL_ERROR,
      `Cannot decode frame: unknown flag bits ${hex(flags & ~FLAGS_ALL, 4)}`,
    );
  }
  switch (type) {
    case FRAME_TYPE_DATA:
      if (length > MAX_PAYLOAD) throw sizeError(length, MAX_PAYLOAD);
      if (streamId === 0) throw streamZero(type, true);
      if (flags !== 0 && flags !== FLAG_FIN) throw badFlags(type, flags);
      return;
    case FRAME_TYPE_WINDOW_UPDATE:
      if (streamId === 0) throw streamZero(type, true);
      if (flags !== 0 && flags !== FLAG_ACK && flags !== FLAG_RST) throw badFlags(type, flags);
      return;
    case FRAME_TYPE_PING:
      if (streamId !== 0) throw streamZero(type, false);
      if (flags !== FLAG_SYN && flags !== FLAG_ACK) throw badFlags(type, flags);
      return;
    case FRAME_TYPE_GO_AWAY:
      if (streamId !== 0) throw streamZero(type, false);
      if (flags !== 0) throw badFlags(type, flags);
      return;
    case FRAME_TYPE_CONTROL:
      if (length > MAX_CONTROL_PAYLOAD) throw sizeError(length, MAX_CONTROL_PAYLOAD);
      if (length === 0) {
        throw new ProtocolError(
          ERROR_CODES.PROTOCOL_ERROR,
          "Cannot decode frame: CONTROL payload is empty",
        );
      }
      if (flags !== (streamId === 0 ? 0 : FLAG_SYN)) throw badFlags(type, flags, streamId);
      return;
    default:
      throw new ProtocolError(
        ERROR_CODES.PROTOCOL_ERROR,
        `Cannot decode frame: unknown frame type ${hex(type, 2)}`,
      );
  }
}

function sizeError(length: number, limit: number): ProtocolError {
  return new ProtocolError(
    ERROR_CODES.FRAME_SIZE_ERROR,
    `Cannot decode frame: payload length ${length} exceeds limit ${limit}`,
  );
}

function streamZero(type: number, mustBeNonZero: boolean): ProtocolError {
  return new ProtocolError(
    ERROR_CODES.PROTOCOL_ERROR,
    mustBeNonZero
      ? `Cannot decode frame: ${typeName(type)} must not use stream 0`
      : `Cannot decode frame: ${typeName(type)} must use stream 0`,
  );
}

function badFlags(type: number, flags: number, streamId?: number): ProtocolError {
  const where = streamId === undefined ? "" : streamId === 0 ? " on stream 0" : " on a stream";
  return new ProtocolError(
    ERROR_CODES.PROTOCOL_ERROR,
    `Cannot decode frame: flags ${hex(flags, 4)} are not allowed on ${typeName(type)}${where}`,
  );
}

/**
 * Decodes and checks the 12-byte header at `offset` of `bytes`.
 *
 * @example
 * ```ts
 * import { decodeFrameHeader } from "@/tunnel/mod.ts";
 * const h = decodeFrameHeader(new Uint8Array([1, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 5]));
 * // { type: 0, flags: 4, streamId: 1, length: 5 }
 * ```
 */
export function decodeFrameHeader(bytes: Uint8Array, offset = 0): FrameHeader {
  if (bytes.length - offset < FRAME_HEADER_SIZE) {
    throw new RangeError(
      `Cannot decode frame header: ${
        bytes.length - offset
      } bytes given, ${FRAME_HEADER_SIZE} needed`,
    );
  }
  const o = offset;
  const version = bytes[o]!;
  const type = bytes[o + 1]!;
  const flags = (bytes[o + 2]! << 8) | bytes[o + 3]!;
  const streamId = readU32(bytes, o + 4);
  const length = readU32(bytes, o + 8);
  checkFrameHeader(version, type, flags, streamId, length);
  return { type: type as FrameType, flags, streamId, length };
}

/** Reads a big-endian u32 at `o`. */
export function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) >>> 0) + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}

/** Writes a big-endian u32 at `o`. */
export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/**
 * Writes a header into `target` at `offset` (no allocation). The caller
 * guarantees room for {@link FRAME_HEADER_SIZE} bytes.
 */
export function writeFrameHeader(
  target: Uint8Array,
  offset: number,
  type: number,
  flags: number,
  streamId: number,
  length: number,
): void {
  target[offset] = PROTOCOL_VERSION;
  target[offset + 1] = type;
  target[offset + 2] = flags >>> 8;
  target[offset + 3] = flags & 0xff;
  writeU32(target, offset + 4, streamId);
  writeU32(target, offset + 8, length);
}

/**
 * Encodes a whole frame into a new buffer, checking it as a receiver would.
 * The payload must be empty for types without one; for DATA and CONTROL the
 * header's `length` is taken from the payload.
 */
export function encodeFrame(frame: FrameInput): Uint8Array {
  const payload = frame.payload ?? EMPTY;
  const withPayload = hasPayload(frame.type);
  if (!withPayload && payload.length > 0) {
    throw new TypeError(
      `Cannot encode frame: ${typeName(frame.type)} has no payload, ${payload.length} bytes given`,
    );
  }
  const length = withPayload ? payload.length : frame.length;
  if (!Number.isInteger(length) || length < 0 || length > 0xffffffff) {
    throw new RangeError(`Cannot encode frame: length ${length} is not a u32`);
  }
  if (!Number.isInteger(frame.streamId) || frame.streamId < 0 || frame.streamId > 0xffffffff) {
    throw new RangeError(`Cannot encode frame: stream id ${frame.streamId} is not a u32`);
  }
  checkFrameHeader(PROTOCOL_VERSION, frame.type, frame.flags, frame.streamId, length);
  const out = new Uint8Array(FRAME_HEADER_SIZE + payload.length);
  writeFrameHeader(out, 0, frame.type, frame.flags, frame.streamId, length);
  out.set(payload, FRAME_HEADER_SIZE);
  return out;
}

/**
 * An incremental frame decoder that accepts arbitrary chunking. It keeps
 * references to pushed chunks (no copy) and assembles a frame only when it
 * straddles chunks, so its own buffer never exceeds one header plus
 * {@link MAX_PAYLOAD}. A bad header throws a {@link ProtocolError} as soon as
 * its 12 bytes are in, before the payload is awaited.
 *
 * @example
 * ```ts
 * import { FrameDecoder } from "@/tunnel/mod.ts";
 * const d = new FrameDecoder();
 * d.push(new Uint8Array([1, 2, 0, 1, 0, 0, 0, 0]));
 * d.next(); // null: 8 of 12 header bytes
 * d.push(new Uint8Array([0, 0, 0, 7]));
 * d.next(); // { type: 2, flags: 1, streamId: 0, length: 7, payload: Uint8Array(0) }
 * ```
 */
export class FrameDecoder {
  #chunks: Uint8Array[] = [];
  #head = 0;
  #offset = 0;
  #buffered = 0;
  #header: FrameHeader | null = null;
  readonly #headerBytes = new Uint8Array(FRAME_HEADER_SIZE);

  /** Bytes pushed and not yet returned as frames. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Adds bytes. The decoder keeps a reference; do not modify `chunk` afterwards. */
  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
  }

  /** The next whole frame, or `null` until more bytes are pushed. */
  next(): Frame | null {
    if (this.#header === null) {
      if (this.#buffered < FRAME_HEADER_SIZE) return null;
      const h = this.#take(FRAME_HEADER_SIZE, this.#headerBytes);
      this.#header = decodeFrameHeader(h);
    }
    const header = this.#header;
    const n = hasPayload(header.type) ? header.length : 0;
    if (this.#buffered < n) return null;
    this.#header = null;
    const payload = n === 0 ? EMPTY : this.#take(n, null);
    return {
      type: header.type,
      flags: header.flags,
      streamId: header.streamId,
      length: header.length,
      payload,
    };
  }

  /** Every whole frame buffered now. */
  *frames(): Generator<Frame> {
    for (let f = this.next(); f !== null; f = this.next()) yield f;
  }

  /** Checks that the input ended on a frame boundary. */
  finish(): void {
    if (this.#header !== null || this.#buffered > 0) {
      throw new ProtocolError(
        ERROR_CODES.PROTOCOL_ERROR,
        `Cannot decode frame: input ended inside a frame (${this.#buffered} bytes left over)`,
      );
    }
  }

  /** Removes `n` buffered bytes; returns a view when contiguous, else a copy. */
  #take(n: number, scratch: Uint8Array | null): Uint8Array {
    let chunk = this.#chunks[this.#head]!;
    let out: Uint8Array;
    if (chunk.length - this.#offset >= n) {
      out = chunk.subarray(this.#offset, this.#offset + n);
      this.#offset += n;
    } else {
      out = scratch ?? new Uint8Array(n);
      let filled = 0;
      while (filled < n) {
        chunk = this.#chunks[this.#head]!;
        const k = Math.min(n - filled, chunk.length - this.#offset);
        out.set(chunk.subarray(this.#offset, this.#offset + k), filled);
        filled += k;
        this.#offset += k;
        if (this.#offset === chunk.length) this.#advance();
      }
    }
    if (this.#head < this.#chunks.length && this.#offset === this.#chunks[this.#head]!.length) {
      this.#advance();
    }
    this.#buffered -= n;
    return out;
  }

  #advance(): void {
    this.#head++;
    this.#offset = 0;
    if (this.#head === this.#chunks.length) {
      this.#chunks.length = 0;
      this.#head = 0;
    } else if (this.#head > 64) {
      this.#chunks.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
