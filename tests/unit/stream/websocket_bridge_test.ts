import assert from "node:assert/strict";
import { completeStreamSection, type StreamServerInput } from "@/config/stream_section.ts";
import { bridgeWebSocket, startStreamSection, type WebSocketBridgeResult } from "@/stream/mod.ts";
import type { ByteConn } from "@/transport/conn.ts";
import { generateCertificates } from "@/tls/certificates.ts";
import { hostPort, pattern, readN, startTcpEcho, testLog, until } from "./_helpers.ts";

function config(servers: StreamServerInput[]) {
  return completeStreamSection({ servers });
}

/** Opens a client WebSocket and waits for it to be open. */
async function openClient(url: string): Promise<WebSocket> {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  await new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = (e) => reject(new Error((e as ErrorEvent).message));
  });
  return ws;
}

function closeAndWait(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  const closed = new Promise<void>((resolve) => ws.addEventListener("close", () => resolve()));
  ws.close();
  return closed;
}

Deno.test("stream ws2tcp: a WebSocket client reaches a TCP echo through binary messages", async () => {
  await using echo = startTcpEcho();
  const { log, events } = testLog();
  await using section = await startStreamSection(
    config([{ listen: "127.0.0.1:0", protocol: "ws2tcp", target: echo.addr, path: "/tcp" }]),
    { log },
  );
  const addr = section.listeners[0]!.addr;
  assert.equal(events("listening")[0]!.protocol, "ws2tcp");

  // wrong path and plain HTTP are refused
  const notFound = await fetch(`http://${addr}/other`);
  await notFound.body?.cancel();
  assert.equal(notFound.status, 404);
  const plain = await fetch(`http://${addr}/tcp`);
  await plain.body?.cancel();
  assert.equal(plain.status, 426);

  const ws = await openClient(`ws://${addr}/tcp`);
  const received: Uint8Array[] = [];
  let total = 0;
  ws.onmessage = (e) => {
    const chunk = new Uint8Array(e.data as ArrayBuffer);
    received.push(chunk);
    total += chunk.length;
  };
  const data = pattern(300_000, 7);
  for (let off = 0; off < data.length; off += 10_000) ws.send(data.subarray(off, off + 10_000));
  ws.send("text too");
  assert.ok(await until(() => total === data.length + 8));
  const joined = new Uint8Array(total);
  let off = 0;
  for (const c of received) {
    joined.set(c, off);
    off += c.length;
  }
  assert.deepEqual(joined.subarray(0, data.length), data);
  assert.equal(new TextDecoder().decode(joined.subarray(data.length)), "text too");
  await closeAndWait(ws);
  assert.ok(await until(() => events("connection_closed").length === 1));
  const closed = events("connection_closed")[0]!;
  assert.equal(closed.bytes_in, data.length + 8);
  assert.equal(closed.bytes_out, data.length + 8);
  assert.equal(closed.error, undefined);
});

Deno.test("stream ws2tcp: answers 502 when the TCP upstream is down", async () => {
  const dead = startTcpEcho();
  await dead.stop();
  const { log } = testLog();
  await using section = await startStreamSection(
    config([{ listen: "127.0.0.1:0", protocol: "ws2tcp", target: dead.addr }]),
    { log },
  );
  const ws = new WebSocket(`ws://${section.listeners[0]!.addr}/`);
  const closed = new Promise<boolean>((resolve) => {
    ws.onopen = () => resolve(true);
    ws.onclose = () => resolve(false);
  });
  assert.equal(await closed, false);
});

Deno.test("stream tcp2ws → ws2tcp: a TCP client reaches a TCP echo over a WebSocket", async () => {
  await using echo = startTcpEcho();
  const { log, events } = testLog();
  await using back = await startStreamSection(
    config([{ listen: "127.0.0.1:0", protocol: "ws2tcp", target: echo.addr }]),
    { log },
  );
  await using front = await startStreamSection(
    config([{
      listen: "127.0.0.1:0",
      protocol: "tcp2ws",
      target: `ws://${back.listeners[0]!.addr}/`,
    }]),
    { log },
  );
  const addr = front.listeners[0]!.addr;
  // several clients at once, 4 MiB each way, so back-pressure matters
  await Promise.all([1, 2, 3].map(async (seed) => {
    const conn = await Deno.connect({ ...hostPort(addr), transport: "tcp" });
    try {
      const data = pattern(4 * 1024 * 1024, seed);
      const reading = readN(conn, data.length);
      let off = 0;
      while (off < data.length) off += await conn.write(data.subarray(off));
      const got = await reading;
      assert.equal(got.length, data.length);
      assert.ok(got.every((b, i) => b === data[i]), "data differs");
      // ending our side ends the whole chain cleanly
      await conn.closeWrite();
      assert.equal(await conn.read(new Uint8Array(1)), null);
    } finally {
      conn.close();
    }
  }));
  assert.ok(await until(() => events("connection_closed").length === 6));
  for (const e of events("connection_closed")) {
    assert.equal(e.error, undefined, JSON.stringify(e));
    assert.equal(e.bytes_in, 4 * 1024 * 1024);
  }
  assert.ok(await until(() => echo.firstChunks.length === 3));
});

