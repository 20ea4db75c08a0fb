/**
 * A hostile client against the three HTTP/1 front ends (forward proxy,
 * reverse proxy plain listener with proxy_pass, tunnel HTTP mapping port),
 * each a real process, driven from raw sockets. Every ambiguous or malformed
 * request must get its documented status and then the connection must end,
 * and the raw origin behind (which parses leniently, the way a smuggling
 * target would) must see exactly the requests meant for it and never a
 * smuggled one. The same for malformed upstream responses (502, close), and a
 * victim on a separate connection always gets its own response.
 */
import assert from "node:assert/strict";
import {
  startTunnelClient,
  startTunnelServer,
  startWmproxy,
  tempDir,
  type WmproxyProcess,
  writeConfig,
} from "./_harness.ts";

const enc = new TextEncoder();
const dec = new TextDecoder("latin1");

/** One request as the origin parsed it. */
interface Seen {
  method: string;
  target: string;
  headers: [string, string][];
  body: string;
}

const POISON = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\npoisoned";

/** Malformed or ambiguous responses the origin sends for `/r/<name>`. */
const BAD_RESPONSES: Record<string, string> = {
  "cl-te": "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
    POISON,
  "te-cl": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 45\r\n\r\n0\r\n\r\n" +
    POISON,
  "two-cl": `HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: ${POISON.length}\r\n\r\n` +
    POISON,
  "cl-list": "HTTP/1.1 200 OK\r\nContent-Length: 0, 0\r\n\r\n" + POISON,
  "te-http10": "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + POISON,
  "unknown-te": "HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + POISON,
  "bad-chunk": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n" +
    POISON,
  "chunk-bare-lf": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" +
    POISON,
  "bare-lf-head": "HTTP/1.1 200 OK\nContent-Length: 0\n\n" + POISON,
  // Valid: Connection may not remove the framing; the client must get this body, not hang.
  "conn-cl":
    "HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 10\r\n\r\nok conn-cl",
};

/**
 * A raw-socket origin on a free port. It parses leniently on purpose (bare
 * LF ends lines, Content-Length wins over chunked), records every request it
 * parses, answers `ok <target>`, and for `/r/<name>` sends
 * {@link BAD_RESPONSES}`[name]` instead.
 */
function startRawOrigin(): AsyncDisposable & { port: number; seen: Seen[] } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const seen: Seen[] = [];
  const conns = new Set<Deno.Conn>();
  const serve = async (conn: Deno.Conn) => {
    let buf = "";
    const chunk = new Uint8Array(65536);
    const more = async (): Promise<boolean> => {
      const n = await conn.read(chunk);
      if (n === null) return false;
      buf += dec.decode(chunk.subarray(0, n));
      return true;
    };
    try {
      while (true) {
        let end: RegExpExecArray | null;
        while ((end = /\r?\n\r?\n/.exec(buf)) === null) if (!(await more())) return;
        const head = buf.slice(0, end.index);
        buf = buf.slice(end.index + end[0].length);
        const lines = head.split(/\r?\n/);
        const [method = "", target = ""] = lines[0]!.split(" ");
        const headers = lines.slice(1).map((l): [string, string] => {
          const colon = l.indexOf(":");
          return [l.slice(0, colon).trim().toLowerCase(), l.slice(colon + 1).trim()];
        });
        const get = (n: string) => headers.find(([k]) => k === n)?.[1];
        let body = "";
        const cl = get("content-length");
        if (cl !== undefined) {
          const length = parseInt(cl, 10) || 0;
          while (buf.length < length) if (!(await more())) return;
          body = buf.slice(0, length);
          buf = buf.slice(length);
        } else if (/chunked/i.test(get("transfer-encoding") ?? "")) {
          while (true) {
            let nl: number;
            while ((nl = buf.indexOf("\n")) === -1) if (!(await more())) return;
            const size = parseInt(buf.slice(0, nl), 16);
            buf = buf.slice(nl + 1);
            if (!(size > 0)) {
              while (true) { // trailer lines up to an empty one
                while ((nl = buf.indexOf("\n")) === -1) if (!(await more())) return;
                const line = buf.slice(0, nl).replace(/\r$/, "");
                buf = buf.slice(nl + 1);
                if (line === "") break;
              }
              break;
            }
            while (buf.length < size + 2) if (!(await more())) return;
            body += buf.slice(0, size);
            buf = buf.slice(size).replace(/^\r?\n/, "");
          }
        }
        seen.push({ method, target, headers, body });
        const bad = target.startsWith("/r/") ? BAD_RESPONSES[target.slice(3)] : undefined;
        const text = `ok ${target}`;
        const reply = bad ?? `HTTP/1.1 200 OK\r\nContent-Length: ${text.length}\r\n\r\n${text}`;
        await conn.write(enc.encode(reply));
      }
    } catch {
      // the proxy went away
    } finally {
      conns.delete(conn);
      conn.close();
    }
  };
  const loop = (async () => {
    for await (const c of listener) {
      conns.add(c);
      serve(c);
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    seen,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await loop;
    },
  };
}

