import { equal, ok, rejects } from "node:assert/strict";
import {
  encodeControlMessage,
  encodeFrame,
  ERROR_CODES,
  FLAG_ACK,
  FLAG_FIN,
  FLAG_SYN,
  FRAME_TYPE_CONTROL,
  FRAME_TYPE_DATA,
  FRAME_TYPE_GO_AWAY,
  FRAME_TYPE_PING,
  FRAME_TYPE_WINDOW_UPDATE,
  FrameDecoder,
  INITIAL_WINDOW,
  writeFrameHeader,
} from "@/tunnel/mod.ts";
import { Session, type SessionOptions, StreamError } from "@/mux/mod.ts";
import { Logger, MemorySink } from "@/observability/mod.ts";
import { createPipe, type PipeConn } from "@/transport/pipe.ts";
import { PIPE, TCP } from "../transport/_pairs.ts";
import {
  barrier,
  readAll,
  receivePattern,
  sendPattern,
  sessionPair,
  str,
  text,
} from "./_helpers.ts";
import { waitFor } from "../../_wait.ts";

/** A session (server role) facing a hand-written peer. */
async function withRawPeer(
  fn: (ctx: { session: Session; raw: PipeConn; sink: MemorySink }) => Promise<void>,
  options: Partial<SessionOptions> = {},
): Promise<void> {
  const [a, raw] = createPipe();
  const sink = new MemorySink();
  const session = new Session(a, {
    role: "server",
    heartbeatIntervalMs: 0,
    receiveWindow: INITIAL_WINDOW,
    log: new Logger({ format: "json", sink }),
    ...options,
  });
  try {
    await fn({ session, raw, sink });
  } finally {
    await session.close();
    raw.close();
  }
}

const openProxy = (id: number) =>
  encodeFrame({
    type: FRAME_TYPE_CONTROL,
    flags: FLAG_SYN,
    streamId: id,
    length: 0,
    payload: encodeControlMessage({ type: "open", kind: "proxy" }),
  });

const data = (id: number, n: number, flags = 0) =>
  encodeFrame({
    type: FRAME_TYPE_DATA,
    flags,
    streamId: id,
    length: 0,
    payload: new Uint8Array(n),
  });

/** Reads the raw side until a GO_AWAY arrives; resolves to its code (or null at end of stream). */
async function readGoAway(raw: PipeConn): Promise<number | null> {
  const d = new FrameDecoder();
  const buf = new Uint8Array(65536);
  for (let n = await raw.read(buf); n !== null; n = await raw.read(buf)) {
    d.push(buf.slice(0, n));
    for (const f of d.frames()) if (f.type === FRAME_TYPE_GO_AWAY) return f.length;
  }
  return null;
}

/** Sends `bytes`, then checks GO_AWAY `code`, the close reason and the log line. */
async function expectProtocolError(
  ctx: { session: Session; raw: PipeConn; sink: MemorySink },
  bytes: Uint8Array[],
  code: number,
  message: RegExp,
): Promise<void> {
  const goAway = readGoAway(ctx.raw);
  for (const b of bytes) await ctx.raw.write(b).catch(() => 0);
  equal(await goAway, code);
  const reason = await ctx.session.closed;
  equal(reason.code, code);
  equal(reason.remote, false);
  ok(message.test(reason.message), `"${reason.message}" does not match ${message}`);
  const line = ctx.sink.lines.map((l) => JSON.parse(l)).find((l) =>
    l.event === "session_protocol_error"
  );
  ok(line !== undefined, "a session_protocol_error log line");
  ok(message.test(line.error));
}

Deno.test("Session ends with FLOW_CONTROL_ERROR when DATA exceeds the window (PROTOCOL.md §10)", async () => {
  await withRawPeer(async (ctx) => {
    const frames = [openProxy(1)];
    for (let sent = 0; sent <= INITIAL_WINDOW; sent += 65536) frames.push(data(1, 65536));
    await expectProtocolError(
      ctx,
      frames,
      ERROR_CODES.FLOW_CONTROL_ERROR,
      /exceed the remaining window of 0/,
    );
  });
});

Deno.test("Session ends with FLOW_CONTROL_ERROR when a WINDOW_UPDATE raises credit above MAX_WINDOW (PROTOCOL.md §10)", async () => {
  await withRawPeer(async (ctx) => {
    const wu = encodeFrame({
      type: FRAME_TYPE_WINDOW_UPDATE,
      flags: 0,
      streamId: 1,
      length: 0xffff0000,
    });
    await expectProtocolError(
      ctx,
      [openProxy(1), wu],
      ERROR_CODES.FLOW_CONTROL_ERROR,
      /exceeds limit 16777216/,
    );
  });
});

