/**
 * Raw HTTP/1.1 front tests: the `http` section started in-process with
 * startHttpSection() on 127.0.0.1, driven by raw `Deno.connect` clients
 * against raw `Deno.listen` origins, so that every byte, connection and
 * close is visible.
 *
 * A request whose header names reached the origin all in lower case took the
 * slow path (through the internal Deno.serve, whose Headers lower-case every
 * name); the fast path keeps the client's names byte for byte, and the raw
 * clients here send `Host`, `Content-Length`, … capitalised.
 */
import assert from "node:assert/strict";
import { startHttpSection } from "@/reverse/mod.ts";
import { httpConfig, memoryLog, WWW } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? encoder.encode(data) : data;
}

function concat(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function writeAllConn(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}

async function sha256(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Deterministic bytes that are not all alike. */
function pattern(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}

/** A port that was free a moment ago. */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

function portOf(addr: string): number {
  return Number(addr.slice(addr.lastIndexOf(":") + 1));
}

/** Polls `check` every 10 ms until it holds or `ms` pass (for log lines written after a reply). */
async function eventually(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

type HeaderList = [string, string][];

/** Reads HTTP/1.1 messages from a connection, keeping what it consumed. */
class ByteReader {
  #buf: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  readonly #chunk = new Uint8Array(64 * 1024);
  /** Every byte taken since the last {@link ByteReader.mark}. */
  taken: Uint8Array[] = [];

  constructor(readonly conn: Deno.Conn) {}

  mark(): void {
    this.taken = [];
  }

  async fill(): Promise<boolean> {
    const n = await this.conn.read(this.#chunk);
    if (n === null) return false;
    this.#buf = concat([this.#buf, this.#chunk.subarray(0, n)]);
    return true;
  }

  take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    this.taken.push(out);
    return out;
  }

  /** A head up to its empty line; `null` at a clean end of stream. */
  async head(): Promise<{ start: string; headers: HeaderList } | null> {
    while (true) {
      const text = decoder.decode(this.#buf);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        const lines = decoder.decode(this.take(end + 4)).slice(0, -4).split("\r\n");
        return {
          start: lines[0]!,
          headers: lines.slice(1).map((l) => {
            const colon = l.indexOf(":");
            return [l.slice(0, colon), l.slice(colon + 1).trim()];
          }),
        };
      }
      if (!(await this.fill())) {
        if (this.#buf.length === 0) return null;
        throw new Error("the connection closed in the middle of a head");
      }
    }
  }

  async exact(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      if (!(await this.fill())) throw new Error(`the connection closed before ${n} bytes`);
    }
    return this.take(n);
  }

  async line(): Promise<string> {
    while (true) {
      const end = this.#buf.indexOf(0x0a);
      if (end >= 0) return decoder.decode(this.take(end + 1)).trimEnd();
      if (!(await this.fill())) throw new Error("the connection closed before a line end");
    }
  }

  async chunked(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    while (true) {
      const size = parseInt((await this.line()).split(";")[0]!, 16);
      if (size === 0) {
        while ((await this.line()) !== "");
        return concat(parts);
      }
      parts.push(await this.exact(size));
      await this.exact(2);
    }
  }

  async rest(): Promise<Uint8Array> {
    while (await this.fill());
    return this.take(this.#buf.length);
  }
}

function header(list: HeaderList, name: string): string | undefined {
  return list.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}

/** Whether `headers` came through the slow path (see the module doc). */
function slowPath(headers: HeaderList): boolean {
  return headers.every(([n]) => n === n.toLowerCase());
}

function headerCount(list: HeaderList, name: string): number {
  return list.filter(([n]) => n.toLowerCase() === name.toLowerCase()).length;
}

/** Reads a body framed by `headers`; `toEnd` reads an unframed one until the close. */
function readBody(r: ByteReader, headers: HeaderList, toEnd: boolean): Promise<Uint8Array> {
  if (/chunked/i.test(header(headers, "transfer-encoding") ?? "")) return r.chunked();
  const length = header(headers, "content-length");
  if (length !== undefined) return r.exact(Number(length));
  return toEnd ? r.rest() : Promise.resolve(new Uint8Array(0));
}

// ---------------------------------------------------------------- origin

interface OriginRequest {
  method: string;
  target: string;
  headers: HeaderList;
  body: Uint8Array;
  /** 1-based number of the origin connection it came on. */
  conn: number;
}

/** Bytes to answer (then close when `close`), or "hang": never answer. */
type OriginReply = { raw: string | Uint8Array; close?: boolean } | "hang";

/** A `200 OK` with a Content-Length (and `extra` header lines). */
function ok(body: string | Uint8Array, extra = ""): { raw: Uint8Array } {
  const b = toBytes(body);
  return {
    raw: concat([
      encoder.encode(
        `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${b.length}\r\n${extra}\r\n`,
      ),
      b,
    ]),
  };
}

/** A raw HTTP/1.1 origin on 127.0.0.1:0 that counts its connections. */
function rawOrigin(handler: (req: OriginRequest) => OriginReply | Promise<OriginReply>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const requests: OriginRequest[] = [];
  let accepted = 0;
  const serveConn = async (conn: Deno.Conn, id: number) => {
    const r = new ByteReader(conn);
    try {
      while (true) {
        const head = await r.head();
        if (head === null) return;
        const [method, target] = head.start.split(" ");
        const body = await readBody(r, head.headers, false);
        const req = { method: method!, target: target!, headers: head.headers, body, conn: id };
        requests.push(req);
        const reply = await handler(req);
        if (reply === "hang") continue;
        await writeAllConn(conn, toBytes(reply.raw));
        if (reply.close) return;
      }
    } catch {
      // the front went away
    } finally {
      conns.delete(conn);
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
  };
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      tasks.push(serveConn(conn, ++accepted));
    }
  })().catch(() => {});
  return {
    addr: `127.0.0.1:${listener.addr.port}`,
    requests,
    get accepted() {
      return accepted;
    },
    async close() {
      try {
        listener.close();
      } catch {
        // already closed
      }
      await loop;
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await Promise.all(tasks);
    },
    [Symbol.asyncDispose]() {
      return this.close();
    },
  };
}

/** An address that refuses connections. */
function deadAddr(): string {
  return `127.0.0.1:${freePort()}`;
}

// ---------------------------------------------------------------- client

interface ClientResponse {
  status: number;
  headers: HeaderList;
  body: Uint8Array;
  text: string;
  /** The response exactly as received. */
  raw: Uint8Array;
}

/** A raw client connection to the front. */
class RawClient implements Disposable {
  readonly reader: ByteReader;
  constructor(readonly conn: Deno.Conn) {
    this.reader = new ByteReader(conn);
  }

  static async connect(addr: string): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port: portOf(addr) }));
  }

  send(data: string | Uint8Array): Promise<void> {
    return writeAllConn(this.conn, toBytes(data));
  }

  async response(method = "GET"): Promise<ClientResponse> {
    this.reader.mark();
    const head = await this.reader.head();
    if (head === null) throw new Error("the front closed the connection instead of answering");
    const status = Number(head.start.split(" ")[1]);
    const body = method === "HEAD" || status === 204 || status === 304
      ? new Uint8Array(0)
      : await readBody(this.reader, head.headers, true);
    return {
      status,
      headers: head.headers,
      body,
      text: decoder.decode(body),
      raw: concat(this.reader.taken),
    };
  }

  /** `GET path` (with `extra` header lines) and its response. */
  async get(path: string, extra = "", host = "front.test"): Promise<ClientResponse> {
    await this.send(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`);
    return await this.response();
  }

  /** How the front ends the connection: "eof", "reset", or "data" when it sends more. */
  async ended(): Promise<"eof" | "reset" | "data"> {
    try {
      return (await this.reader.fill()) ? "data" : "eof";
    } catch {
      return "reset";
    }
  }

  [Symbol.dispose](): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

// ---------------------------------------------------------------- tests

Deno.test("http front: 20 keep-alive requests reuse one pooled upstream connection, byte for byte", async () => {
  await using origin = rawOrigin((req) => ok(`hello ${req.target}`, `X-Seq: ${req.target}\r\n`));
  await using section = await startHttpSection(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        locations: [{ path: "/", proxy_pass: `http://${origin.addr}` }],
      }],
    }),
    { log: memoryLog().log },
  );
  using client = await RawClient.connect(section.listeners[0]!.addr);
  for (let i = 0; i < 20; i++) {
    const res = await client.get(`/n/${i}`);
    assert.equal(
      decoder.decode(res.raw),
      decoder.decode(ok(`hello /n/${i}`, `X-Seq: /n/${i}\r\n`).raw),
      `response ${i}`,
    );
  }
  assert.equal(origin.requests.length, 20);
  assert.equal(origin.accepted, 1, "one upstream connection for all 20");
  assert.ok(
    origin.requests.every((r) => !slowPath(r.headers)),
    "fast path",
  );
  const last = await client.get("/last", "Connection: close\r\n");
  assert.equal(last.text, "hello /last");
  assert.equal(header(last.headers, "connection"), "close");
  assert.equal(await client.ended(), "eof");
  assert.equal(origin.accepted, 1, "the client's close does not close the upstream connection");
});

