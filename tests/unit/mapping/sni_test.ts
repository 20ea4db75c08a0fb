/**
 * The ClientHello SNI parser: real hellos from openssl and curl, a stored
 * fixture, every split and record framing, truncated, garbage and oversized
 * input, a seeded fuzz run; and readClientHello on a real connection.
 */
import assert from "node:assert/strict";
import {
  type ClientHelloResult,
  MAX_CLIENT_HELLO_INPUT_BYTES,
  parseClientHello,
  readClientHello,
} from "@/mapping/mod.ts";
import { Prng } from "../tunnel/_prng.ts";
import {
  captureClientHello,
  closeQuietly,
  concat,
  connect,
  parseHexFixture,
  reframe,
  send,
} from "./_helpers.ts";

const FIXTURE = parseHexFixture(
  await Deno.readTextFile(
    new URL("../../testdata/sni/openssl_client_hello.hex", import.meta.url),
  ),
);
const FIXTURE_NO_SNI = parseHexFixture(
  await Deno.readTextFile(
    new URL("../../testdata/sni/openssl_client_hello_no_sni.hex", import.meta.url),
  ),
);

function assertOk(r: ClientHelloResult, name: string | undefined): void {
  assert.deepEqual(r, { status: "ok", serverName: name });
}

Deno.test("parseClientHello() reads the lower-cased name of a stored openssl hello", () => {
  assertOk(parseClientHello(FIXTURE), "fixture.example.com");
  // Bytes after the hello (none are expected, but a client may pipeline) do not matter.
  assertOk(parseClientHello(concat([FIXTURE, new Uint8Array(100)])), "fixture.example.com");
});

Deno.test("parseClientHello() reports no name for a hello without SNI", () => {
  assertOk(parseClientHello(FIXTURE_NO_SNI), undefined);
});

Deno.test("parseClientHello() reads a live openssl s_client hello", async () => {
  const hello = await captureClientHello((port) => [
    "openssl",
    "s_client",
    "-connect",
    `127.0.0.1:${port}`,
    "-servername",
    "A.Example.com",
  ]);
  assertOk(parseClientHello(hello), "a.example.com");
});

Deno.test("parseClientHello() reads a live curl hello (https URL via --resolve)", async () => {
  const hello = await captureClientHello((port) => [
    "curl",
    "-sS",
    "--max-time",
    "5",
    "--noproxy",
    "*",
    "--resolve",
    `secure.test.example:${port}:127.0.0.1`,
    `https://secure.test.example:${port}/`,
  ]);
  assertOk(parseClientHello(hello), "secure.test.example");
});

Deno.test("parseClientHello() answers need_more for every strict prefix", () => {
  for (let n = 0; n < FIXTURE.length; n++) {
    const r = parseClientHello(FIXTURE.subarray(0, n));
    assert.equal(r.status, "need_more", `prefix of ${n} bytes: ${JSON.stringify(r)}`);
  }
});

Deno.test("parseClientHello() handles a hello spread over many records", () => {
  for (const size of [1, 2, 3, 4, 5, 7, 64, 200]) {
    const bytes = reframe(FIXTURE, size);
    assertOk(parseClientHello(bytes), "fixture.example.com");
    // Every prefix still needs more (checks the record walk at each boundary).
    for (let n = 0; n < bytes.length; n += Math.max(1, Math.floor(size / 2))) {
      assert.equal(
        parseClientHello(bytes.subarray(0, n)).status,
        "need_more",
        `size ${size} n ${n}`,
      );
    }
  }
});

Deno.test("parseClientHello() rejects non-TLS input at once", () => {
  for (const text of ["GET / HTTP/1.1\r\n", "\x05\x01\x00", "SSH-2.0-OpenSSH"]) {
    const r = parseClientHello(new TextEncoder().encode(text));
    assert.equal(r.status, "not_tls", text);
  }
  // A TLS alert record, a handshake record of version 2, a zero-length record.
  assert.equal(parseClientHello(new Uint8Array([0x15, 0x03, 0x03, 0, 2, 2, 40])).status, "not_tls");
  assert.equal(parseClientHello(new Uint8Array([0x16, 0x02])).status, "not_tls");
  assert.equal(parseClientHello(new Uint8Array([0x16, 0x03, 0x01, 0, 0])).status, "not_tls");
  // A handshake message that is not a ClientHello (ServerHello = 2).
  const server = FIXTURE.slice();
  server[5] = 2;
  assert.equal(parseClientHello(server).status, "not_tls");
});