Deno.test("Session ends with PROTOCOL_ERROR on an unknown frame type (PROTOCOL.md §6)", async () => {
  await withRawPeer(async (ctx) => {
    const bad = new Uint8Array(12);
    writeFrameHeader(bad, 0, 0x7f, 0, 0, 0);
    await expectProtocolError(ctx, [bad], ERROR_CODES.PROTOCOL_ERROR, /unknown frame type 0x7f/);
  });
});

Deno.test("Session ends with FRAME_SIZE_ERROR on an oversized frame before reading its payload (PROTOCOL.md §5)", async () => {
  await withRawPeer(async (ctx) => {
    const bad = new Uint8Array(12);
    writeFrameHeader(bad, 0, FRAME_TYPE_DATA, 0, 1, 70000);
    await expectProtocolError(
      ctx,
      [openProxy(1), bad],
      ERROR_CODES.FRAME_SIZE_ERROR,
      /payload length 70000 exceeds limit 65536/,
    );
  });
});

Deno.test("Session ends with STREAM_ID_ERROR when the client opens an even id (PROTOCOL.md §8)", async () => {
  await withRawPeer(async (ctx) => {
    await expectProtocolError(
      ctx,
      [openProxy(2)],
      ERROR_CODES.STREAM_ID_ERROR,
      /must open odd ids/,
    );
  });
});

Deno.test("Session ends with STREAM_ID_ERROR when a stream id is reused (PROTOCOL.md §8)", async () => {
  await withRawPeer(async (ctx) => {
    await expectProtocolError(
      ctx,
      [openProxy(3), openProxy(3)],
      ERROR_CODES.STREAM_ID_ERROR,
      /ids must increase \(last was 3\)/,
    );
  });
});

Deno.test("Session ends with STREAM_ID_ERROR on DATA for a stream never opened (PROTOCOL.md §8)", async () => {
  await withRawPeer(async (ctx) => {
    await expectProtocolError(
      ctx,
      [openProxy(1), data(7, 10)],
      ERROR_CODES.STREAM_ID_ERROR,
      /stream 7: it was never opened/,
    );
  });
});

Deno.test("Session ends with STREAM_CLOSED on DATA after FIN (PROTOCOL.md §9)", async () => {
  await withRawPeer(async (ctx) => {
    await expectProtocolError(
      ctx,
      [openProxy(1), data(1, 3, FLAG_FIN), data(1, 3)],
      ERROR_CODES.STREAM_CLOSED,
      /already sent FIN/,
    );
  });
});

Deno.test("Session ignores frames for a stream it already reset (PROTOCOL.md §8)", async () => {
  await withRawPeer(async (ctx) => {
    await ctx.raw.write(openProxy(1));
    const s = (await ctx.session.accept())!;
    s.reset();
    await ctx.raw.write(data(1, 100));
    const ping = encodeFrame({ type: FRAME_TYPE_PING, flags: FLAG_SYN, streamId: 0, length: 42 });
    await ctx.raw.write(ping);
    // The PING is answered, so the DATA before it was ignored, not an error.
    const d = new FrameDecoder();
    const buf = new Uint8Array(4096);
    let answered = false;
    while (!answered) {
      const n = await ctx.raw.read(buf);
      if (n === null) break;
      d.push(buf.slice(0, n));
      for (const f of d.frames()) {
        if (f.type === FRAME_TYPE_PING && f.flags === FLAG_ACK && f.length === 42) answered = true;
      }
    }
    ok(answered);
    ok(ctx.session.isOpen);
  });
});

Deno.test("Session ends with PROTOCOL_ERROR on stream frames before authentication (PROTOCOL.md §4)", async () => {
  await withRawPeer(async (ctx) => {
    await expectProtocolError(
      ctx,
      [openProxy(1)],
      ERROR_CODES.PROTOCOL_ERROR,
      /before authentication/,
    );
  }, { requireAuth: true });
});

Deno.test("Session ends with HANDSHAKE_TIMEOUT when auth_ok never comes (PROTOCOL.md §4)", async () => {
  await withRawPeer(async (ctx) => {
    equal(await readGoAway(ctx.raw), ERROR_CODES.HANDSHAKE_TIMEOUT);
    equal((await ctx.session.closed).code, ERROR_CODES.HANDSHAKE_TIMEOUT);
  }, { requireAuth: true, handshakeTimeoutMs: 100 });
});

