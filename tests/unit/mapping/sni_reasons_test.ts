/**
 * parseClientHello() on hand-made hellos, one per rule: every limit at and
 * one past its boundary, and the exact reason of every rejection (the
 * reasons end up in logs, so they must name the right field).
 */
import assert from "node:assert/strict";
import {
  type ClientHelloResult,
  MAX_CLIENT_HELLO_BYTES,
  MAX_CLIENT_HELLO_INPUT_BYTES,
  parseClientHello,
  readClientHello,
} from "@/mapping/mod.ts";
import type { ByteConn } from "@/transport/conn.ts";
import { FakeTime } from "../../_fake_time.ts";
import { concat, reframe } from "./_helpers.ts";

const u8 = (...xs: number[]) => new Uint8Array(xs);
const be16 = (n: number) => u8(n >> 8, n & 0xff);

/** One handshake record around a handshake message of `type` with `body`. */
function record(body: Uint8Array, type = 1): Uint8Array {
  const msg = concat([
    u8(type, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff),
    body,
  ]);
  return concat([u8(0x16, 0x03, 0x01), be16(msg.length), msg]);
}

interface BodyParts {
  version?: number;
  sid?: Uint8Array;
  suites?: Uint8Array;
  compression?: Uint8Array;
  /** Raw bytes after the compression methods (extensions length included). */
  tail?: Uint8Array;
}

/** A ClientHello body; by default with one suite, null compression and no extensions. */
function body(p: BodyParts = {}): Uint8Array {
  const sid = p.sid ?? u8();
  const suites = p.suites ?? u8(0x13, 0x01);
  const comp = p.compression ?? u8(0);
  return concat([
    u8(p.version ?? 3, 3),
    new Uint8Array(32),
    u8(sid.length),
    sid,
    be16(suites.length),
    suites,
    u8(comp.length),
    comp,
    p.tail ?? u8(),
  ]);
}

function ext(type: number, data: Uint8Array): Uint8Array {
  return concat([be16(type), be16(data.length), data]);
}

function exts(...list: Uint8Array[]): Uint8Array {
  const all = concat(list);
  return concat([be16(all.length), all]);
}

/** A server_name extension body with the given (type, bytes) entries. */
function snList(entries: Array<[number, Uint8Array | string]>): Uint8Array {
  const list = concat(entries.map(([t, n]) => {
    const b = typeof n === "string" ? new TextEncoder().encode(n) : n;
    return concat([u8(t), be16(b.length), b]);
  }));
  return concat([be16(list.length), list]);
}

function helloWithName(name: Uint8Array | string): Uint8Array {
  return record(body({ tail: exts(ext(0, snList([[0, name]]))) }));
}

function reason(r: ClientHelloResult): string {
  assert.equal(r.status, "not_tls", JSON.stringify(r));
  return (r as { reason: string }).reason.replace(/^Cannot parse TLS ClientHello: /, "");
}

function expectNotTls(bytes: Uint8Array, why: string): void {
  const r = parseClientHello(bytes);
  assert.ok(r.status === "not_tls", JSON.stringify(r));
  assert.equal(r.reason, `Cannot parse TLS ClientHello: ${why}`);
}

Deno.test("hand-made hello: record layer: type, version and length are judged with the exact reason", () => {
  expectNotTls(u8(0x15), "record type 0x15 is not a handshake");
  expectNotTls(u8(0x0a, 0x03), "record type 0x0a is not a handshake");
  expectNotTls(u8(0x16, 0x02), "record version major 2 is not 3");
  expectNotTls(u8(0x16, 0x04, 0x01, 0x00), "record version major 4 is not 3");
  expectNotTls(u8(0x17, 0x03, 0x03, 0, 1, 0), "record type 0x17 is not a handshake");
  expectNotTls(u8(0x16, 0x02, 0x03, 0, 1, 1), "record version major 2 is not 3");
  expectNotTls(u8(0x16, 0x03, 0x01, 0, 0), "record length 0 is not within 1..16384");
  expectNotTls(u8(0x16, 0x03, 0x01, 0x40, 0x01), "record length 16385 is not within 1..16384");
  assert.equal(parseClientHello(u8(0x16, 0x03, 0x01, 0x40, 0x00)).status, "need_more");
  assert.equal(parseClientHello(u8(0x16, 0x03, 0x01, 0x00, 0x01)).status, "need_more");
  assert.equal(parseClientHello(u8(0x16, 0x03)).status, "need_more");
  assert.equal(parseClientHello(u8(0x16)).status, "need_more");
  assert.equal(parseClientHello(u8()).status, "need_more");
  // The minor version is not checked.
  assert.deepEqual(parseClientHello(concat([u8(0x16, 0x03, 0x09), record(body()).subarray(3)])), {
    status: "ok",
    serverName: undefined,
  });
});