Deno.test("parseClientHello() rejects an oversized hello and input past its limit", () => {
  // A handshake header announcing 1 MiB.
  const big = new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x10, 0x00, 0x00]);
  const r = parseClientHello(big);
  assert.equal(r.status, "not_tls");
  assert.match((r as { reason: string }).reason, /exceeds/);
  // 16 KiB announced, delivered in 1-byte records: runs into the input limit.
  const header = new Uint8Array([0x01, 0x00, 0x40, 0x00]);
  const records: Uint8Array[] = [];
  for (let i = 0; records.length * 6 < MAX_CLIENT_HELLO_INPUT_BYTES + 12; i++) {
    records.push(new Uint8Array([0x16, 0x03, 0x01, 0x00, 0x01, i < 4 ? header[i]! : 0]));
  }
  const tooMany = parseClientHello(concat(records));
  assert.equal(tooMany.status, "not_tls");
  assert.match((tooMany as { reason: string }).reason, /within/);
});

/** Offsets in FIXTURE (openssl 3 hello, one record): the handshake body starts at 9. */
function withByte(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const out = bytes.slice();
  out[at] = value;
  return out;
}

Deno.test("parseClientHello() checks every length of a corrupted hello", () => {
  const sidAt = 9 + 34;
  assert.equal(parseClientHello(withByte(FIXTURE, sidAt, 33)).status, "not_tls"); // session id > 32
  assert.equal(parseClientHello(withByte(FIXTURE, sidAt, 255)).status, "not_tls");
  // The handshake length one byte longer than the record: need more, then garbage.
  const longer = withByte(FIXTURE, 8, FIXTURE[8]! + 1);
  assert.notEqual(parseClientHello(longer).status, "ok");
  // Extensions length no longer matching the message.
  const shorter = withByte(FIXTURE, 8, FIXTURE[8]! - 1); // message shorter than its parts
  assert.equal(parseClientHello(shorter).status, "not_tls");
});

/** A minimal hand-made ClientHello with the given extensions block. */
function handMade(extensions: Uint8Array | null): Uint8Array {
  const body = concat([
    new Uint8Array([0x03, 0x03]),
    new Uint8Array(32),
    new Uint8Array([0]), // session id
    new Uint8Array([0, 2, 0x13, 0x01]), // one cipher suite
    new Uint8Array([1, 0]), // null compression
    extensions === null
      ? new Uint8Array(0)
      : concat([new Uint8Array([extensions.length >> 8, extensions.length & 0xff]), extensions]),
  ]);
  const msg = concat([
    new Uint8Array([1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]),
    body,
  ]);
  return concat([new Uint8Array([0x16, 0x03, 0x01, msg.length >> 8, msg.length & 0xff]), msg]);
}

function sniExtension(entries: Array<[number, string]>): Uint8Array {
  const list = concat(entries.map(([type, name]) => {
    const n = new TextEncoder().encode(name);
    return concat([new Uint8Array([type, n.length >> 8, n.length & 0xff]), n]);
  }));
  const data = concat([new Uint8Array([list.length >> 8, list.length & 0xff]), list]);
  return concat([new Uint8Array([0, 0, data.length >> 8, data.length & 0xff]), data]);
}

Deno.test("parseClientHello() parses hand-made hellos and rejects bad names", () => {
  assertOk(parseClientHello(handMade(null)), undefined);
  assertOk(parseClientHello(handMade(new Uint8Array(0))), undefined);
  assertOk(parseClientHello(handMade(sniExtension([[0, "WWW.Example.ORG"]]))), "www.example.org");
  // An unknown name type is skipped.
  assertOk(parseClientHello(handMade(sniExtension([[7, "x"], [0, "b.example"]]))), "b.example");
  for (const bad of ["", "a b.example", "a..b", ".a", "a.", "é.example", "x".repeat(256)]) {
    const r = parseClientHello(handMade(sniExtension([[0, bad]])));
    assert.equal(r.status, "not_tls", JSON.stringify(bad));
  }
  // Two host names, two server_name extensions.
  assert.equal(
    parseClientHello(handMade(sniExtension([[0, "a.example"], [0, "b.example"]]))).status,
    "not_tls",
  );
  const twice = concat([sniExtension([[0, "a.example"]]), sniExtension([[0, "a.example"]])]);
  assert.equal(parseClientHello(handMade(twice)).status, "not_tls");
});

