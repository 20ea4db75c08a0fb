import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { createHttpHandler, parseRange } from "@/reverse/mod.ts";
import { HOSTILE_PATHS, httpConfig, info, traversalFixture, WWW } from "./_helpers.ts";

const fixture = (name: string) => Deno.readTextFileSync(`${WWW}/${name}`);

function wwwHandler(fileServer: Record<string, unknown> = {}, extra: unknown[] = []) {
  return createHttpHandler(httpConfig({
    servers: [{
      locations: [
        { path: "/", file_server: { root: WWW, ...fileServer } },
        { path: "/assets/", file_server: { alias: `${WWW}/sub`, browse: true } },
        ...extra,
      ],
    }],
  }));
}

const get = (
  handle: ReturnType<typeof wwwHandler>,
  path: string,
  headers: HeadersInit = {},
  method = "GET",
) => handle(new Request(`http://h.test${path}`, { headers, method }), info());

Deno.test("file server: index, MIME types, HEAD, alias and directory redirects", async () => {
  const handle = wwwHandler();
  const index = await get(handle, "/");
  assert.equal(index.status, 200);
  assert.equal(index.headers.get("content-type"), "text/html; charset=utf-8");
  assert.equal(await index.text(), fixture("index.html"));
  const css = await get(handle, "/style.css", { "accept-encoding": "identity" });
  assert.equal(css.headers.get("content-type"), "text/css; charset=utf-8");
  assert.equal(css.headers.get("content-length"), String(fixture("style.css").length));
  await css.body?.cancel();
  const bin = await get(handle, "/data.bin");
  assert.equal(bin.headers.get("content-type"), "application/octet-stream");
  await bin.body?.cancel();
  const head = await get(handle, "/range.txt", {}, "HEAD");
  assert.equal(head.status, 200);
  assert.equal(head.body, null);
  assert.equal(head.headers.get("content-length"), "37");
  const docs = await get(handle, "/docs?x=1");
  assert.equal(docs.status, 301);
  assert.equal(docs.headers.get("location"), "/docs/?x=1");
  assert.equal(await (await get(handle, "/docs/")).text(), fixture("docs/index.html"));
  assert.equal(await (await get(handle, "/assets/file.txt")).text(), "sub file\n", "alias");
  const post = await get(handle, "/range.txt", {}, "POST");
  assert.equal(post.status, 405);
  await post.body?.cancel();
  const noIndex = await get(handle, "/sub/");
  assert.equal(noIndex.status, 403, "a directory without index and browse off");
  await noIndex.body?.cancel();
});

Deno.test("file server: ETag and Last-Modified with conditional GETs", async () => {
  const handle = wwwHandler();
  const first = await get(handle, "/range.txt");
  await first.body?.cancel();
  const etag = first.headers.get("etag")!;
  const lastModified = first.headers.get("last-modified")!;
  assert.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
  const inm = await get(handle, "/range.txt", { "if-none-match": `"other", ${etag}` });
  assert.equal(inm.status, 304);
  assert.equal(inm.body, null);
  assert.equal(inm.headers.get("etag"), etag);
  const ims = await get(handle, "/range.txt", { "if-modified-since": lastModified });
  assert.equal(ims.status, 304);
  const old = await get(handle, "/range.txt", {
    "if-modified-since": "Thu, 01 Jan 1970 00:00:00 GMT",
  });
  assert.equal(old.status, 200);
  await old.body?.cancel();
  const both = await get(handle, "/range.txt", {
    "if-none-match": '"nope"',
    "if-modified-since": lastModified,
  });
  assert.equal(both.status, 200, "If-None-Match takes precedence");
  await both.body?.cancel();
});