/** A response as the client received it. */
interface Got {
  status: number;
  body: string;
}

/**
 * Sends `payload` on a fresh connection and reads until the proxy closes it
 * (failing if that does not happen within the deadline); parses the responses.
 */
async function exchange(port: number, payload: string): Promise<{ responses: Got[]; raw: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let raw = "";
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, 10_000);
  try {
    await conn.write(enc.encode(payload)).catch(() => 0);
    const buf = new Uint8Array(65536);
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch (err) {
        if (timedOut) break;
        if (err instanceof Deno.errors.ConnectionReset) break; // counted as closed
        throw err;
      }
      if (n === null) break;
      raw += dec.decode(buf.subarray(0, n));
    }
  } finally {
    clearTimeout(deadline);
    if (!timedOut) conn.close();
  }
  assert.ok(!timedOut, `the connection was not closed within 10 s; received:\n${raw}`);
  return { responses: parseResponses(raw), raw };
}

function parseResponses(raw: string): Got[] {
  const out: Got[] = [];
  let rest = raw;
  while (rest.length > 0) {
    const end = rest.indexOf("\r\n\r\n");
    assert.ok(end > 0, `an incomplete response head: ${JSON.stringify(rest.slice(0, 200))}`);
    const lines = rest.slice(0, end).split("\r\n");
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!);
    assert.ok(m, `not a status line: ${JSON.stringify(lines[0])}`);
    rest = rest.slice(end + 4);
    const header = (name: string) =>
      lines.slice(1).find((l) => l.toLowerCase().startsWith(name + ":"))?.slice(name.length + 1)
        .trim();
    const status = Number(m[1]);
    let body = "";
    const cl = header("content-length");
    if (status >= 100 && status < 200) continue;
    if (cl !== undefined) {
      body = rest.slice(0, Number(cl));
      assert.equal(body.length, Number(cl), `a truncated body: ${JSON.stringify(body)}`);
      rest = rest.slice(Number(cl));
    } else if (header("transfer-encoding") === "chunked") {
      while (true) {
        const nl = rest.indexOf("\r\n");
        const size = parseInt(rest.slice(0, nl), 16);
        rest = rest.slice(nl + 2);
        if (size === 0) {
          rest = rest.slice(rest.indexOf("\r\n") + 2);
          break;
        }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    } else {
      body = rest;
      rest = "";
    }
    out.push({ status, body });
  }
  return out;
}

type Front = "forward" | "reverse" | "mapping";

/** How a front is addressed: placeholders of the case texts. */
interface FrontTarget {
  front: Front;
  port: number;
  /** Prefix of a request target: "" (origin-form) or "http://host:port" (forward proxy). */
  T: string;
  /** The Host value. */
  H: string;
  /** An absolute-form prefix naming the right host. */
  ABS: string;
}

interface Expect {
  /** Statuses the client receives, in order, before the connection ends. */
  status: number[];
  /** Targets the origin parses, in order. */
  origin: string[];
  /** Bodies the origin must have seen, by target. */
  bodies?: Record<string, string>;
}

interface Case extends Expect {
  name: string;
  /** The attack; `/after` (Connection: close) is appended to it. */
  req: string;
  override?: Partial<Record<Front, Expect>>;
}