Deno.test("http front: forwarded, hop-by-hop and rule headers on the fast path", async () => {
  await using origin = rawOrigin(() =>
    ok(
      "ok",
      "Keep-Alive: timeout=5\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nX-Origin: yes\r\n",
    )
  );
  await using section = await startHttpSection(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        locations: [
          {
            path: "/",
            proxy_pass: `http://${origin.addr}`,
            request_headers: [{ action: "set", name: "X-Client", value: "ip=$remote_addr" }],
            response_headers: [{ action: "set", name: "X-Served-For", value: "$remote_addr" }],
          },
          { path: "/np/", proxy_pass: `http://${origin.addr}`, preserve_host: false },
        ],
      }],
    }),
    { log: memoryLog().log },
  );
  using client = await RawClient.connect(section.listeners[0]!.addr);
  const res = await client.get(
    "/h?q=1&r=%20",
    [
      "X-Forwarded-For: 10.0.0.1",
      "X-Forwarded-Proto: https",
      "X-Forwarded-Host: spoofed.test",
      "Connection: keep-alive, X-Secret",
      "X-Secret: s",
      "Keep-Alive: timeout=5",
      "TE: trailers",
      "Trailer: X-T",
      "Proxy-Authorization: Basic eA==",
      "X-Keep: yes",
      "",
    ].join("\r\n"),
    "front.test:8080",
  );
  assert.equal(res.status, 200);
  const seen = origin.requests[0]!;
  assert.equal(seen.target, "/h?q=1&r=%20");
  assert.ok(!slowPath(seen.headers), "fast path");
  assert.equal(header(seen.headers, "host"), "front.test:8080");
  assert.equal(headerCount(seen.headers, "x-forwarded-for"), 1);
  assert.equal(header(seen.headers, "x-forwarded-for"), "10.0.0.1, 127.0.0.1");
  assert.equal(header(seen.headers, "x-forwarded-proto"), "http");
  assert.equal(header(seen.headers, "x-forwarded-host"), "front.test:8080");
  assert.equal(header(seen.headers, "X-Keep"), "yes");
  assert.equal(header(seen.headers, "x-client"), "ip=127.0.0.1");
  for (
    const hop of ["connection", "x-secret", "keep-alive", "te", "trailer", "proxy-authorization"]
  ) {
    assert.equal(header(seen.headers, hop), undefined, `${hop} is not forwarded`);
  }
  assert.equal(header(res.headers, "x-origin"), "yes");
  assert.equal(header(res.headers, "x-served-for"), "127.0.0.1");
  for (const hop of ["connection", "keep-alive", "x-hop"]) {
    assert.equal(header(res.headers, hop), undefined, `${hop} is not sent back`);
  }

  const np = await client.get("/np/x");
  assert.equal(np.status, 200);
  assert.equal(header(origin.requests[1]!.headers, "host"), origin.addr);
});

