import { assertEquals, deepStrictEqual, ok, throws } from "./_assert.ts";
import {
  decodeFrameHeader,
  encodeFrame,
  ERROR_CODES,
  FLAG_ACK,
  FLAG_FIN,
  FLAG_RST,
  FLAG_SYN,
  FRAME_HEADER_SIZE,
  FRAME_TYPE_CONTROL,
  FRAME_TYPE_DATA,
  FRAME_TYPE_GO_AWAY,
  FRAME_TYPE_PING,
  FRAME_TYPE_WINDOW_UPDATE,
  FrameDecoder,
  MAX_CONTROL_PAYLOAD,
  MAX_PAYLOAD,
  ProtocolError,
  writeFrameHeader,
} from "@/tunnel/mod.ts";
import { Prng } from "./_prng.ts";

function header(version: number, type: number, flags: number, id: number, length: number) {
  const b = new Uint8Array(FRAME_HEADER_SIZE);
  writeFrameHeader(b, 0, type, flags, id, length);
  b[0] = version;
  return b;
}

function rejectsWith(bytes: Uint8Array, code: number, message: RegExp) {
  throws(() => decodeFrameHeader(bytes), (err: unknown) => {
    ok(err instanceof ProtocolError, `expected ProtocolError, got ${err}`);
    assertEquals(err.code, code);
    ok(message.test(err.message), `message "${err.message}" does not match ${message}`);
    return true;
  });
}

Deno.test("decodeFrameHeader() reads big-endian fields (PROTOCOL.md §5)", () => {
  const h = decodeFrameHeader(
    header(1, FRAME_TYPE_WINDOW_UPDATE, FLAG_ACK, 0xfffffffe, 0x00c00000),
  );
  deepStrictEqual(h, {
    type: FRAME_TYPE_WINDOW_UPDATE,
    flags: FLAG_ACK,
    streamId: 0xfffffffe,
    length: 0x00c00000,
  });
});

Deno.test("decodeFrameHeader() rejects a payload length above MAX_PAYLOAD (PROTOCOL.md §5)", () => {
  rejectsWith(
    header(1, FRAME_TYPE_DATA, 0, 1, 70000),
    ERROR_CODES.FRAME_SIZE_ERROR,
    /^Cannot decode frame: payload length 70000 exceeds limit 65536$/,
  );
  decodeFrameHeader(header(1, FRAME_TYPE_DATA, 0, 1, MAX_PAYLOAD));
});

Deno.test("decodeFrameHeader() rejects a CONTROL payload above MAX_CONTROL_PAYLOAD or empty (PROTOCOL.md §5)", () => {
  rejectsWith(
    header(1, FRAME_TYPE_CONTROL, 0, 0, MAX_CONTROL_PAYLOAD + 1),
    ERROR_CODES.FRAME_SIZE_ERROR,
    /exceeds limit/,
  );
  rejectsWith(header(1, FRAME_TYPE_CONTROL, 0, 0, 0), ERROR_CODES.PROTOCOL_ERROR, /empty/);
});

Deno.test("decodeFrameHeader() rejects a version other than 1 (PROTOCOL.md §5)", () => {
  rejectsWith(header(2, FRAME_TYPE_DATA, 0, 1, 0), ERROR_CODES.PROTOCOL_ERROR, /version 2/);
});

Deno.test("decodeFrameHeader() rejects an unknown frame type (PROTOCOL.md §6)", () => {
  rejectsWith(
    header(1, 0x7f, 0, 0, 0),
    ERROR_CODES.PROTOCOL_ERROR,
    /^Cannot decode frame: unknown frame type 0x7f$/,
  );
});

Deno.test("decodeFrameHeader() rejects types on the wrong kind of stream id (PROTOCOL.md §6)", () => {
  rejectsWith(
    header(1, FRAME_TYPE_DATA, 0, 0, 1),
    ERROR_CODES.PROTOCOL_ERROR,
    /must not use stream 0/,
  );
  rejectsWith(header(1, FRAME_TYPE_WINDOW_UPDATE, 0, 0, 1), ERROR_CODES.PROTOCOL_ERROR, /stream 0/);
  rejectsWith(
    header(1, FRAME_TYPE_PING, FLAG_SYN, 5, 1),
    ERROR_CODES.PROTOCOL_ERROR,
    /must use stream 0/,
  );
  rejectsWith(
    header(1, FRAME_TYPE_GO_AWAY, 0, 5, 0),
    ERROR_CODES.PROTOCOL_ERROR,
    /must use stream 0/,
  );
});

