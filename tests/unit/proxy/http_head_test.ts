import assert from "node:assert/strict";
import {
  findHeadEnd,
  headerValues,
  HttpError,
  latin1Decode,
  latin1Encode,
  latin1EncodeInto,
  parseRequestHead,
  parseResponseHead,
  requestBodyFraming,
  responseBodyFraming,
  serializeHead,
  serializeHeadText,
} from "@/proxy/http_head.ts";
import { ChunkedScanner } from "@/proxy/chunked_scanner.ts";
import { FramingError } from "@/http1/framing.ts";

const enc = (s: string) => new TextEncoder().encode(s);

function httpError(fn: () => unknown, status: number, includes?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HttpError, `expected HttpError, got ${err}`);
    assert.equal(err.status, status, err.message);
    if (includes) assert.ok(err.message.includes(includes), err.message);
    return true;
  });
}

Deno.test("findHeadEnd() finds CRLF CRLF and bare LF LF, and -1 while incomplete", () => {
  assert.equal(findHeadEnd(enc("GET / HTTP/1.1\r\nA: b\r\n\r\nBODY"), 1024), 24);
  assert.equal(findHeadEnd(enc("GET / HTTP/1.1\nA: b\n\nBODY"), 1024), 21);
  assert.equal(findHeadEnd(enc("GET / HTTP/1.1\r\nA: b\r\n"), 1024), -1);
  assert.equal(findHeadEnd(enc(""), 1024), -1);
});

Deno.test("findHeadEnd() resumes a scan across a terminator split between reads", () => {
  const full = enc("GET / HTTP/1.1\r\nA: b\r\n\r\n");
  const part = full.subarray(0, full.length - 2);
  assert.equal(findHeadEnd(part, 1024), -1);
  assert.equal(findHeadEnd(full, 1024, part.length), full.length);
});

Deno.test("findHeadEnd() throws 431 when the head reaches the limit without an end", () => {
  httpError(() => findHeadEnd(enc("GET / HTTP/1.1\r\nA: " + "x".repeat(100)), 64), 431, "64 bytes");
});

Deno.test("findHeadEnd() throws 431 when the head ends just past the limit", () => {
  const head = enc("GET / HTTP/1.1\r\nA: b\r\n\r\n"); // 24 bytes
  assert.equal(findHeadEnd(head, 24), 24);
  httpError(() => findHeadEnd(head, 23), 431);
});

Deno.test("parseRequestHead() parses method, target, version and headers in order", () => {
  const h = parseRequestHead(
    enc("POST http://a.test/x?y HTTP/1.1\r\nHost: a.test\r\nX-A:  1 \r\nx-a: 2\r\n\r\n"),
  );
  assert.equal(h.method, "POST");
  assert.equal(h.target, "http://a.test/x?y");
  assert.equal(h.version, "HTTP/1.1");
  assert.deepEqual(h.headers, [["Host", "a.test"], ["X-A", "1"], ["x-a", "2"]]);
});

Deno.test("parseRequestHead() rejects malformed request lines with 400", () => {
  for (
    const bad of [
      "GET\r\n\r\n",
      "GET  / HTTP/1.1\r\n\r\n",
      "G(T / HTTP/1.1\r\n\r\n",
      "GET / HTTX/1.1\r\n\r\n",
      "GET /\x01 HTTP/1.1\r\n\r\n",
      "\r\n\r\n",
    ]
  ) {
    httpError(() => parseRequestHead(enc(bad)), 400);
  }
  httpError(() => parseRequestHead(enc("GET / HTTP/2.0\r\n\r\n")), 505);
});

Deno.test("parseRequestHead() rejects bad header lines with 400", () => {
  const cases = [
    "NoColon",
    ": empty-name",
    "Bad Name: x",
    "Name : space-before-colon",
    " folded",
    "X: a\x00b",
  ];
  for (const line of cases) {
    httpError(() => parseRequestHead(enc(`GET / HTTP/1.1\r\n${line}\r\n\r\n`)), 400, undefined);
  }
});

Deno.test("parseRequestHead() rejects more than MAX_HEADER_COUNT fields with 431", () => {
  const lines = Array.from({ length: 300 }, (_, i) => `X-${i}: v`).join("\r\n");
  httpError(() => parseRequestHead(enc(`GET / HTTP/1.1\r\n${lines}\r\n\r\n`)), 431);
});