Deno.test("Session: with handshakeSignal, aborting the caller's deadline ends the handshake with HANDSHAKE_TIMEOUT", async () => {
  const deadline = new AbortController();
  await withRawPeer(async (ctx) => {
    deadline.abort();
    equal(await readGoAway(ctx.raw), ERROR_CODES.HANDSHAKE_TIMEOUT);
    equal((await ctx.session.closed).code, ERROR_CODES.HANDSHAKE_TIMEOUT);
  }, { requireAuth: true, handshakeSignal: deadline.signal });
});

Deno.test("Session: a bad frame ends only that session; another session keeps working (PROTOCOL.md §16)", async () => {
  await using good = await sessionPair(PIPE);
  await withRawPeer(async (ctx) => {
    await expectProtocolError(
      ctx,
      [new Uint8Array(12).fill(0xee)],
      ERROR_CODES.PROTOCOL_ERROR,
      /version 238/,
    );
  });
  const s = await good.client.open({ type: "open", kind: "proxy" });
  await s.write(text("still here"));
  await s.closeWrite();
  equal(str(await readAll((await good.server.accept())!)), "still here");
});

Deno.test("Session answers a ping while a writer is blocked on credit (PROTOCOL.md §12)", async () => {
  await using pair = await sessionPair(PIPE);
  const s = await pair.client.open({ type: "open", kind: "proxy" });
  let done = false;
  const writing = s.write(new Uint8Array(4 * 1024 * 1024)).then(() => done = true, () => {});
  const t = (await pair.server.accept())!;
  const rtt = await pair.client.ping();
  ok(rtt >= 0 && rtt < 5000, `rtt ${rtt}`);
  await barrier(pair);
  equal(done, false, "the write waits for credit");
  equal(s.stats.sendWindow, 0);
  equal(t.stats.buffered, 1024 * 1024, "exactly the receive window is in flight");
  equal(pair.client.stats().rttMs !== null, true);
  t.close();
  await writing;
});

Deno.test("Session go-away lets open streams finish and refuses new ones on both sides (PROTOCOL.md §13)", async () => {
  await using pair = await sessionPair(TCP);
  const s = await pair.client.open({ type: "open", kind: "proxy" });
  const t = (await pair.server.accept())!;
  const receiving = receivePattern(t);
  const total = 8 * 1024 * 1024;
  const sending = sendPattern(s, total, 65536);
  pair.server.goAway();
  await barrier(pair); // the client has handled the GO_AWAY queued before the PONG
  ok(pair.client.goAwayReceived);
  await rejects(
    pair.client.open({ type: "open", kind: "proxy" }),
    (e: unknown) => e instanceof StreamError && e.code === ERROR_CODES.REFUSED_STREAM && e.remote,
  );
  await rejects(
    pair.server.open({ type: "open", kind: "proxy" }),
    (e: unknown) => e instanceof StreamError && e.code === ERROR_CODES.REFUSED_STREAM,
  );
  await sending;
  equal(await receiving, total);
  ok(pair.client.isOpen && pair.server.isOpen);
});

Deno.test("Session refuses streams above maxStreams with RST REFUSED_STREAM (PROTOCOL.md §14)", async () => {
  await using pair = await sessionPair(PIPE, {}, { maxStreams: 2 });
  const a = await pair.client.open({ type: "open", kind: "proxy" });
  const b = await pair.client.open({ type: "open", kind: "proxy" });
  const c = await pair.client.open({ type: "open", kind: "proxy" });
  await barrier(pair);
  ok(a.acknowledged && b.acknowledged);
  equal(c.acknowledged, false);
  await rejects(
    c.write(text("x")),
    (e: unknown) => e instanceof StreamError && e.code === ERROR_CODES.REFUSED_STREAM,
  );
  equal(pair.server.stats().streams, 2);
});