Deno.test("hand-made hello: handshake layer: message type and length limit", () => {
  expectNotTls(record(body(), 2), "handshake message type 2 is not ClientHello (1)");
  expectNotTls(record(body(), 0), "handshake message type 0 is not ClientHello (1)");
  const header = (len: number) =>
    u8(0x16, 0x03, 0x01, 0, 4, 1, len >> 16, (len >> 8) & 0xff, len & 0xff);
  expectNotTls(header(MAX_CLIENT_HELLO_BYTES + 1), "ClientHello length 16385 exceeds 16384 bytes");
  expectNotTls(header(0x100000), "ClientHello length 1048576 exceeds 16384 bytes");
  assert.equal(parseClientHello(header(MAX_CLIENT_HELLO_BYTES)).status, "need_more");
  // The handshake header split over records: the type byte is judged as soon as 4 bytes are in.
  const split = reframe(record(body(), 2), 1);
  expectNotTls(split, "handshake message type 2 is not ClientHello (1)");
  assert.equal(parseClientHello(split.subarray(0, 3 * 6)).status, "need_more");
});

/** Splits the handshake stream of one-record `hello` into records of `sizes[i]` bytes (the last size repeats). */
function records(hello: Uint8Array, sizes: number[]): Uint8Array {
  const msg = hello.subarray(5);
  const out: Uint8Array[] = [];
  for (let off = 0, i = 0; off < msg.length; i++) {
    const part = msg.subarray(
      off,
      Math.min(msg.length, off + sizes[Math.min(i, sizes.length - 1)]!),
    );
    out.push(u8(0x16, 0x03, 0x01), be16(part.length), part);
    off += part.length;
  }
  return concat(out);
}

Deno.test("hand-made hello: the input limit: a hello must be complete within MAX_CLIENT_HELLO_INPUT_BYTES", () => {
  const limit = `no complete ClientHello within ${MAX_CLIENT_HELLO_INPUT_BYTES} bytes`;
  // A valid hello of the largest size: 41 fixed bytes, extensions of 16 343.
  const name = ext(0, snList([[0, "n.test"]]));
  const largest = record(body({ tail: exts(name, ext(0x15, new Uint8Array(16322))) }));
  assert.equal(largest.length, 5 + 4 + MAX_CLIENT_HELLO_BYTES);
  // (One record cannot carry it; `records()` re-frames the handshake stream.)
  assert.deepEqual(parseClientHello(records(largest, [16384])), {
    status: "ok",
    serverName: "n.test",
  });
  // In 129 records it fits: the last record starts before the limit.
  const fits = records(largest, [...new Array<number>(128).fill(127), 132]);
  assert.equal(fits.length, 129 * 5 + 16388);
  assert.deepEqual(parseClientHello(fits), { status: "ok", serverName: "n.test" });
  // In 130 records the last one starts exactly at the limit: refused.
  const over = records(largest, [127]);
  assert.equal(over.length, 130 * 5 + 16388);
  assert.equal(over.length - 10, MAX_CLIENT_HELLO_INPUT_BYTES);
  assert.equal(reason(parseClientHello(over)), limit);
  assert.equal(reason(parseClientHello(over.subarray(0, MAX_CLIENT_HELLO_INPUT_BYTES))), limit);
  assert.equal(
    parseClientHello(over.subarray(0, MAX_CLIENT_HELLO_INPUT_BYTES - 1)).status,
    "need_more",
  );
  // Records of 2 bytes: the limit falls inside a record, which is judged as input, not as records.
  const small = records(largest, [2]);
  assert.notEqual(MAX_CLIENT_HELLO_INPUT_BYTES % 7, 0);
  assert.equal(reason(parseClientHello(small.subarray(0, MAX_CLIENT_HELLO_INPUT_BYTES))), limit);
  assert.equal(
    reason(parseClientHello(small.subarray(0, MAX_CLIENT_HELLO_INPUT_BYTES + 3))),
    limit,
  );
  assert.equal(
    parseClientHello(small.subarray(0, MAX_CLIENT_HELLO_INPUT_BYTES - 1)).status,
    "need_more",
  );
});