Deno.test("parseRequestHead() keeps 8-bit header bytes exact (latin1 round trip)", () => {
  const raw = new Uint8Array([
    ...enc("GET / HTTP/1.1\r\nX: "),
    0x80,
    0xe9,
    0xff,
    ...enc("\r\n\r\n"),
  ]);
  const h = parseRequestHead(raw);
  const out = serializeHead("GET / HTTP/1.1", h.headers);
  assert.deepEqual(out, raw);
  assert.equal(latin1Decode(latin1Encode("\x80\xff")), "\x80\xff");
});

Deno.test("parseResponseHead() parses status lines, with and without reason", () => {
  const r = parseResponseHead(enc("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"));
  assert.equal(r.status, 404);
  assert.equal(r.reason, "Not Found");
  assert.equal(parseResponseHead(enc("HTTP/1.0 200\r\n\r\n")).reason, "");
  httpError(() => parseResponseHead(enc("HTTP/1.1 2000 OK\r\n\r\n")), 502);
  httpError(() => parseResponseHead(enc("SSH-2.0-OpenSSH\r\n\r\n")), 502);
});

Deno.test("requestBodyFraming() reads Content-Length and chunked, rejects conflicts", () => {
  const req = (headers: string) =>
    parseRequestHead(enc(`POST http://a/ HTTP/1.1\r\nHost: a\r\n${headers}\r\n`));
  assert.deepEqual(requestBodyFraming(req("")), { kind: "none" });
  assert.deepEqual(requestBodyFraming(req("Content-Length: 10\r\n")), {
    kind: "length",
    length: 10,
  });
  assert.deepEqual(requestBodyFraming(req("Content-Length: 0\r\n")), { kind: "none" });
  httpError(() => requestBodyFraming(req("Content-Length: 5, 5\r\n")), 400);
  assert.deepEqual(requestBodyFraming(req("Transfer-Encoding: chunked\r\n")), { kind: "chunked" });
  httpError(() => requestBodyFraming(req("Content-Length: 5\r\nContent-Length: 6\r\n")), 400);
  httpError(() => requestBodyFraming(req("Content-Length: -1\r\n")), 400);
  httpError(() => requestBodyFraming(req("Content-Length: 1e3\r\n")), 400);
  httpError(
    () => requestBodyFraming(req("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n")),
    400,
    "both",
  );
  httpError(() => requestBodyFraming(req("Transfer-Encoding: gzip\r\n")), 400);
  httpError(() => requestBodyFraming(req("Transfer-Encoding: xchunked\r\n")), 501);
  httpError(() => requestBodyFraming(req("Transfer-Encoding: chunked, chunked\r\n")), 400);
});

Deno.test("responseBodyFraming() has no body for HEAD, 1xx, 204 and 304, else reads until close", () => {
  const resp = (status: number, headers = "") =>
    parseResponseHead(enc(`HTTP/1.1 ${status} X\r\n${headers}\r\n`));
  assert.deepEqual(responseBodyFraming(resp(200, "Content-Length: 5\r\n"), "HEAD"), {
    kind: "none",
  });
  assert.deepEqual(responseBodyFraming(resp(204), "GET"), { kind: "none" });
  assert.deepEqual(responseBodyFraming(resp(304, "Content-Length: 5\r\n"), "GET"), {
    kind: "none",
  });
  assert.deepEqual(responseBodyFraming(resp(100), "GET"), { kind: "none" });
  assert.deepEqual(responseBodyFraming(resp(200), "GET"), { kind: "close" });
  assert.deepEqual(
    responseBodyFraming(resp(200, "Transfer-Encoding: chunked\r\n"), "GET"),
    { kind: "chunked" },
  );
});

Deno.test("ChunkedScanner finds the end of a chunked body and leaves what follows", () => {
  const body = "4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n";
  const s = new ChunkedScanner(1024);
  const r = s.scan(enc(body + "GET /next"));
  assert.deepEqual(r, { consumed: body.length, done: true });
});

Deno.test("ChunkedScanner works byte by byte", () => {
  const body = enc("A\r\n0123456789\r\n0\r\n\r\n");
  const s = new ChunkedScanner(1024);
  let total = 0;
  for (let i = 0; i < body.length; i++) {
    const r = s.scan(body.subarray(i, i + 1));
    total += r.consumed;
    assert.equal(r.done, i === body.length - 1);
  }
  assert.equal(total, body.length);
});