const AFTER = "GET {T}/after HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n";
const S = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
const chunk = (s: string) => `${s.length.toString(16)}\r\n${s}\r\n`;
const post = (fields: string, body: string, version = "HTTP/1.1") =>
  `POST {T}/a ${version}\r\nHost: {H}\r\n${fields}\r\n${body}`;
const refused = (name: string, req: string, status = 400): Case => ({
  name,
  req,
  status: [status],
  origin: [],
});
const passed = (name: string, req: string, bodies?: Record<string, string>): Case => ({
  name,
  req,
  status: [200, 200],
  origin: ["/a", "/after"],
  ...(bodies ? { bodies } : {}),
});

const CASES: Case[] = [
  // Connection never removes the framing (nor Host): the body stays the body.
  passed(
    "Connection: content-length",
    post(`Connection: content-length\r\nContent-Length: ${S.length}\r\n`, S),
    { "/a": S },
  ),
  passed(
    "Connection: transfer-encoding",
    post("Connection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n", chunk(S) + "0\r\n\r\n"),
    { "/a": S },
  ),
  passed("Connection: host", "GET {T}/a HTTP/1.1\r\nHost: {H}\r\nConnection: host\r\n\r\n"),
  passed(
    "Connection: Content-Length, Transfer-Encoding (mixed case)",
    post("Connection: Content-Length, Transfer-Encoding\r\nContent-Length: 5\r\n", "hello"),
    { "/a": "hello" },
  ),
  // Content-Length and Transfer-Encoding together, in any order.
  refused("CL + TE", post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" + S)),
  refused("TE + CL", post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n" + S)),
  refused(
    "CL + TE + Connection: content-length",
    post(
      "Connection: content-length\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
      "0\r\n\r\n" + S,
    ),
  ),
  refused(
    "TE + CL: 0 + Connection: transfer-encoding",
    post(
      "Connection: transfer-encoding\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n",
      chunk(S) + "0\r\n\r\n",
    ),
  ),
  // Content-Length values.
  refused("two CL differing", post("Content-Length: 5\r\nContent-Length: 0\r\n", "hello" + S)),
  refused("two CL equal", post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello" + S)),
  refused("CL: 5, 5", post("Content-Length: 5, 5\r\n", "hello" + S)),
  refused("CL: 5,0", post("Content-Length: 5,0\r\n", "hello" + S)),
  refused("CL: +5", post("Content-Length: +5\r\n", "hello" + S)),
  refused("CL: 0x5", post("Content-Length: 0x5\r\n", "hello" + S)),
  refused("CL: -5", post("Content-Length: -5\r\n", "hello" + S)),
  refused("CL: 5 5", post("Content-Length: 5 5\r\n", "hello" + S)),
  refused("CL huge", post("Content-Length: 99999999999999999999\r\n", "hello" + S)),
  refused("CL empty", post("Content-Length:\r\n", "hello" + S)),
  // Transfer codings.
  refused("TE: chunked, identity", post("Transfer-Encoding: chunked, identity\r\n", S), 501),
  refused("TE: identity", post("Transfer-Encoding: identity\r\n", S), 501),
  refused("TE: xchunked", post("Transfer-Encoding: xchunked\r\n", chunk(S) + "0\r\n\r\n"), 501),
  refused("TE: chunked;x=1", post("Transfer-Encoding: chunked;x=1\r\n", "0\r\n\r\n" + S), 501),
  refused("TE: chunked, chunked", post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n" + S)),
  refused(
    "TE: chunked twice in two fields",
    post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" + S),
  ),
  refused("TE: gzip (not chunked last)", post("Transfer-Encoding: gzip\r\n", S)),
  refused("TE: chunked, gzip", post("Transfer-Encoding: chunked, gzip\r\n", "0\r\n\r\n" + S)),
  passed(
    "TE: chunked with trailing space (OWS)",
    post("Transfer-Encoding: chunked \r\n", chunk(S) + "0\r\n\r\n"),
    { "/a": S },
  ),
  passed(
    "TE: chunked with tabs around (OWS)",
    post("Transfer-Encoding:\tchunked\t\r\n", chunk(S) + "0\r\n\r\n"),
    { "/a": S },
  ),
  refused(
    "TE: vertical tab before chunked",
    post("Transfer-Encoding: \x0bchunked\r\n", "0\r\n\r\n" + S),
  ),
  refused(
    "TE name with space before colon",
    post("Transfer-Encoding : chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n" + S),
  ),
  refused(
    "TE on HTTP/1.0",
    post("Transfer-Encoding: chunked\r\n", "0\r\n\r\n" + S, "HTTP/1.0"),
  ),
  refused("HTTP/1.0 with CL: 5, 5", post("Content-Length: 5, 5\r\n", "hello" + S, "HTTP/1.0")),
  // Line endings and field syntax.
  refused("bare LF line endings", "GET {T}/a HTTP/1.1\nHost: {H}\n\n"),
  refused("request line ends in bare LF", "GET {T}/a HTTP/1.1\nHost: {H}\r\n\r\n"),
  refused(
    "a field ends in bare LF",
    "POST {T}/a HTTP/1.1\r\nHost: {H}\r\nX-A: 1\nContent-Length: 5\r\n\r\nhello" + S,
  ),
  refused("bare CR in a value", post("X-A: 1\rContent-Length: 5\r\n", "hello" + S)),
  refused("obs-fold", post("X-A: 1\r\n Content-Length: 5\r\n", "hello" + S)),
  refused(
    "obs-fold of Transfer-Encoding",
    post("Transfer-Encoding: gzip\r\n ,chunked\r\n", "0\r\n\r\n" + S),
  ),
  refused("space before colon", post("Content-Length : 5\r\n", "hello" + S)),
  refused("NUL in a field value", post("X-A: a\x00b\r\nContent-Length: 5\r\n", "hello" + S)),
  refused("invalid field name", post("X@A: 1\r\nContent-Length: 5\r\n", "hello" + S)),
  refused("missing Host on HTTP/1.1", "GET {T}/a HTTP/1.1\r\n\r\n"),
  refused("two Hosts", "GET {T}/a HTTP/1.1\r\nHost: {H}\r\nHost: other.test\r\n\r\n"),
  // Chunk lines.
  refused("chunk size 0x10", post("Transfer-Encoding: chunked\r\n", "0x10\r\n" + S)),
  refused("chunk size -1", post("Transfer-Encoding: chunked\r\n", "-1\r\n" + S)),
  refused("chunk size ' 10'", post("Transfer-Encoding: chunked\r\n", " 10\r\n" + S)),
  refused(
    "chunk size of 20 hex digits",
    post("Transfer-Encoding: chunked\r\n", "00000000000000000005\r\nhello\r\n0\r\n\r\n" + S),
  ),
  refused(
    "chunk size overflow",
    post("Transfer-Encoding: chunked\r\n", "ffffffffffffffffffff\r\n" + S),
  ),
  refused(
    "chunk line ends in bare LF",
    post("Transfer-Encoding: chunked\r\n", "5\nhello\r\n0\r\n\r\n" + S),
  ),
  refused(
    "chunk extension with bare CR",
    post("Transfer-Encoding: chunked\r\n", "5;a\rb\r\nhello\r\n0\r\n\r\n" + S),
  ),
  refused(
    "no CRLF after chunk data",
    post("Transfer-Encoding: chunked\r\n", "5\r\nhelloX0\r\n\r\n" + S),
  ),
  refused(
    "bare LF after chunk data",
    post("Transfer-Encoding: chunked\r\n", "5\r\nhello\n0\r\n\r\n" + S),
  ),
  refused(
    "chunk data longer than its size",
    post("Transfer-Encoding: chunked\r\n", "3\r\nhello\r\n0\r\n\r\n" + S),
  ),
  refused(
    "trailer ends in bare LF",
    post("Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n0\r\nX-T: 1\n\r\n" + S),
  ),
  // Request line.
  refused("invalid method chars", "G<T {T}/a HTTP/1.1\r\nHost: {H}\r\n\r\n"),
  refused("space inside the target", "GET {T}/a b HTTP/1.1\r\nHost: {H}\r\n\r\n"),
  refused("two spaces in the request line", "GET  {T}/a HTTP/1.1\r\nHost: {H}\r\n\r\n"),
  refused("lower-case version", "GET {T}/a http/1.1\r\nHost: {H}\r\n\r\n"),
  refused("HTTP/2.0", "GET {T}/a HTTP/2.0\r\nHost: {H}\r\n\r\n", 505),
  {
    ...passed("absolute URI vs Host mismatch", "GET {ABS}/a HTTP/1.1\r\nHost: wrong.test\r\n\r\n"),
    // This front routes by Host: a target naming another authority is refused.
    override: { reverse: { status: [400], origin: [] } },
  },
  // Upstream responses: 502, then both sides close.
  ...Object.keys(BAD_RESPONSES).filter((n) => n !== "conn-cl").map((n): Case => ({
    name: `upstream response ${n}`,
    req: `GET {T}/r/${n} HTTP/1.1\r\nHost: {H}\r\n\r\n`,
    status: [502],
    origin: [`/r/${n}`],
  })),
  {
    name: "upstream response Connection: content-length",
    req: "GET {T}/r/conn-cl HTTP/1.1\r\nHost: {H}\r\n\r\n",
    status: [200, 200],
    origin: ["/r/conn-cl", "/after"],
  },
];

function fill(text: string, t: FrontTarget): string {
  return text.replaceAll("{T}", t.T).replaceAll("{H}", t.H).replaceAll("{ABS}", t.ABS);
}

/** Waits (with a deadline) for a probe on a fresh connection: what came before has been handled. */
async function probe(t: FrontTarget, origin: { seen: Seen[] }, n: number): Promise<void> {
  const target = `/probe-${n}`;
  const { responses } = await exchange(
    t.port,
    fill(`GET {T}${target} HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n`, t),
  );
  assert.deepEqual(responses.map((r) => r.body), [`ok ${target}`], `probe ${n}`);
  assert.ok(origin.seen.some((s) => s.target === target));
}

async function runCases(t: FrontTarget, origin: { seen: Seen[] }): Promise<void> {
  let n = 0;
  const failures: string[] = [];
  for (const c of CASES) {
    const want = c.override?.[t.front] ?? c;
    const label = `${t.front}: ${c.name}`;
    try {
      origin.seen.length = 0;
      const { responses, raw } = await exchange(t.port, fill(c.req + AFTER, t));
      await probe(t, origin, n++);
      const seen = origin.seen.filter((s) => !s.target.startsWith("/probe-"));
      assert.deepEqual(responses.map((r) => r.status), want.status, `${label}: statuses\n${raw}`);
      assert.deepEqual(seen.map((s) => s.target), want.origin, `${label}: what the origin saw`);
      for (const [target, body] of Object.entries(want.bodies ?? {})) {
        const got = seen.find((s) => s.target === target)?.body;
        assert.equal(got, body, `${label}: body of ${target}`);
      }
      assert.ok(!raw.includes("poisoned") && !raw.includes("smuggled"), `${label}: ${raw}`);
      if (want.status[0] === 200) {
        const ok = c.req.includes("/r/conn-cl") ? "ok conn-cl" : "ok /a";
        assert.equal(responses[0]!.body, ok, `${label}: first body`);
      }
    } catch (err) {
      failures.push(err instanceof Error ? err.message.split("\n")[0]! : String(err));
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${CASES.length} cases failed`);
  assert.ok(
    !origin.seen.some((s) => s.target.includes("smuggled")),
    `${t.front}: a smuggled request reached the origin`,
  );
}

/** A valid pipelined keep-alive sequence still works: four requests, four answers, in order. */
async function pipelined(t: FrontTarget, origin: { seen: Seen[] }): Promise<void> {
  origin.seen.length = 0;
  const payload = fill(
    "GET {T}/p1 HTTP/1.1\r\nHost: {H}\r\n\r\n" +
      "POST {T}/p2 HTTP/1.1\r\nHost: {H}\r\nContent-Length: 5\r\n\r\nhello" +
      `POST {T}/p3 HTTP/1.1\r\nHost: {H}\r\nTransfer-Encoding: chunked\r\n\r\n` +
      "3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n" +
      "GET {T}/p4 HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n",
    t,
  );
  const { responses, raw } = await exchange(t.port, payload);
  assert.deepEqual(
    responses.map((r) => `${r.status} ${r.body}`),
    ["200 ok /p1", "200 ok /p2", "200 ok /p3", "200 ok /p4"],
    `${t.front}: pipelined\n${raw}`,
  );
  assert.deepEqual(origin.seen.map((s) => `${s.target}=${s.body}`), [
    "/p1=",
    "/p2=hello",
    "/p3=abcde",
    "/p4=",
  ]);
}

/**
 * Attacks on one connection (smuggling by request and poisoned responses),
 * then a victim on another: the victim gets its own body, every time.
 */
async function victim(t: FrontTarget): Promise<void> {
  for (const attack of [CASES[0]!, CASES[4]!, ...CASES.filter((c) => c.req.includes("/r/"))]) {
    await exchange(t.port, fill(attack.req + AFTER, t));
    for (let i = 0; i < 2; i++) {
      const { responses } = await exchange(
        t.port,
        fill(
          `GET {T}/victim-${i} HTTP/1.1\r\nHost: {H}\r\n\r\n` +
            `GET {T}/victim-${i}b HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n`,
          t,
        ),
      );
      assert.deepEqual(
        responses.map((r) => `${r.status} ${r.body}`),
        [`200 ok /victim-${i}`, `200 ok /victim-${i}b`],
        `${t.front}: victim after "${attack.name}"`,
      );
    }
  }
}

async function suite(t: FrontTarget, origin: { seen: Seen[] }): Promise<void> {
  await pipelined(t, origin);
  await runCases(t, origin);
  await victim(t);
  await pipelined(t, origin);
}

Deno.test("hostile HTTP: the case table has at least 40 request attacks", () => {
  assert.ok(CASES.filter((c) => !c.req.includes("/r/")).length >= 40);
});

Deno.test("hostile HTTP: forward proxy (absolute-form)", async () => {
  await using origin = startRawOrigin();
  await using p = startWmproxy(["--bind", "127.0.0.1:0"]);
  const addr = await p.listeningAddr("proxy");
  const authority = `127.0.0.1:${origin.port}`;
  await suite({
    front: "forward",
    port: portOf(addr),
    T: `http://${authority}`,
    H: authority,
    ABS: `http://${authority}`,
  }, origin);
});

Deno.test("hostile HTTP: reverse proxy plain listener with proxy_pass (pooled upstreams)", async () => {
  await using dir = await tempDir();
  await using origin = startRawOrigin();
  const file = await writeConfig(
    dir.path,
    "rp.yaml",
    `
http:
  servers:
    - listen: ["127.0.0.1:0"]
      server_names: [site.test]
      locations:
        - path: /
          proxy_pass: "http://127.0.0.1:${origin.port}"
`,
  );
  await using p = startWmproxy(["-c", file]);
  const addr = await p.listeningAddr("http");
  await suite({
    front: "reverse",
    port: portOf(addr),
    T: "",
    H: "site.test",
    ABS: "http://site.test",
  }, origin);
});

Deno.test("hostile HTTP: tunnel HTTP mapping listener", async () => {
  await using dir = await tempDir();
  await using origin = startRawOrigin();
  const token = "hostile-token-123";
  const s = await startTunnelServer([
    "--mode",
    "server",
    "--listen",
    "127.0.0.1:0",
    "--token",
    token,
    "--state-dir",
    dir.path,
    "--http",
    "127.0.0.1:0",
  ]);
  await using _server: WmproxyProcess = s.proc;
  const http = await s.proc.listeningAddr("http");
  await using c = startTunnelClient(s, token, ["--map", `a=http:127.0.0.1:${origin.port}@a.test`]);
  await c.waitForEvent("mapping_ready", { mapping: "a" });
  await suite(
    { front: "mapping", port: portOf(http), T: "", H: "a.test", ABS: "http://a.test" },
    origin,
  );
});

function portOf(addr: string): number {
  return Number(addr.slice(addr.lastIndexOf(":") + 1));
}
