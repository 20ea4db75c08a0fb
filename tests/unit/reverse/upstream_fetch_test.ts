import assert from "node:assert/strict";
import { createUpstreamFetch } from "@/reverse/upstream_fetch.ts";
import { UpstreamPool } from "@/reverse/upstream_pool.ts";
import { DialError } from "@/proxy/dial.ts";
import { generateCertificates } from "@/tls/mod.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * A raw HTTP/1.1 origin on 127.0.0.1:0: records each request (head text and
 * body bytes, chunked framing kept) and answers with `reply(request, n)`.
 */
function rawOrigin(
  reply: (head: string, n: number) => { bytes: Uint8Array; close?: boolean },
) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: { head: string; body: string; conn: number }[] = [];
  const conns = new Set<Deno.Conn>();
  let connections = 0;
  const serveConn = async (c: Deno.Conn, id: number) => {
    let buf = new Uint8Array(0);
    const buf1 = new Uint8Array(65536);
    const fill = async () => {
      const n = await c.read(buf1);
      if (n === null) return false;
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(buf1.subarray(0, n), buf.length);
      buf = next;
      return true;
    };
    try {
      while (true) {
        let end: number;
        while ((end = dec.decode(buf).indexOf("\r\n\r\n")) < 0) if (!(await fill())) return;
        const head = dec.decode(buf.subarray(0, end + 4));
        buf = buf.subarray(end + 4);
        let body = "";
        const length = /content-length: (\d+)/i.exec(head);
        if (length) {
          while (buf.length < Number(length[1])) if (!(await fill())) return;
          body = dec.decode(buf.subarray(0, Number(length[1])));
          buf = buf.subarray(Number(length[1]));
        } else if (/transfer-encoding: chunked/i.test(head)) {
          while (!dec.decode(buf).includes("0\r\n\r\n")) if (!(await fill())) return;
          const text = dec.decode(buf);
          const stop = text.indexOf("0\r\n\r\n") + 5;
          body = text.slice(0, stop);
          buf = buf.subarray(enc.encode(text.slice(0, stop)).length);
        }
        requests.push({ head, body, conn: id });
        const r = reply(head, requests.length);
        await c.write(r.bytes);
        if (r.close) return;
      }
    } catch {
      // the client went away
    } finally {
      if (conns.delete(c)) c.close();
    }
  };
  const tasks: Promise<void>[] = [];
  const loop = (async () => {
    for await (const c of listener) {
      conns.add(c);
      tasks.push(serveConn(c, ++connections));
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    requests,
    get connections() {
      return connections;
    },
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) c.close();
      conns.clear();
      await loop;
      await Promise.all(tasks);
    },
  };
}

/** The payload of a chunked body (no extensions, no trailers). */
function dechunk(text: string): string {
  let out = "";
  let rest = text;
  while (true) {
    const nl = rest.indexOf("\r\n");
    const size = parseInt(rest.slice(0, nl), 16);
    if (size === 0) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    assert.equal(rest.slice(nl + 2 + size, nl + 4 + size), "\r\n");
    rest = rest.slice(nl + 4 + size);
  }
}

const ok = (body: string, extra = "") => ({
  bytes: enc.encode(`HTTP/1.1 200 OK\r\n${extra}content-length: ${body.length}\r\n\r\n${body}`),
});

Deno.test("upstreamFetch() sends the given headers and no others, the path as is", async () => {
  await using origin = rawOrigin(() => ok("hi"));
  const pool = new UpstreamPool();
  try {
    const fetch = createUpstreamFetch({ pool });
    const res = await fetch(`http://127.0.0.1:${origin.port}/a/../b?q=%41`, {
      method: "GET",
      headers: { host: "site.test", "x-custom": "1" },
    });
    assert.equal(await res.text(), "hi");
    const head = origin.requests[0]!.head;
    assert.equal(
      head,
      "GET /a/../b?q=%41 HTTP/1.1\r\nhost: site.test\r\nx-custom: 1\r\n\r\n",
      "no accept, accept-language, accept-encoding or user-agent of its own",
    );
  } finally {
    pool.close();
  }
});