Deno.test("hand-made hello: a hello in several records is joined before its body is parsed", () => {
  const one = helloWithName("Split.Example");
  for (const size of [1, 4, 5, 6, 40, 41, 42, 43, 44, 45, 46]) {
    assert.deepEqual(parseClientHello(reframe(one, size)), {
      status: "ok",
      serverName: "split.example",
    }, `size ${size}`);
  }
  // Bytes after the hello, in the same record or the next, are not part of it.
  const msg = one.subarray(5);
  const withTrailer = concat([u8(0x16, 0x03, 0x01), be16(msg.length + 3), msg, u8(9, 9, 9)]);
  assert.deepEqual(parseClientHello(withTrailer), { status: "ok", serverName: "split.example" });
  const firstPart = msg.subarray(0, 20);
  const rest = concat([msg.subarray(20), u8(7, 7)]);
  const twoRecords = concat([
    u8(0x16, 0x03, 0x01),
    be16(firstPart.length),
    firstPart,
    u8(0x16, 0x03, 0x01),
    be16(rest.length),
    rest,
  ]);
  assert.deepEqual(parseClientHello(twoRecords), { status: "ok", serverName: "split.example" });
});

Deno.test("hand-made hello: ClientHello body: every field's limit and reason", () => {
  expectNotTls(record(new Uint8Array(33)), "truncated before the session id");
  expectNotTls(record(concat([u8(3), new Uint8Array(32)])), "truncated before the session id");
  expectNotTls(record(body({ version: 2 })), "client version major 2 is not 3");
  expectNotTls(record(body({ version: 4 })), "client version major 4 is not 3");
  expectNotTls(record(body({ sid: new Uint8Array(33) })), "session id length 33 exceeds 32");
  assert.equal(parseClientHello(record(body({ sid: new Uint8Array(32) }))).status, "ok");
  expectNotTls(
    record(concat([u8(3, 3), new Uint8Array(32), u8(0)])),
    "truncated before the cipher suites",
  );
  expectNotTls(
    record(concat([u8(3, 3), new Uint8Array(32), u8(0, 0)])),
    "truncated before the cipher suites",
  );
  expectNotTls(record(body({ suites: u8() })), "cipher suites length 0 is invalid");
  expectNotTls(record(body({ suites: u8(1, 2, 3) })), "cipher suites length 3 is invalid");
  assert.equal(parseClientHello(record(body({ suites: u8(1, 2, 3, 4) }))).status, "ok");
  expectNotTls(
    record(concat([u8(3, 3), new Uint8Array(32), u8(0), be16(2), u8(0x13, 0x01)])),
    "truncated before the compression methods",
  );
  expectNotTls(record(body({ compression: u8() })), "no compression methods");
  assert.equal(parseClientHello(record(body({ compression: u8(1, 0) }))).status, "ok");
  expectNotTls(
    record(concat([u8(3, 3), new Uint8Array(32), u8(0), be16(2), u8(0x13, 0x01), u8(2, 0)])),
    "truncated in the compression methods",
  );
  expectNotTls(record(body({ tail: u8(0) })), "truncated extensions length");
  expectNotTls(
    record(body({ tail: u8(0, 1) })),
    "extensions length 1 does not match the 0 bytes left",
  );
  expectNotTls(
    record(body({ tail: u8(0, 0, 9) })),
    "extensions length 0 does not match the 1 bytes left",
  );
  assert.deepEqual(parseClientHello(record(body({ tail: u8(0, 0) }))), {
    status: "ok",
    serverName: undefined,
  });
  expectNotTls(record(body({ tail: exts(u8(0, 1, 0)) })), "truncated extension header");
  expectNotTls(
    record(body({ tail: exts(u8(0, 5, 0, 2, 1)) })),
    "extension 5 length 2 overruns the hello",
  );
  expectNotTls(
    record(body({ tail: exts(ext(0, snList([[0, "a"]])), ext(0, snList([[0, "a"]]))) })),
    "duplicate server_name extension",
  );
  // Other extensions before and after the name are skipped.
  assert.deepEqual(
    parseClientHello(
      record(
        body({
          tail: exts(ext(0x0a, u8(1, 2)), ext(0, snList([[0, "n.test"]])), ext(0xff01, u8())),
        }),
      ),
    ),
    { status: "ok", serverName: "n.test" },
  );
  // A type with a zero high byte but not 0 is not server_name.
  assert.deepEqual(
    parseClientHello(record(body({ tail: exts(ext(0x0001, snList([[0, "n.test"]]))) }))),
    {
      status: "ok",
      serverName: undefined,
    },
  );
  assert.deepEqual(
    parseClientHello(record(body({ tail: exts(ext(0x0100, snList([[0, "n.test"]]))) }))),
    {
      status: "ok",
      serverName: undefined,
    },
  );
});