Deno.test("file server: single, open and suffix ranges; 416; If-Range", async () => {
  const handle = wwwHandler();
  const r = async (range: string, extra: HeadersInit = {}) => {
    const res = await get(handle, "/range.txt", { range, ...extra });
    return [res.status, res.headers.get("content-range"), await res.text()];
  };
  assert.deepEqual(await r("bytes=0-9"), [206, "bytes 0-9/37", "0123456789"]);
  assert.deepEqual(await r("bytes=30-"), [206, "bytes 30-36/37", "uvwxyz\n"]);
  assert.deepEqual(await r("bytes=-7"), [206, "bytes 30-36/37", "uvwxyz\n"], "suffix");
  assert.deepEqual(await r("bytes=-100"), [206, "bytes 0-36/37", fixture("range.txt")]);
  assert.deepEqual(await r("bytes=10-1000"), [
    206,
    "bytes 10-36/37",
    fixture("range.txt").slice(10),
  ]);
  const [s416, cr416] = await r("bytes=37-");
  assert.deepEqual([s416, cr416], [416, "bytes */37"]);
  assert.deepEqual(
    (await r("bytes=0-1,5-6")).slice(0, 2),
    [200, null],
    "several ranges: full body",
  );
  assert.deepEqual((await r("items=0-1")).slice(0, 2), [200, null]);
  assert.deepEqual((await r("bytes=0-1", { "if-range": '"stale"' })).slice(0, 2), [200, null]);
  const etag = (await get(handle, "/range.txt", { "if-none-match": "*" })).headers.get("etag")!;
  assert.deepEqual((await r("bytes=0-1", { "if-range": etag })).slice(0, 2), [206, "bytes 0-1/37"]);
});

Deno.test("parseRange() edge cases", () => {
  assert.deepEqual(parseRange("bytes=0-0", 1), { start: 0, end: 0 });
  assert.equal(parseRange("bytes=-0", 10), "unsatisfiable");
  assert.equal(parseRange("bytes=0-", 0), "unsatisfiable");
  assert.equal(parseRange("bytes=5-2", 10), "ignore");
  assert.equal(parseRange("bytes=-", 10), "ignore");
});