Deno.test("http front: one keep-alive connection mixes slow and fast locations in order", async () => {
  await using origin = rawOrigin((req) => ok(`proxied ${req.target}`));
  await using section = await startHttpSection(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        locations: [
          { path: "/files/", file_server: { alias: WWW } },
          { path: "/api/", proxy_pass: `http://${origin.addr}` },
          { path: "/static", static_response: { body: "static $remote_addr:$remote_port" } },
          { path: "/denied/", proxy_pass: `http://${origin.addr}`, deny: ["127.0.0.1"] },
        ],
      }],
    }),
    { log: memoryLog().log },
  );
  const addr = section.listeners[0]!.addr;
  const file = await Deno.readTextFile(`${WWW}/range.txt`);
  using client = await RawClient.connect(addr);
  const visitor = `127.0.0.1:${(client.conn.localAddr as Deno.NetAddr).port}`;
  const expect = (res: ClientResponse, status: number, text: string) => {
    assert.equal(res.status, status);
    assert.equal(res.text, text);
  };
  expect(await client.get("/files/range.txt"), 200, file);
  expect(await client.get("/api/a"), 200, "proxied /api/a");
  expect(await client.get("/static"), 200, `static ${visitor}`);
  expect(await client.get("/api/b"), 200, "proxied /api/b");
  expect(await client.get("/denied/x"), 403, "403 Forbidden\n");
  expect(await client.get("/api/c"), 200, "proxied /api/c");

  // The same four, pipelined in one write.
  await client.send(
    ["/files/range.txt", "/api/d", "/static", "/api/e"]
      .map((p) => `GET ${p} HTTP/1.1\r\nHost: front.test\r\n\r\n`).join(""),
  );
  expect(await client.response(), 200, file);
  expect(await client.response(), 200, "proxied /api/d");
  expect(await client.response(), 200, `static ${visitor}`);
  expect(await client.response(), 200, "proxied /api/e");
  assert.equal(origin.requests.length, 5, "the denied request never reached the origin");
  assert.ok(
    origin.requests.every((r) => !slowPath(r.headers)),
    "fast path",
  );
});