Deno.test("hand-made hello: server_name extension: list and entry lengths, name types and reasons", () => {
  const withExt = (data: Uint8Array) => record(body({ tail: exts(ext(0, data)) }));
  assert.deepEqual(parseClientHello(withExt(u8())), { status: "ok", serverName: undefined });
  expectNotTls(withExt(u8(0)), "truncated server name list");
  expectNotTls(withExt(u8(0, 5, 0, 0, 1, 0x61)), "server name list length mismatch");
  expectNotTls(withExt(u8(0, 3, 0, 0, 1, 0x61)), "server name list length mismatch");
  expectNotTls(withExt(u8(0, 2, 0, 0)), "truncated server name entry");
  expectNotTls(withExt(u8(0, 3, 0, 0, 5)), "server name entry overruns its list");
  expectNotTls(withExt(snList([[0, "a.test"], [0, "b.test"]])), "more than one host_name");
  expectNotTls(withExt(snList([[0, ""]])), "server name is not a DNS host name");
  // Only type 0 is a host name; other types are skipped, even before or after it.
  assert.deepEqual(parseClientHello(withExt(snList([[1, "x"], [0, "h.test"], [2, "y"]]))), {
    status: "ok",
    serverName: "h.test",
  });
  assert.deepEqual(parseClientHello(withExt(snList([[1, "x"]]))), {
    status: "ok",
    serverName: undefined,
  });
  assert.deepEqual(parseClientHello(withExt(snList([[0, "h.test"], [1, "x"]]))), {
    status: "ok",
    serverName: "h.test",
  });
});

Deno.test("hand-made hello: host names: 1-255 bytes of letters, digits, - . _ with no empty label at either end", () => {
  const ok = (name: string, expected = name.toLowerCase()) =>
    assert.deepEqual(
      parseClientHello(helloWithName(name)),
      { status: "ok", serverName: expected },
      name,
    );
  const bad = (name: Uint8Array | string) =>
    expectNotTls(helloWithName(name), "server name is not a DNS host name");
  ok("a");
  ok("x".repeat(255));
  bad("x".repeat(256));
  ok("AZaz09-_.m", "azaz09-_.m");
  ok("M");
  ok("5");
  ok("a.b.c");
  for (const c of [0x2f, 0x3a, 0x40, 0x5b, 0x60, 0x7b, 0x20, 0x2c, 0x00, 0x7f, 0xc3]) {
    bad(u8(0x61, c, 0x62));
  }
  bad(".a");
  bad("a.");
  bad("a..b");
  bad(".");
});

Deno.test("hand-made hello: fields ending exactly at the end of the message", () => {
  // Version and random but no session id length byte.
  expectNotTls(record(concat([u8(3, 3), new Uint8Array(32)])), "truncated before the session id");
  // The cipher suites length but no suites.
  expectNotTls(
    record(concat([u8(3, 3), new Uint8Array(32), u8(0), be16(2)])),
    "truncated before the compression methods",
  );
  // A server_name extension with an empty list names nothing.
  assert.deepEqual(parseClientHello(record(body({ tail: exts(ext(0, u8(0, 0))) }))), {
    status: "ok",
    serverName: undefined,
  });
  // The last record holds only the last 2 bytes of the message.
  const hello = helloWithName("tail.test");
  const msgLen = hello.length - 5;
  const split = records(hello, [msgLen - 2, 2]);
  assert.deepEqual(parseClientHello(split), { status: "ok", serverName: "tail.test" });
  assert.deepEqual(parseClientHello(records(hello, [msgLen - 1, 1])), {
    status: "ok",
    serverName: "tail.test",
  });
});

/** A ByteConn that hands out `data` at most `chunk` bytes per read, then ends or hangs. */
class ScriptConn implements ByteConn {
  readonly remoteAddr = { hostname: "127.0.0.1", port: 1 };
  readonly localAddr = { hostname: "127.0.0.1", port: 2 };
  closed = 0;
  reads = 0;
  #off = 0;
  #pending: { resolve: (n: number | null) => void; reject: (e: Error) => void } | null = null;

  constructor(
    readonly data: Uint8Array,
    readonly chunk: number,
    readonly end: "eof" | "hang" | "hang-then-error",
  ) {}

