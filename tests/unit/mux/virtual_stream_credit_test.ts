/**
 * Flow control of one VirtualStream (PROTOCOL.md §10) against a fake session
 * link that records every frame: the send window caps and splits writes, the
 * receive window is enforced and returned in WINDOW_UPDATEs at half the window.
 */
import { deepEqual, equal, ok, rejects, throws } from "node:assert/strict";
import { StreamError } from "@/mux/mod.ts";
import { type StreamLink, VirtualStream } from "@/mux/virtual_stream.ts";
import {
  ERROR_CODES,
  FLAG_RST,
  FRAME_TYPE_WINDOW_UPDATE,
  MAX_PAYLOAD,
  MAX_WINDOW,
  ProtocolError,
} from "@/tunnel/mod.ts";

interface DataCall {
  off: number;
  n: number;
  fin: boolean;
  bytes: number[];
}

class FakeLink implements StreamLink {
  data: DataCall[] = [];
  frames: { type: number; flags: number; id: number; length: number }[] = [];
  forgotten = 0;
  full = false;
  #drained: (() => void) | null = null;
  waits = 0;

  sendData(_id: number, src: Uint8Array, off: number, n: number, fin: boolean): void {
    this.data.push({ off, n, fin, bytes: n <= 8 ? Array.from(src.subarray(off, off + n)) : [] });
  }
  sendFrame(type: number, flags: number, id: number, length: number): void {
    this.frames.push({ type, flags, id, length });
  }
  outgoingFull(): boolean {
    return this.full;
  }
  waitOutgoing(): Promise<void> {
    this.waits++;
    return new Promise((resolve) => this.#drained = resolve);
  }
  drain(): void {
    this.full = false;
    const d = this.#drained;
    this.#drained = null;
    d?.();
  }
  forget(): void {
    this.forgotten++;
  }
  /** Bytes of DATA sent so far (FIN frames carry none). */
  get sent(): number {
    return this.data.reduce((a, d) => a + d.n, 0);
  }
}

function stream(link: FakeLink, sendWindow: number, receiveWindow: number): VirtualStream {
  return new VirtualStream(link, {
    id: 3,
    info: { type: "open", kind: "proxy", target: { hostname: "example.test", port: 80 } } as never,
    outbound: true,
    sendWindow,
    receiveWindow,
    remoteAddr: { hostname: "127.0.0.1", port: 1 },
    localAddr: { hostname: "127.0.0.1", port: 2 },
  });
}

/** Lets pending promise callbacks run (no timers involved). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

function isFlowError(e: unknown): boolean {
  return e instanceof ProtocolError && e.code === ERROR_CODES.FLOW_CONTROL_ERROR;
}

Deno.test("write() sends within the send window and waits for WINDOW_UPDATE for the rest", async () => {
  const link = new FakeLink();
  const s = stream(link, 3, 100);
  equal(s.stats.sendWindow, 3);
  let done = false;
  const w = s.write(new Uint8Array([1, 2, 3, 4, 5, 6, 7])).then((n) => {
    done = true;
    return n;
  });
  await settle();
  deepEqual(link.data, [{ off: 0, n: 3, fin: false, bytes: [1, 2, 3] }]);
  equal(s.stats.sendWindow, 0);
  equal(s.stats.bytesOut, 3);
  equal(done, false, "write resolved without credit");
  // A zero increment grants nothing and must not release bytes.
  s._credit(0, false);
  await settle();
  equal(link.sent, 3);
  s._credit(2, false);
  await settle();
  deepEqual(link.data[1], { off: 3, n: 2, fin: false, bytes: [4, 5] });
  equal(done, false);
  s._credit(10, false);
  equal(await w, 7);
  deepEqual(link.data[2], { off: 5, n: 2, fin: false, bytes: [6, 7] });
  equal(link.data.length, 3);
  equal(s.stats.sendWindow, 8);
  equal(s.stats.bytesOut, 7);
});

Deno.test("write() splits into DATA frames of at most MAX_PAYLOAD bytes", async () => {
  const link = new FakeLink();
  const s = stream(link, MAX_WINDOW, 100);
  const len = 2 * MAX_PAYLOAD + 10;
  equal(await s.write(new Uint8Array(len)), len);
  deepEqual(link.data.map((d) => [d.off, d.n]), [
    [0, MAX_PAYLOAD],
    [MAX_PAYLOAD, MAX_PAYLOAD],
    [2 * MAX_PAYLOAD, 10],
  ]);
  equal(s.stats.sendWindow, MAX_WINDOW - len);
  equal(s.stats.bytesOut, len);
});

Deno.test("write() of zero bytes sends nothing, and fails only after an error", async () => {
  const link = new FakeLink();
  const s = stream(link, 0, 100);
  equal(await s.write(new Uint8Array(0)), 0);
  equal(link.data.length, 0);
  s.reset();
  await rejects(s.write(new Uint8Array(0)), StreamError);
  await rejects(s.write(new Uint8Array(1)), StreamError);
  equal(link.data.length, 0);
});

Deno.test("write() waits while the session's outgoing buffer is full", async () => {
  const link = new FakeLink();
  const s = stream(link, 100, 100);
  link.full = true;
  const w = s.write(new Uint8Array([9, 8]));
  await settle();
  equal(link.data.length, 0);
  equal(link.waits, 1);
  link.drain();
  equal(await w, 2);
  deepEqual(link.data, [{ off: 0, n: 2, fin: false, bytes: [9, 8] }]);
  equal(link.waits, 1);
});

Deno.test("write() waiting for credit fails when the peer resets, without sending", async () => {
  const link = new FakeLink();
  const s = stream(link, 0, 100);
  const w = s.write(new Uint8Array([1]));
  await settle();
  s._remoteReset(ERROR_CODES.CANCEL);
  await rejects(w, (e: unknown) => e instanceof StreamError && e.remote);
  equal(link.data.length, 0);
});

Deno.test("write() after closeWrite() fails with STREAM_CLOSED", async () => {
  const link = new FakeLink();
  const s = stream(link, 100, 100);
  await s.closeWrite();
  deepEqual(link.data, [{ off: 0, n: 0, fin: true, bytes: [] }]);
  await rejects(
    s.write(new Uint8Array([1])),
    (e: unknown) => e instanceof StreamError && e.code === ERROR_CODES.STREAM_CLOSED,
  );
  equal(link.data.length, 1);
});

Deno.test("_credit() accepts a window of exactly MAX_WINDOW and rejects one byte more", () => {
  const link = new FakeLink();
  const s = stream(link, 10, 100);
  s._credit(MAX_WINDOW - 11, false);
  equal(s.stats.sendWindow, MAX_WINDOW - 1);
  s._credit(1, false);
  equal(s.stats.sendWindow, MAX_WINDOW);
  throws(() => s._credit(1, false), (e: unknown) => {
    ok(isFlowError(e));
    ok((e as Error).message.includes(`window ${MAX_WINDOW + 1} exceeds limit ${MAX_WINDOW}`));
    return true;
  });
  equal(s.stats.sendWindow, MAX_WINDOW, "a rejected update must not change the window");
});

Deno.test("_credit() with ACK marks an outbound stream acknowledged", () => {
  const link = new FakeLink();
  const s = stream(link, 10, 100);
  equal(s.acknowledged, false);
  s._credit(5, false);
  equal(s.acknowledged, false);
  s._credit(0, true);
  equal(s.acknowledged, true);
  equal(s.stats.sendWindow, 15);
});

Deno.test("_receive() accepts exactly the receive window and rejects one byte more", async () => {
  const link = new FakeLink();
  const s = stream(link, 10, 8);
  s._receive(new Uint8Array(5), false);
  s._receive(new Uint8Array(3), false);
  equal(s.stats.buffered, 8);
  throws(() => s._receive(new Uint8Array(1), false), (e: unknown) => {
    ok(isFlowError(e));
    ok((e as Error).message.includes("1 bytes exceed the remaining window of 0"));
    return true;
  });
  // An empty DATA frame needs no credit.
  s._receive(new Uint8Array(0), false);
  equal(s.stats.buffered, 8);
  equal(link.frames.length, 0);
  const buf = new Uint8Array(16);
  equal(await s.read(buf), 8);
  equal(s.stats.bytesIn, 8);
});

Deno.test("reading returns credit in one WINDOW_UPDATE once half the window is consumed", async () => {
  const link = new FakeLink();
  const s = stream(link, 10, 10); // threshold 5
  s._receive(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]), false);
  const buf = new Uint8Array(4);
  equal(await s.read(buf), 4);
  equal(link.frames.length, 0, "4 of 10 bytes is below half the window");
  equal(await s.read(new Uint8Array(1)), 1);
  deepEqual(link.frames, [{ type: FRAME_TYPE_WINDOW_UPDATE, flags: 0, id: 3, length: 5 }]);
  // The 5 returned bytes are credit again: 5 more fit, a 6th does not.
  s._receive(new Uint8Array(5), false);
  throws(() => s._receive(new Uint8Array(1), false), isFlowError);
  equal(await s.read(new Uint8Array(5)), 5);
  deepEqual(link.frames[1], { type: FRAME_TYPE_WINDOW_UPDATE, flags: 0, id: 3, length: 5 });
  equal(await s.read(new Uint8Array(3)), 3);
  equal(link.frames.length, 2);
  equal(await s.read(new Uint8Array(2)), 2);
  deepEqual(link.frames[2], { type: FRAME_TYPE_WINDOW_UPDATE, flags: 0, id: 3, length: 5 });
  equal(s.stats.bytesIn, 15);
});

Deno.test("a receive window of 1 returns every byte at once (threshold is at least 1)", async () => {
  const link = new FakeLink();
  const s = stream(link, 10, 1);
  s._receive(new Uint8Array([7]), false);
  throws(() => s._receive(new Uint8Array([8]), false), isFlowError);
  const buf = new Uint8Array(1);
  equal(await s.read(buf), 1);
  deepEqual(link.frames, [{ type: FRAME_TYPE_WINDOW_UPDATE, flags: 0, id: 3, length: 1 }]);
  s._receive(new Uint8Array([8]), false);
  equal(await s.read(buf), 1);
  equal(buf[0], 8);
  equal(link.frames.length, 2);
});

Deno.test("an odd receive window rounds its threshold down", async () => {
  const link = new FakeLink();
  const s = stream(link, 10, 7); // threshold 3
  s._receive(new Uint8Array(7), false);
  equal(await s.read(new Uint8Array(2)), 2);
  equal(link.frames.length, 0);
  equal(await s.read(new Uint8Array(1)), 1);
  deepEqual(link.frames, [{ type: FRAME_TYPE_WINDOW_UPDATE, flags: 0, id: 3, length: 3 }]);
});

Deno.test("the readable returns credit like read()", async () => {
  const link = new FakeLink();
  const s = stream(link, 10, 4); // threshold 2
  s._receive(new Uint8Array([1]), false);
  s._receive(new Uint8Array([2, 3]), false);
  const reader = s.readable.getReader();
  deepEqual(Array.from((await reader.read()).value!), [1]);
  equal(link.frames.length, 0);
  deepEqual(Array.from((await reader.read()).value!), [2, 3]);
  deepEqual(link.frames, [{ type: FRAME_TYPE_WINDOW_UPDATE, flags: 0, id: 3, length: 3 }]);
  reader.releaseLock();
});

Deno.test("no credit is returned after the peer's FIN, but the bytes are still counted", async () => {
  const link = new FakeLink();
  const s = stream(link, 10, 4);
  s._receive(new Uint8Array([1, 2, 3, 4]), true);
  equal(s.state, "remote_closed");
  equal(await s.read(new Uint8Array(4)), 4);
  equal(link.frames.length, 0);
  equal(s.stats.bytesIn, 4);
  equal(await s.read(new Uint8Array(4)), null);
});

Deno.test("DATA after the peer's FIN is a STREAM_CLOSED protocol error", () => {
  const link = new FakeLink();
  const s = stream(link, 10, 100);
  s._receive(new Uint8Array(0), true);
  throws(
    () => s._receive(new Uint8Array([1]), false),
    (e: unknown) =>
      e instanceof ProtocolError && e.code === ERROR_CODES.STREAM_CLOSED &&
      e.message.includes("already sent FIN"),
  );
});

Deno.test("after close() received DATA is dropped but still uses up the window", async () => {
  const link = new FakeLink();
  const s = stream(link, 10, 4);
  s.close();
  s._receive(new Uint8Array(3), false);
  equal(s.stats.buffered, 0);
  throws(() => s._receive(new Uint8Array(2), false), isFlowError);
  equal(await s.read(new Uint8Array(4)), null);
});

Deno.test("after a local reset received DATA is dropped and sends no WINDOW_UPDATE", () => {
  const link = new FakeLink();
  const s = stream(link, 10, 4);
  s.reset();
  deepEqual(link.frames, [
    { type: FRAME_TYPE_WINDOW_UPDATE, flags: FLAG_RST, id: 3, length: ERROR_CODES.CANCEL },
  ]);
  s._receive(new Uint8Array(4), false);
  equal(s.stats.buffered, 0);
  throws(() => s._receive(new Uint8Array(1), false), isFlowError);
  equal(link.frames.length, 1);
});

Deno.test("write() on a closed write side fails locally with STREAM_CLOSED and its reason", async () => {
  const link = new FakeLink();
  const s = stream(link, 100, 100);
  s._receive(new Uint8Array(0), true);
  await s.closeWrite();
  equal(s.state, "closed");
  const err = await s.write(new Uint8Array([1])).then(() => null, (e: unknown) => e);
  ok(err instanceof StreamError);
  equal(err.code, ERROR_CODES.STREAM_CLOSED);
  equal(err.remote, false);
  equal(err.message, "Cannot write stream 3: the write side is closed");
});

Deno.test("an empty DATA frame queues nothing: the readable's next chunk is the next bytes", async () => {
  const link = new FakeLink();
  const s = stream(link, 10, 10);
  s._receive(new Uint8Array(0), false);
  equal(s.stats.buffered, 0);
  s._receive(new Uint8Array([4, 2]), false);
  const reader = s.readable.getReader();
  deepEqual(Array.from((await reader.read()).value!), [4, 2]);
  reader.releaseLock();
});

Deno.test("DATA after the peer's RST is not delivered: the reader gets the reset error", async () => {
  const link = new FakeLink();
  const s = stream(link, 10, 10);
  s._receive(new Uint8Array([1]), false);
  s._remoteReset(ERROR_CODES.CANCEL);
  s._receive(new Uint8Array([2, 3]), false);
  equal(s.stats.buffered, 1);
  const buf = new Uint8Array(8);
  equal(await s.read(buf), 1, "bytes received before the RST stay readable");
  equal(buf[0], 1);
  await rejects(s.read(buf), (e: unknown) => e instanceof StreamError && e.remote);
});