Deno.test("http front: request bodies (fast and slow) and chunked or close-delimited responses", async () => {
  const closeBody = pattern(100_000);
  await using origin = rawOrigin((req) => {
    if (req.target === "/chunked") {
      return {
        raw:
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
      };
    }
    if (req.target === "/close") {
      return {
        raw: concat([
          encoder.encode("HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n"),
          closeBody,
        ]),
        close: true,
      };
    }
    return ok(req.body);
  });
  await using section = await startHttpSection(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        max_body_size: "4MiB",
        locations: [{ path: "/", proxy_pass: `http://${origin.addr}` }],
      }],
    }),
    { log: memoryLog().log },
  );
  const addr = section.listeners[0]!.addr;
  using client = await RawClient.connect(addr);
  const post = async (body: Uint8Array) => {
    await client.send(
      concat([
        encoder.encode(
          `POST /echo HTTP/1.1\r\nHost: front.test\r\nContent-Length: ${body.length}\r\n\r\n`,
        ),
        body,
      ]),
    );
    return await client.response();
  };
  const small = pattern(10 * 1024);
  const r1 = await post(small);
  assert.equal(r1.status, 200);
  assert.equal(await sha256(r1.body), await sha256(small));
  assert.equal(await sha256(origin.requests.at(-1)!.body), await sha256(small));
  assert.ok(!slowPath(origin.requests.at(-1)!.headers), "10 KB: fast path");

  const big = pattern(1024 * 1024);
  const r2 = await post(big);
  assert.equal(r2.status, 200);
  assert.equal(await sha256(origin.requests.at(-1)!.body), await sha256(big));
  assert.equal(await sha256(r2.body), await sha256(big));
  assert.ok(slowPath(origin.requests.at(-1)!.headers), "slow path");

  const parts = [pattern(3000), pattern(70_000), toBytes("tail")];
  await client.send(
    concat([
      encoder.encode(
        "POST /echo HTTP/1.1\r\nHost: front.test\r\nTransfer-Encoding: chunked\r\n\r\n",
      ),
      ...parts.flatMap((
        p,
      ) => [encoder.encode(`${p.length.toString(16)}\r\n`), p, encoder.encode("\r\n")]),
      encoder.encode("0\r\n\r\n"),
    ]),
  );
  const r3 = await client.response();
  assert.equal(r3.status, 200);
  assert.equal(await sha256(origin.requests.at(-1)!.body), await sha256(concat(parts)));
  assert.equal(await sha256(r3.body), await sha256(concat(parts)));
  assert.ok(slowPath(origin.requests.at(-1)!.headers), "slow path");

  const chunked = await client.get("/chunked");
  assert.equal(chunked.status, 200);
  assert.match(header(chunked.headers, "transfer-encoding") ?? "", /chunked/i);
  assert.equal(chunked.text, "hello world");
  assert.equal((await client.get("/again")).status, 200, "still alive after a chunked response");

  const closed = await client.get("/close");
  assert.equal(closed.status, 200);
  assert.equal(header(closed.headers, "connection"), "close");
  assert.equal(await sha256(closed.body), await sha256(closeBody));
  assert.equal(await client.ended(), "eof");
});