  read(p: Uint8Array): Promise<number | null> {
    this.reads++;
    if (this.#off < this.data.length) {
      const n = Math.min(p.length, this.chunk, this.data.length - this.#off);
      p.set(this.data.subarray(this.#off, this.#off + n));
      this.#off += n;
      return Promise.resolve(n);
    }
    if (this.end === "eof") return Promise.resolve(null);
    return new Promise((resolve, reject) => this.#pending = { resolve, reject });
  }
  write(p: Uint8Array): Promise<number> {
    return Promise.resolve(p.length);
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {
    this.closed++;
    const p = this.#pending;
    this.#pending = null;
    if (p === null) return;
    if (this.end === "hang-then-error") p.reject(new Error("Bad resource ID"));
    else p.resolve(null);
  }
}

const LARGE = records(
  record(body({ tail: exts(ext(0, snList([[0, "big.test"]])), ext(0x15, new Uint8Array(9000))) })),
  [16384],
);

Deno.test("readClientHello() reads a hello larger than its first 4 KiB buffer, in any chunking", async () => {
  using time = new FakeTime();
  assert.ok(LARGE.length > 8192);
  for (const chunk of [LARGE.length, 1000, 4096, 333]) {
    const conn = new ScriptConn(LARGE, chunk, "hang");
    const r = await readClientHello(conn, 64 * 1024, 1000);
    assert.equal(r.serverName, "big.test", `chunk ${chunk}`);
    assert.deepEqual(r.buffered, LARGE, `chunk ${chunk}`);
    assert.equal(r.hello.status, "ok");
    assert.equal(conn.closed, 0);
    assert.equal(time.pending, 0, "the timeout is cleared");
  }
});

Deno.test("readClientHello() stops at maxBytes (at least 16) with need_more and what it read", async () => {
  using time = new FakeTime();
  for (const [maxBytes, expected] of [[20, 20], [5, 16], [5000, 5000], [4096, 4096]] as const) {
    const conn = new ScriptConn(LARGE, LARGE.length, "hang");
    const r = await readClientHello(conn, maxBytes, 1000);
    assert.deepEqual(r.hello, { status: "need_more" }, `maxBytes ${maxBytes}`);
    assert.equal(r.serverName, undefined);
    assert.deepEqual(r.buffered, LARGE.subarray(0, expected), `maxBytes ${maxBytes}`);
    assert.equal(conn.closed, 0);
    assert.equal(time.pending, 0);
  }
});

Deno.test("readClientHello() at end of stream returns what came, without a name", async () => {
  using _time = new FakeTime();
  const empty = await readClientHello(new ScriptConn(u8(), 10, "eof"), 1000, 1000);
  assert.deepEqual(empty, {
    serverName: undefined,
    buffered: u8(),
    hello: { status: "need_more" },
  });
  const part = await readClientHello(new ScriptConn(LARGE.subarray(0, 30), 7, "eof"), 1000, 1000);
  assert.deepEqual(part.hello, { status: "need_more" });
  assert.deepEqual(part.buffered, LARGE.subarray(0, 30));
  const garbage = await readClientHello(new ScriptConn(u8(0x47, 0x45, 0x54), 7, "eof"), 1000, 1000);
  assert.equal(garbage.hello.status, "not_tls");
  assert.equal(garbage.serverName, undefined);
  assert.deepEqual(garbage.buffered, u8(0x47, 0x45, 0x54));
});

Deno.test("readClientHello() closes the connection at its timeout and rejects, however the read ends", async () => {
  for (const end of ["hang", "hang-then-error"] as const) {
    using time = new FakeTime();
    const conn = new ScriptConn(LARGE.subarray(0, 10), 10, end);
    const r = readClientHello(conn, 64 * 1024, 100);
    const outcome = r.then(() => "resolved", (e: Error) => e.message);
    await Promise.resolve();
    time.tick(99);
    assert.equal(conn.closed, 0);
    time.tick(1);
    assert.equal(conn.closed, 1, end);
    assert.equal(await outcome, "Cannot read TLS ClientHello: none within 100 ms", end);
  }
  // A read error before the timeout is passed on as it is.
  using _time = new FakeTime();
  const failing: ByteConn = {
    ...new ScriptConn(u8(), 1, "eof"),
    read: () => Promise.reject(new Error("connection reset")),
  } as unknown as ByteConn;
  await assert.rejects(readClientHello(failing, 100, 100), /^Error: connection reset$/);
});