Deno.test("parseClientHello() never throws on random bytes or mutated hellos (seeded fuzz)", () => {
  const rng = new Prng(0x5eed_5a1);
  const counts = { ok: 0, not_tls: 0, need_more: 0 };
  const base = [FIXTURE, FIXTURE_NO_SNI, reframe(FIXTURE, 50)];
  for (let i = 0; i < 20_000; i++) {
    let input: Uint8Array;
    if (i % 4 === 0) {
      input = rng.bytes(rng.int(400));
      if (rng.int(2) === 0 && input.length > 0) input[0] = 0x16;
      if (rng.int(2) === 0 && input.length > 1) input[1] = 0x03;
    } else {
      input = rng.pick(base).slice();
      const edits = 1 + rng.int(4);
      for (let e = 0; e < edits; e++) {
        switch (rng.int(4)) {
          case 0:
            input[rng.int(input.length)] = rng.int(256);
            break;
          case 1:
            input = input.slice(0, rng.int(input.length + 1));
            break;
          case 2:
            input = concat([input, rng.bytes(rng.int(64))]);
            break;
          default: {
            const at = rng.int(input.length);
            input = concat([input.subarray(0, at), input.subarray(at + rng.int(8))]);
          }
        }
      }
    }
    // A frozen copy: a parser that writes into or reads past its input would show it.
    const copy = input.slice();
    const r = parseClientHello(input);
    counts[r.status]++;
    assert.deepEqual(input, copy);
    if (r.status === "ok" && r.serverName !== undefined) {
      assert.match(r.serverName, /^[a-z0-9._-]{1,255}$/);
    }
    if (r.status !== "need_more") {
      // A decision depends only on the bytes before it: trailing bytes change nothing.
      assert.deepEqual(parseClientHello(concat([input, rng.bytes(1 + rng.int(32))])), r);
    }
  }
  // The corpus reached every outcome.
  assert.ok(
    counts.ok > 100 && counts.not_tls > 100 && counts.need_more > 100,
    JSON.stringify(counts),
  );
});

Deno.test("readClientHello() returns the name and exactly the bytes it read", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await connect(listener.addr.port);
  const server = await listener.accept();
  try {
    const split = reframe(FIXTURE, 100);
    const sent = (async () => {
      // Dribble the hello in odd chunks.
      for (let i = 0; i < split.length; i += 37) {
        await send(client, split.subarray(i, Math.min(split.length, i + 37)));
      }
    })();
    const r = await readClientHello(server, 64 * 1024, 5_000);
    await sent;
    assert.equal(r.serverName, "fixture.example.com");
    assert.equal(r.hello.status, "ok");
    assert.deepEqual(r.buffered, split);
  } finally {
    closeQuietly(client);
    closeQuietly(server);
  }
});

Deno.test("readClientHello() decides early for non-TLS and at end of stream", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await connect(listener.addr.port);
  const server = await listener.accept();
  try {
    await send(client, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const r = await readClientHello(server, 64 * 1024, 5_000);
    assert.equal(r.serverName, undefined);
    assert.equal(r.hello.status, "not_tls");
    assert.equal(new TextDecoder().decode(r.buffered).slice(0, 3), "GET");
  } finally {
    closeQuietly(client);
    closeQuietly(server);
  }
  const client2 = await connect(listener.addr.port);
  const server2 = await listener.accept();
  try {
    await send(client2, FIXTURE.subarray(0, 40));
    await client2.closeWrite();
    const r = await readClientHello(server2, 64 * 1024, 5_000);
    assert.equal(r.hello.status, "need_more");
    assert.equal(r.buffered.length, 40);
  } finally {
    closeQuietly(client2);
    closeQuietly(server2);
  }
});

Deno.test("readClientHello() rejects after its timeout and closes the connection", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await connect(listener.addr.port);
  const server = await listener.accept();
  try {
    await send(client, FIXTURE.subarray(0, 10));
    await assert.rejects(readClientHello(server, 64 * 1024, 150), /Cannot read TLS ClientHello/);
  } finally {
    closeQuietly(client);
    closeQuietly(server);
  }
});