Deno.test("http front: a pooled connection the origin closed is retried once on a fresh one", async () => {
  let n = 0;
  await using origin = rawOrigin(() => ({ ...ok(`r${++n}`), close: true }));
  const { log, events } = memoryLog();
  await using section = await startHttpSection(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        locations: [{ path: "/", proxy_pass: `http://${origin.addr}` }],
      }],
    }),
    { log },
  );
  using client = await RawClient.connect(section.listeners[0]!.addr);
  assert.equal((await client.get("/a")).text, "r1");
  const second = await client.get("/b");
  assert.equal(second.status, 200);
  assert.equal(second.text, "r2");
  const third = await client.send(
    "POST /c HTTP/1.1\r\nHost: front.test\r\nContent-Length: 2\r\n\r\nhi",
  ).then(() => client.response());
  assert.equal(third.text, "r3", "also for a non-idempotent request: nothing was sent upstream");
  assert.equal(origin.accepted, 3);
  assert.equal(
    events("http_upstream_error").length,
    0,
    "a stale connection is not an upstream error",
  );
});

Deno.test("http front: 502 for a refused upstream, 504 for a silent one, retry within a group", async () => {
  await using silent = rawOrigin(() => "hang");
  await using live = rawOrigin((req) => ok(`live ${req.target}`));
  const dead = deadAddr();
  const { log, events } = memoryLog();
  await using section = await startHttpSection(
    httpConfig({
      upstreams: [{ name: "pair", servers: [dead, live.addr] }],
      servers: [{
        listen: ["127.0.0.1:0"],
        timeouts: { upstream_connect: "1s", upstream_read: "300ms" },
        locations: [
          { path: "/dead", proxy_pass: `http://${dead}` },
          { path: "/silent", proxy_pass: `http://${silent.addr}` },
          { path: "/pair", proxy_pass: "http://pair" },
        ],
      }],
    }),
    { log },
  );
  using client = await RawClient.connect(section.listeners[0]!.addr);
  const bad = await client.get("/dead");
  assert.equal(bad.status, 502);
  assert.equal(bad.text, "502 Bad Gateway\n");
  assert.match(header(bad.headers, "content-type") ?? "", /^text\/plain/);

  const t0 = Date.now();
  const slow = await client.get("/silent");
  const waited = Date.now() - t0;
  assert.equal(slow.status, 504);
  assert.equal(slow.text, "504 Gateway Timeout\n");
  assert.ok(waited >= 250 && waited < 3000, `504 after ${waited} ms`);
  assert.equal(
    silent.requests.length,
    1,
    "a timed-out request is not replayed on the silent upstream",
  );

  for (let i = 0; i < 3; i++) {
    const res = await client.get(`/pair/${i}`);
    assert.equal(res.status, 200);
    assert.equal(res.text, `live /pair/${i}`);
  }
  const retried = events("http_upstream_error").filter((e) => e.upstream === dead);
  assert.ok(
    retried.length >= 2,
    "the /dead request and the first /pair request hit the dead server",
  );
  assert.ok(
    retried.some((e) => e.retry === true),
    "the group request was retried on the other server",
  );
});