Deno.test("decodeFrameHeader() accepts exactly the flag combinations of PROTOCOL.md §7", () => {
  const allowed: [number, number, number][] = [
    [FRAME_TYPE_DATA, 1, 0],
    [FRAME_TYPE_DATA, 1, FLAG_FIN],
    [FRAME_TYPE_WINDOW_UPDATE, 1, 0],
    [FRAME_TYPE_WINDOW_UPDATE, 1, FLAG_ACK],
    [FRAME_TYPE_WINDOW_UPDATE, 1, FLAG_RST],
    [FRAME_TYPE_PING, 0, FLAG_SYN],
    [FRAME_TYPE_PING, 0, FLAG_ACK],
    [FRAME_TYPE_GO_AWAY, 0, 0],
    [FRAME_TYPE_CONTROL, 0, 0],
    [FRAME_TYPE_CONTROL, 1, FLAG_SYN],
  ];
  for (const type of [0, 1, 2, 3, 4]) {
    for (const id of [0, 1]) {
      for (let flags = 0; flags < 0x20; flags++) {
        const valid = allowed.some(([t, i, f]) => t === type && i === id && f === flags);
        const bytes = header(1, type, flags, id, type === FRAME_TYPE_CONTROL ? 2 : 0);
        if (valid) decodeFrameHeader(bytes);
        else {
          throws(
            () => decodeFrameHeader(bytes),
            ProtocolError,
            `type ${type} id ${id} flags ${flags}`,
          );
        }
      }
    }
  }
});

Deno.test("encodeFrame() refuses frames a receiver would reject (PROTOCOL.md §5)", () => {
  throws(
    () =>
      encodeFrame({
        type: 0,
        flags: 0,
        streamId: 1,
        length: 0,
        payload: new Uint8Array(MAX_PAYLOAD + 1),
      }),
    ProtocolError,
  );
  throws(
    () =>
      encodeFrame({ type: 2, flags: FLAG_SYN, streamId: 0, length: 1, payload: new Uint8Array(1) }),
    TypeError,
  );
});

Deno.test("FrameDecoder decodes the same frames under arbitrary chunking (PROTOCOL.md §5)", () => {
  const rng = new Prng(42);
  const frames = [];
  for (let i = 0; i < 200; i++) {
    const kind = rng.int(3);
    if (kind === 0) {
      frames.push({
        type: FRAME_TYPE_DATA,
        flags: rng.int(2) ? FLAG_FIN : 0,
        streamId: 1 + rng.int(1000),
        length: 0,
        payload: rng.bytes(rng.int(3) === 0 ? rng.int(MAX_PAYLOAD + 1) : rng.int(100)),
      });
    } else if (kind === 1) {
      frames.push({
        type: FRAME_TYPE_WINDOW_UPDATE,
        flags: 0,
        streamId: 1 + rng.int(1000),
        length: rng.u32(),
      });
    } else {
      frames.push({ type: FRAME_TYPE_PING, flags: FLAG_ACK, streamId: 0, length: rng.u32() });
    }
  }
  const encoded = frames.map((f) => encodeFrame(f));
  const all = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0));
  let off = 0;
  for (const e of encoded) {
    all.set(e, off);
    off += e.length;
  }
  for (const maxChunk of [1, 7, 13, 4096, 100000]) {
    const d = new FrameDecoder();
    const out = [];
    for (let i = 0; i < all.length;) {
      const n = 1 + rng.int(maxChunk);
      d.push(all.subarray(i, i + n));
      i += n;
      for (const f of d.frames()) out.push(encodeFrame(f));
    }
    d.finish();
    assertEquals(out.length, encoded.length);
    for (let i = 0; i < out.length; i++) deepStrictEqual(out[i], encoded[i]);
  }
});

Deno.test("FrameDecoder rejects an oversized header before its payload arrives (PROTOCOL.md §5)", () => {
  const d = new FrameDecoder();
  d.push(header(1, FRAME_TYPE_DATA, 0, 1, 0xffffffff));
  throws(
    () => d.next(),
    (err: unknown) => err instanceof ProtocolError && err.code === ERROR_CODES.FRAME_SIZE_ERROR,
  );
});

Deno.test("FrameDecoder.finish() rejects input that ends inside a frame", () => {
  const d = new FrameDecoder();
  d.push(new Uint8Array([1, 0, 0]));
  assertEquals(d.next(), null);
  throws(() => d.finish(), ProtocolError);
});