Deno.test("upstreamFetch() passes compressed bodies through and decodes chunked framing", async () => {
  const gzip = new Uint8Array(
    await new Response(
      new Blob(["abc"]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  await using origin = rawOrigin((_head, n) => {
    if (n === 1) {
      const head = enc.encode(
        `HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: ${gzip.length}\r\n\r\n`,
      );
      const out = new Uint8Array(head.length + gzip.length);
      out.set(head);
      out.set(gzip, head.length);
      return { bytes: out };
    }
    return {
      bytes: enc.encode(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" +
          "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nx-trailer: 1\r\n\r\n",
      ),
    };
  });
  const pool = new UpstreamPool();
  try {
    const fetch = createUpstreamFetch({ pool });
    const url = `http://127.0.0.1:${origin.port}/`;
    const a = await fetch(url, { headers: { "accept-encoding": "gzip, br" } });
    assert.equal(a.headers.get("content-encoding"), "gzip");
    assert.deepEqual(new Uint8Array(await a.arrayBuffer()), gzip, "the compressed bytes as sent");
    assert.match(origin.requests[0]!.head, /\r\naccept-encoding: gzip, br\r\n/);
    const b = await fetch(url, {});
    assert.equal(await b.text(), "abcdefg");
    assert.equal(origin.connections, 1, "the connection was kept and reused");
  } finally {
    pool.close();
  }
});

Deno.test("upstreamFetch() sends a stream chunked, or with the request's content-length", async () => {
  await using origin = rawOrigin(() => ok("ok"));
  const pool = new UpstreamPool();
  try {
    const fetch = createUpstreamFetch({ pool });
    const url = `http://127.0.0.1:${origin.port}/up`;
    const stream = () => new Blob(["hello ", "world"]).stream();
    await (await fetch(url, { method: "POST", body: stream() })).text();
    await (await fetch(url, {
      method: "PUT",
      headers: { "content-length": "11" },
      body: stream(),
    })).text();
    await (await fetch(url, { method: "POST", body: enc.encode("bytes") })).text();
    const [chunked, sized, bytes] = origin.requests;
    assert.match(chunked!.head, /^POST \/up HTTP\/1\.1\r\n.*transfer-encoding: chunked\r\n/s);
    assert.equal(dechunk(chunked!.body), "hello world");
    assert.match(sized!.head, /\r\ncontent-length: 11\r\n/);
    assert.equal(sized!.body, "hello world");
    assert.match(bytes!.head, /\r\ncontent-length: 5\r\n/);
    assert.equal(bytes!.body, "bytes");
  } finally {
    pool.close();
  }
});

Deno.test("upstreamFetch() retries once on a fresh connection when a kept one was closed", async () => {
  await using origin = rawOrigin((_h, n) => ({ ...ok(`r${n}`), close: true }));
  const pool = new UpstreamPool();
  try {
    const fetch = createUpstreamFetch({ pool });
    const url = `http://127.0.0.1:${origin.port}/`;
    assert.equal(await (await fetch(url, {})).text(), "r1");
    assert.equal(await (await fetch(url, {})).text(), "r2");
    assert.equal(origin.connections, 2);
  } finally {
    pool.close();
  }
});

Deno.test("upstreamFetch() rejects with the signal's reason and with a DialError when refused", async () => {
  const pool = new UpstreamPool();
  try {
    const fetch = createUpstreamFetch({ pool });
    // A listener that never answers.
    const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = silent.accept();
    const ac = new AbortController();
    const pending = fetch(`http://127.0.0.1:${silent.addr.port}/`, { signal: ac.signal });
    const conn = await accepted;
    const reason = new DOMException("upstream timed out", "TimeoutError");
    ac.abort(reason);
    await assert.rejects(pending, (err) => err === reason);
    conn.close();
    silent.close();
    const port = silent.addr.port;
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`, {}), DialError);
  } finally {
    pool.close();
  }
});

Deno.test("upstreamFetch() speaks HTTP/1.1 over TLS to an https: upstream and keeps the connection", async () => {
  const g = await generateCertificates({ names: ["localhost"] });
  const seen: [string, string][][] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: g.server.cert, key: g.server.key, onListen() {} },
    (req) => {
      seen.push([...req.headers]);
      return new Response(`tls ${new URL(req.url).pathname}`);
    },
  );
  const pool = new UpstreamPool();
  try {
    const fetch = createUpstreamFetch({ pool, caCerts: [g.ca.cert] });
    const url = `https://localhost:${server.addr.port}`;
    assert.equal(await (await fetch(`${url}/a`, { headers: { "x-a": "1" } })).text(), "tls /a");
    assert.equal(await (await fetch(`${url}/b`, {})).text(), "tls /b");
    assert.deepEqual(seen[0], [["host", `localhost:${server.addr.port}`], ["x-a", "1"]]);
    assert.equal(pool.size, 1, "one kept TLS connection");
  } finally {
    pool.close();
    await server.shutdown();
  }
});