Deno.test("http front: client header and keep-alive timeouts close the connection", async () => {
  await using origin = rawOrigin(() => ok("ok"));
  await using section = await startHttpSection(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        timeouts: { client_header: "300ms", keep_alive: "300ms" },
        locations: [{ path: "/", proxy_pass: `http://${origin.addr}` }],
      }],
    }),
    { log: memoryLog().log },
  );
  const addr = section.listeners[0]!.addr;
  {
    using client = await RawClient.connect(addr);
    const t0 = Date.now();
    await client.send("GET / HTTP/1.1\r\nHost: fro");
    const end = await client.ended();
    const waited = Date.now() - t0;
    assert.notEqual(end, "data");
    assert.ok(waited > 200 && waited < 5000, `closed after ${waited} ms`);
  }
  {
    using client = await RawClient.connect(addr);
    assert.equal((await client.get("/")).status, 200);
    const t0 = Date.now();
    const end = await client.ended();
    const waited = Date.now() - t0;
    assert.notEqual(end, "data");
    assert.ok(waited > 200 && waited < 5000, `idle connection closed after ${waited} ms`);
  }
  assert.equal(origin.requests.length, 1);
});

Deno.test("http front: a garbage request line gets 400, a 40 KB header 431, then it still serves", async () => {
  await using origin = rawOrigin(() => ok("fine"));
  await using section = await startHttpSection(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        locations: [{ path: "/", proxy_pass: `http://${origin.addr}` }],
      }],
    }),
    { log: memoryLog().log },
  );
  const addr = section.listeners[0]!.addr;
  {
    using client = await RawClient.connect(addr);
    await client.send("GARBAGE\r\n\r\n");
    const res = await client.response();
    assert.equal(res.status, 400);
    assert.equal(header(res.headers, "connection"), "close");
    assert.equal(await client.ended(), "eof");
  }
  {
    using client = await RawClient.connect(addr);
    await client.send(
      `GET / HTTP/1.1\r\nHost: front.test\r\nX-Big: ${"a".repeat(40 * 1024)}\r\n\r\n`,
    );
    const res = await client.response();
    assert.equal(res.status, 431);
    assert.notEqual(await client.ended(), "data");
  }
  using client = await RawClient.connect(addr);
  const res = await client.get("/after");
  assert.equal(res.status, 200);
  assert.equal(res.text, "fine");
  assert.equal(origin.requests.length, 1);
});