Deno.test("ChunkedScanner rejects bad sizes, missing CRLF and oversized lines", () => {
  assert.throws(() => new ChunkedScanner(1024).scan(enc("zz\r\n")), FramingError);
  assert.throws(() => new ChunkedScanner(1024).scan(enc("-1\r\n")), FramingError);
  assert.throws(() => new ChunkedScanner(1024).scan(enc("1234567890abc\r\n")), FramingError);
  assert.throws(() => new ChunkedScanner(1024).scan(enc("2\r\nabX")), FramingError);
  assert.throws(() => new ChunkedScanner(1024).scan(enc("1;" + "e".repeat(5000))), FramingError);
  assert.throws(
    () => new ChunkedScanner(16).scan(enc("0\r\nX-Long-Trailer: " + "v".repeat(40) + "\r\n\r\n")),
    FramingError,
  );
});

Deno.test("latin1Decode() and latin1Encode() map every byte 1:1 (ASCII fast path and 8-bit)", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const text = latin1Decode(all);
  assert.equal(text.length, 256);
  for (let i = 0; i < 256; i++) assert.equal(text.charCodeAt(i), i);
  assert.deepEqual(latin1Encode(text), all);
  const ascii = all.subarray(0, 128);
  assert.equal(latin1Decode(ascii), text.slice(0, 128));
  assert.deepEqual(latin1Encode(text.slice(0, 128)), ascii);
  // A UTF-8 BOM is data, not a marker, in latin1.
  assert.equal(latin1Decode(new Uint8Array([0xef, 0xbb, 0xbf, 0x41])), "\xef\xbb\xbfA");
  // Chars above 0xff keep their low byte (as before).
  assert.deepEqual(latin1Encode("A\u0141\ud800"), new Uint8Array([0x41, 0x41, 0x00]));
});

Deno.test("latin1EncodeInto() writes latin1 at an offset and returns the end", () => {
  const out = new Uint8Array(12).fill(0x2e);
  assert.equal(latin1EncodeInto("abc", out, 2), 5);
  assert.deepEqual(out.subarray(0, 6), enc("..abc."));
  const eight = new Uint8Array(8).fill(0x2e);
  assert.equal(latin1EncodeInto("\xe9t\xe9\xff", eight, 1), 5);
  assert.deepEqual(eight.subarray(1, 5), new Uint8Array([0xe9, 0x74, 0xe9, 0xff]));
  assert.equal(eight[0], 0x2e);
});

Deno.test("serializeHeadText() is serializeHead() as latin1 text", () => {
  const headers: [string, string][] = [["Host", "a"], ["X", "\xe9"]];
  const text = serializeHeadText("GET / HTTP/1.1", headers);
  assert.equal(text, "GET / HTTP/1.1\r\nHost: a\r\nX: \xe9\r\n\r\n");
  assert.deepEqual(serializeHead("GET / HTTP/1.1", headers), latin1Encode(text));
});

Deno.test("headerValues() matches names case-insensitively, without confusing lengths", () => {
  const headers: [string, string][] = [
    ["Content-Length", "1"],
    ["content-length", "2"],
    ["CONTENT-LENGTH", "3"],
    ["Content-Lengths", "x"],
    ["\u212Aeep-Alive", "kelvin"], // toLowerCase() turns the Kelvin sign into "k"
  ];
  assert.deepEqual(headerValues(headers, "Content-Length"), ["1", "2", "3"]);
  assert.deepEqual(headerValues(headers, "keep-alive"), ["kelvin"]);
});

Deno.test("parseResponseHead() trims spaces and tabs around values and keeps inner ones", () => {
  const r = parseResponseHead(enc("HTTP/1.1 200 OK\r\nA: \t x \t y\t \r\nB:\r\nC:z\r\n\r\n"));
  assert.deepEqual(r.headers, [["A", "x \t y"], ["B", ""], ["C", "z"]]);
  httpError(() => parseResponseHead(enc("HTTP/1.1 200 OK\r\nBad Name: v\r\n\r\n")), 502);
  httpError(() => parseResponseHead(enc("HTTP/1.1 200 OK\r\n\tfolded\r\n\r\n")), 502);
});