Deno.test("Session ends every stream with HEARTBEAT_TIMEOUT on a black-holed link (PROTOCOL.md §12)", async () => {
  const [a, hole] = createPipe({ capacity: 1024 });
  const sink = new MemorySink();
  const session = new Session(a, {
    role: "client",
    heartbeatIntervalMs: 50,
    heartbeatTimeoutMs: 200,
    drainTimeoutMs: 50,
    log: new Logger({ format: "json", sink }),
  });
  try {
    const t0 = performance.now();
    const s = await session.open({ type: "open", kind: "proxy" });
    const reading = s.read(new Uint8Array(10));
    // More than the initial window: the write must wait for credit that never comes.
    const writing = s.write(new Uint8Array(2 * INITIAL_WINDOW));
    await rejects(
      reading,
      (e: unknown) => e instanceof StreamError && e.code === ERROR_CODES.HEARTBEAT_TIMEOUT,
    );
    await rejects(
      writing,
      (e: unknown) => e instanceof StreamError && e.code === ERROR_CODES.HEARTBEAT_TIMEOUT,
    );
    const reason = await session.closed;
    equal(reason.code, ERROR_CODES.HEARTBEAT_TIMEOUT);
    const ms = performance.now() - t0;
    ok(ms >= 200 && ms < 3000, `detected after ${ms} ms`);
    ok(sink.lines.some((l) => JSON.parse(l).event === "heartbeat_timeout"));
  } finally {
    await session.close();
    hole.close();
  }
});

Deno.test("Session keeps a busy session alive with heartbeats and measures RTT (PROTOCOL.md §12)", async () => {
  await using pair = await sessionPair(PIPE, { heartbeatIntervalMs: 20, heartbeatTimeoutMs: 200 }, {
    heartbeatIntervalMs: 20,
    heartbeatTimeoutMs: 200,
  });
  const s = await pair.client.open({ type: "open", kind: "proxy" });
  const t = (await pair.server.accept())!;
  const receiving = receivePattern(t);
  await sendPattern(s, 16 * 1024 * 1024);
  equal(await receiving, 16 * 1024 * 1024);
  // Idle for longer than the 200 ms heartbeat timeout, measured in heartbeat
  // frames (one ping and one pong a side per 20 ms interval): still open.
  const before = pair.client.stats().framesIn;
  await waitFor(
    () => pair.client.stats().framesIn - before >= 24 || !pair.client.isOpen,
    "12 heartbeat intervals",
  );
  ok(pair.client.isOpen && pair.server.isOpen);
  ok(pair.client.stats().rttMs !== null);
});

Deno.test("Session handshake: control messages flow before auth, streams only after auth_ok (PROTOCOL.md §4, §11)", async () => {
  const {
    computeClientProof,
    computeServerProof,
    generateNonce,
    verifyClientProof,
    verifyServerProof,
  } = await import("@/tunnel/mod.ts");
  await using pair = await sessionPair(PIPE, { requireAuth: true }, { requireAuth: true });
  const token = "t0ken";
  await rejects(pair.client.open({ type: "open", kind: "proxy" }), /not authenticated/);
  const server = (async () => {
    const hello = await pair.server.receiveControl();
    ok(hello?.type === "client_hello");
    const server_nonce = generateNonce();
    pair.server.sendControl({
      type: "server_hello",
      version: 1,
      capabilities: [],
      server_nonce,
      session_id: "s1",
    });
    const auth = await pair.server.receiveControl();
    ok(auth?.type === "auth");
    const nonces = { server_nonce, client_nonce: hello.client_nonce };
    ok(await verifyClientProof(token, nonces, auth.proof));
    pair.server.sendControl({
      type: "auth_ok",
      server_proof: await computeServerProof(token, nonces),
    });
    const reg = await pair.server.receiveControl();
    ok(reg?.type === "register");
    pair.server.sendControl({
      type: "register_result",
      request_id: reg.request_id,
      results: [{ name: "web", ok: true, public_addr: "127.0.0.1:8080" }],
    });
  })();
  const client_nonce = generateNonce();
  pair.client.sendControl({ type: "client_hello", version: 1, capabilities: [], client_nonce });
  const sh = await pair.client.receiveControl();
  ok(sh?.type === "server_hello");
  const nonces = { server_nonce: sh.server_nonce, client_nonce };
  pair.client.sendControl({ type: "auth", proof: await computeClientProof(token, nonces) });
  const okMsg = await pair.client.receiveControl();
  ok(okMsg?.type === "auth_ok");
  ok(await verifyServerProof(token, nonces, okMsg.server_proof));
  ok(pair.client.authenticated && pair.server.authenticated);
  pair.client.sendControl({
    type: "register",
    request_id: 9,
    mappings: [{ name: "web", kind: "http", domains: ["example.com"] }],
  });
  const result = await pair.client.receiveControl();
  ok(result?.type === "register_result" && result.request_id === 9 && result.results[0]!.ok);
  await server;
  const s = await pair.client.open({ type: "open", kind: "proxy" });
  await s.write(text("after auth"));
  await s.closeWrite();
  equal(str(await readAll((await pair.server.accept())!)), "after auth");
});