Deno.test("file server: precompressed siblings and on-the-fly gzip for text", async () => {
  const handle = wwwHandler();
  const pre = await get(handle, "/style.css", { "accept-encoding": "gzip, deflate" });
  assert.equal(pre.headers.get("content-encoding"), "gzip");
  assert.equal(pre.headers.get("content-type"), "text/css; charset=utf-8");
  assert.equal(pre.headers.get("vary"), "Accept-Encoding");
  assert.equal(
    pre.headers.get("content-length"),
    String((await Deno.stat(`${WWW}/style.css.gz`)).size),
  );
  const bytes = new Uint8Array(await pre.arrayBuffer());
  assert.equal(gunzipSync(bytes).toString(), fixture("style.css"));

  const fly = await get(handle, "/big.txt", { "accept-encoding": "br;q=0, gzip" });
  assert.equal(fly.headers.get("content-encoding"), "gzip");
  assert.match(fly.headers.get("etag")!, /^W\//);
  assert.equal(fly.headers.get("content-length"), null);
  const flyBytes = new Uint8Array(await fly.arrayBuffer());
  assert.ok(flyBytes.length < fixture("big.txt").length / 4);
  assert.equal(gunzipSync(flyBytes).toString(), fixture("big.txt"));

  const plain = await get(handle, "/big.txt", { "accept-encoding": "gzip;q=0" });
  assert.equal(plain.headers.get("content-encoding"), null);
  assert.equal(await plain.text(), fixture("big.txt"));
  const off = wwwHandler({ gzip: false, precompressed: false });
  const raw = await get(off, "/style.css", { "accept-encoding": "gzip" });
  assert.equal(raw.headers.get("content-encoding"), null);
  assert.equal(await raw.text(), fixture("style.css"));
});

Deno.test("file server: Cache-Control, custom MIME types, hidden names", async () => {
  const handle = wwwHandler({
    cache_control: "max-age=60",
    mime_types: { bin: "application/x-test" },
    hidden: [".*", "*.gz"],
  });
  const res = await get(handle, "/data.bin");
  assert.equal(res.headers.get("cache-control"), "max-age=60");
  assert.equal(res.headers.get("content-type"), "application/x-test");
  await res.body?.cancel();
  for (const p of ["/.env", "/.private/key.txt", "/style.css.gz", "/sub/../.env"]) {
    const h = await get(handle, p);
    assert.equal(h.status, 404, p);
    await h.body?.cancel();
  }
});

Deno.test("file server: listings are off by default and HTML-escaped when on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "wmproxy-www-" });
  try {
    await Deno.writeTextFile(`${dir}/<img src=x onerror=alert(1)>.txt`, "x");
    await Deno.writeTextFile(`${dir}/a&b "q".txt`, "x");
    await Deno.writeTextFile(`${dir}/.hidden`, "x");
    await Deno.mkdir(`${dir}/folder`);
    const off = createHttpHandler(httpConfig({
      servers: [{ locations: [{ path: "/", file_server: { root: dir } }] }],
    }));
    const r0 = await off(new Request("http://h.test/"), info());
    assert.equal(r0.status, 403);
    await r0.body?.cancel();
    const on = createHttpHandler(httpConfig({
      servers: [{ locations: [{ path: "/", file_server: { root: dir, browse: true } }] }],
    }));
    const res = await on(new Request("http://h.test/"), info());
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.ok(!html.includes("<img"), html);
    assert.ok(html.includes("&#60;img src=x onerror=alert(1)&#62;.txt"));
    assert.ok(html.includes('href="%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E.txt"'));
    assert.ok(html.includes("a&#38;b &#34;q&#34;.txt"));
    assert.ok(html.includes('href="folder/"'));
    assert.ok(!html.includes(".hidden"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("file server: no hostile path reaches a file outside the root", async () => {
  const { base, root } = await traversalFixture();
  try {
    const handle = createHttpHandler(httpConfig({
      servers: [{ locations: [{ path: "/", file_server: { root, browse: true } }] }],
    }));
    assert.ok(HOSTILE_PATHS.length >= 20);
    for (const path of HOSTILE_PATHS) {
      const res = await handle(new Request(`http://h.test${path}`), info());
      const body = await res.text();
      assert.ok([400, 403, 404].includes(res.status), `${path} -> ${res.status}`);
      assert.ok(!body.includes("TOP-SECRET"), `${path} leaked the secret`);
    }
    const fine = await handle(new Request("http://h.test/sub/ok.txt"), info());
    assert.equal(await fine.text(), "ok\n", "the fixture itself works");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("file server: symlinks out of the root are hidden from listings and never served", async () => {
  const base = await Deno.makeTempDir({ prefix: "wmproxy-links-" });
  try {
    const root = `${base}/www`;
    await Deno.mkdir(`${root}/inner`, { recursive: true });
    await Deno.mkdir(`${base}/outside-dir`);
    // A size and a time nobody inside the root has: they must not show.
    await Deno.writeTextFile(`${base}/secret.txt`, "TOP-SECRET".repeat(12_345));
    await Deno.utime(`${base}/secret.txt`, 0, new Date("2001-02-03T04:05:06Z"));
    await Deno.writeTextFile(`${root}/inner/fine.txt`, "fine\n");
    await Deno.writeTextFile(`${root}/.private`, "x");
    await Deno.symlink(`${base}/secret.txt`, `${root}/out-file`);
    await Deno.symlink(`${base}/outside-dir`, `${root}/out-dir`);
    await Deno.symlink("../secret.txt", `${root}/out-relative`);
    await Deno.symlink(`${base}/nowhere`, `${root}/dangling`);
    await Deno.symlink(`${root}/inner/fine.txt`, `${root}/in-file`);
    await Deno.symlink("inner", `${root}/in-dir`);
    await Deno.symlink(".private", `${root}/to-hidden`);
    const handle = createHttpHandler(httpConfig({
      servers: [{ locations: [{ path: "/", file_server: { root, browse: true } }] }],
    }));
    const res = await handle(new Request("http://h.test/"), info());
    assert.equal(res.status, 200);
    const html = await res.text();
    for (const name of ["out-file", "out-dir", "out-relative", "dangling", "to-hidden"]) {
      assert.ok(!html.includes(name), `${name} is listed:\n${html}`);
    }
    assert.ok(!html.includes("123450"), "the outside file's size shows");
    assert.ok(!html.includes("2001-02-03"), "the outside file's time shows");
    // Links inside the root are listed with their target's details.
    assert.ok(html.includes('href="in-file"'), html);
    assert.ok(html.includes('href="in-dir/"'), html);
    assert.match(html, /in-file<\/a><\/td><td>5</);
    for (const path of ["/out-file", "/out-dir/", "/out-relative", "/dangling", "/to-hidden"]) {
      const r = await handle(new Request(`http://h.test${path}`), info());
      const body = await r.text();
      assert.equal(r.status, 404, `${path} -> ${r.status}`);
      assert.ok(!body.includes("TOP-SECRET"), `${path} leaked the secret`);
    }
    const ok = await handle(new Request("http://h.test/in-file"), info());
    assert.equal(await ok.text(), "fine\n");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