Deno.test("http front: update() keeps the address and its connections, restarts what changed", async () => {
  await using a = rawOrigin((req) => ok(`A ${req.target}`));
  await using b = rawOrigin((req) => ok(`B ${req.target}`));
  const proxyTo = (to: string, listen = "127.0.0.1:0") =>
    httpConfig({
      servers: [{ listen: [listen], locations: [{ path: "/", proxy_pass: `http://${to}` }] }],
    });
  await using section = await startHttpSection(proxyTo(a.addr), { log: memoryLog().log });
  const addr = section.listeners[0]!.addr;
  using client = await RawClient.connect(addr);
  assert.equal((await client.get("/x")).text, "A /x");

  const kept = await section.update(proxyTo(b.addr));
  assert.deepEqual(kept, {
    kept: ["127.0.0.1:0"],
    started: [],
    stopped: [],
    restarted: [],
    failed: [],
  });
  assert.equal(section.listeners[0]!.addr, addr);
  assert.equal((await client.get("/y")).text, "B /y", "the open connection follows the new route");

  // Same address, no proxy any more: a Deno.serve listener instead of the front.
  const restarted = await section.update(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        locations: [{ path: "/", static_response: { body: "plain" } }],
      }],
    }),
  );
  assert.deepEqual(restarted.restarted, ["127.0.0.1:0"]);
  assert.notEqual(await client.ended(), "data", "the old listener's connections end");
  const addr2 = section.listeners[0]!.addr;
  {
    using c2 = await RawClient.connect(addr2);
    assert.equal((await c2.get("/")).text, "plain");
  }

  const port = freePort();
  const moved = await section.update(proxyTo(b.addr, `127.0.0.1:${port}`));
  assert.deepEqual(moved, {
    kept: [],
    started: [`127.0.0.1:${port}`],
    stopped: ["127.0.0.1:0"],
    restarted: [],
    failed: [],
  });
  for (const old of [addr, addr2]) {
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port: portOf(old) }),
      Deno.errors.ConnectionRefused,
    );
  }
  using c3 = await RawClient.connect(`127.0.0.1:${port}`);
  assert.equal((await c3.get("/z")).text, "B /z");
});

Deno.test("http front: access log on the fast path, including a 502", async () => {
  await using origin = rawOrigin((req) => ok("x".repeat(Number(req.target.slice(1)))));
  const dead = deadAddr();
  const { log, events } = memoryLog();
  await using section = await startHttpSection(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        locations: [
          { path: "/", proxy_pass: `http://${origin.addr}` },
          { path: "/dead", proxy_pass: `http://${dead}` },
        ],
      }],
    }),
    { log },
  );
  using client = await RawClient.connect(section.listeners[0]!.addr);
  for (const size of [0, 5, 20_000]) assert.equal((await client.get(`/${size}`)).body.length, size);
  assert.equal((await client.get("/dead")).status, 502);
  await eventually(() => events("http_access").length >= 4);
  const access = events("http_access");
  assert.equal(access.length, 4);
  assert.deepEqual(
    access.map((e) => [e.uri, e.status, e.bytes, e.upstream_addr]),
    [
      ["/0", 200, 0, origin.addr],
      ["/5", 200, 5, origin.addr],
      ["/20000", 200, 20_000, origin.addr],
      ["/dead", 502, "502 Bad Gateway\n".length, dead],
    ],
  );
  assert.equal(access[0]!.remote_addr, "127.0.0.1");
  assert.match(String(access[1]!.line), /^127\.0\.0\.1 "GET \/5 HTTP\/1\.1" 200 5 /);
});

Deno.test("http front: histograms() counts every request of the listen address", async () => {
  await using origin = rawOrigin(() => ok("ok"));
  await using section = await startHttpSection(
    httpConfig({
      servers: [{
        listen: ["127.0.0.1:0"],
        locations: [
          { path: "/", proxy_pass: `http://${origin.addr}` },
          { path: "/static", static_response: { body: "s" } },
        ],
      }],
    }),
    { log: memoryLog().log },
  );
  using client = await RawClient.connect(section.listeners[0]!.addr);
  for (const path of ["/a", "/static", "/b", "/static", "/c"]) {
    assert.equal((await client.get(path)).status, 200);
  }
  const count = () =>
    section.histograms().find((h) => h.labels.listen === "127.0.0.1:0")?.hist.count ?? 0;
  await eventually(() => count() >= 5);
  const samples = section.histograms();
  assert.equal(samples.length, 1);
  assert.equal(samples[0]!.metric, "wmproxy_http_request_duration_seconds");
  assert.equal(count(), 5);
});