Deno.test("stream tcp2ws: the WebSocket closing first closes the TCP client", async () => {
  // a ws server that sends one message and closes
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req);
      socket.onopen = () => {
        socket.send(new TextEncoder().encode("bye"));
        socket.close(1000);
      };
      return response;
    },
  );
  const { log, events } = testLog();
  try {
    await using front = await startStreamSection(
      config([{
        listen: "127.0.0.1:0",
        protocol: "tcp2ws",
        target: `ws://127.0.0.1:${server.addr.port}/`,
      }]),
      { log },
    );
    const conn = await Deno.connect({ ...hostPort(front.listeners[0]!.addr), transport: "tcp" });
    try {
      assert.equal(new TextDecoder().decode(await readN(conn, 10)), "bye");
    } finally {
      conn.close();
    }
    assert.ok(await until(() => events("connection_closed").length === 1));
    assert.equal(events("connection_closed")[0]!.error, undefined);
  } finally {
    ac.abort();
    await server.finished;
  }
});

Deno.test("stream tcp2wss: relays over TLS to a WebSocket server trusted through ca_file", async () => {
  const certs = await generateCertificates({ names: ["localhost", "127.0.0.1"] });
  const dir = await Deno.makeTempDir({ prefix: "wmproxy-stream-" });
  const caFile = `${dir}/ca.pem`;
  await Deno.writeTextFile(caFile, certs.ca.cert);
  const ac = new AbortController();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: certs.server.cert,
    key: certs.server.key,
    signal: ac.signal,
    onListen: () => {},
  }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(e.data); // echo
    return response;
  });
  const { log, events } = testLog();
  try {
    await using front = await startStreamSection(
      config([{
        listen: "127.0.0.1:0",
        protocol: "tcp2wss",
        target: `wss://localhost:${server.addr.port}/echo`,
        ca_file: caFile,
      }, {
        listen: "127.0.0.1:0",
        protocol: "tcp2wss",
        target: `wss://localhost:${server.addr.port}/echo`,
        connect_timeout: 3000,
      }]),
      { log },
    );
    const conn = await Deno.connect({ ...hostPort(front.listeners[0]!.addr), transport: "tcp" });
    try {
      const data = pattern(200_000, 9);
      const reading = readN(conn, data.length);
      let off = 0;
      while (off < data.length) off += await conn.write(data.subarray(off));
      assert.deepEqual(await reading, data);
    } finally {
      conn.close();
    }
    // without ca_file the test CA is not trusted: the client is closed
    const untrusted = await Deno.connect({
      ...hostPort(front.listeners[1]!.addr),
      transport: "tcp",
    });
    try {
      assert.equal(await untrusted.read(new Uint8Array(1)).catch(() => null), null);
    } finally {
      untrusted.close();
    }
    assert.ok(await until(() => events("connection_closed").length === 2));
    const errors = events("connection_closed").map((e) => e.error);
    assert.ok(errors.some((e) => e === undefined));
    assert.ok(errors.some((e) => typeof e === "string" && /Cannot connect to "wss:/.test(e)));
  } finally {
    ac.abort();
    await server.finished;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("bridgeWebSocket() ends with close code 4009 when messages pile up for a stalled TCP side", async () => {
  // a connection whose writes never finish until it is closed
  let release: () => void = () => {};
  const closedConn = new Promise<void>((resolve) => release = resolve);
  const stalled: ByteConn = {
    read: () => closedConn.then(() => null),
    write: () => closedConn.then(() => Promise.reject(new Error("closed"))),
    closeWrite: () => Promise.resolve(),
    close: () => release(),
    remoteAddr: { hostname: "127.0.0.1", port: 1 },
    localAddr: { hostname: "127.0.0.1", port: 2 },
  };
  let bridged: Promise<WebSocketBridgeResult> | undefined;
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req);
      bridged = bridgeWebSocket(socket, stalled, {
        idleTimeoutMs: 10_000,
        maxQueuedBytes: 100_000,
      });
      return response;
    },
  );
  try {
    const ws = await openClient(`ws://127.0.0.1:${server.addr.port}/`);
    const code = new Promise<number>((resolve) => ws.onclose = (e) => resolve(e.code));
    // the 11th message passes the limit; sending no more keeps the close clean
    for (let i = 0; i < 11; i++) ws.send(new Uint8Array(10_000));
    assert.equal(await code, 4009);
    const result = await bridged!;
    assert.ok(result.error instanceof RangeError);
    assert.match(result.error.message, /more than 100000 bytes wait for the TCP side/);
    assert.equal(result.bytesFromSocket, 0);
  } finally {
    ac.abort();
    await server.finished;
  }
});
