/**
 * FileCache: resolved paths trusted for FILE_CACHE_VALID_MS, small file
 * contents kept while size and mtime match, and the bounds.
 */
import assert from "node:assert/strict";
import { FILE_CACHE_MAX_FILE_BYTES, FILE_CACHE_VALID_MS, FileCache } from "@/reverse/file_cache.ts";
import { serveFile } from "@/reverse/mod.ts";
import { httpConfig } from "./_helpers.ts";

function fileServerConfig(root: string) {
  const config = httpConfig({
    servers: [{ listen: ["127.0.0.1:0"], locations: [{ path: "/", file_server: { root } }] }],
  });
  return config.servers[0]!.locations[0]!.file_server!;
}

Deno.test("FileCache: a changed file is served fresh once the resolution expires", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${root}/a.txt`, "first");
    let now = 1_000_000;
    const cache = new FileCache(() => now);
    const config = fileServerConfig(root);
    const get = async () => {
      const req = new Request("http://x/a.txt");
      const res = await serveFile({ req, uri: "/a.txt", search: "", prefix: "/" }, config, cache);
      return await res.text();
    };
    assert.equal(await get(), "first");
    assert.deepEqual(cache.stats, { entries: 1, files: 1, bytes: 5 });
    await Deno.writeTextFile(`${root}/a.txt`, "second!");
    // Within the validity window the kept resolution (and its stat) is used.
    assert.equal(await get(), "first");
    now += FILE_CACHE_VALID_MS + 1;
    assert.equal(await get(), "second!");
    assert.deepEqual(cache.stats, { entries: 1, files: 1, bytes: 7 });
    // A deleted file stops being served after the window too.
    await Deno.remove(`${root}/a.txt`);
    now += FILE_CACHE_VALID_MS + 1;
    const req = new Request("http://x/a.txt");
    const gone = await serveFile({ req, uri: "/a.txt", search: "", prefix: "/" }, config, cache);
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("FileCache: ranges come from kept bytes; large files are never kept", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${root}/r.txt`, "abcdefghij");
    await Deno.writeFile(`${root}/big.bin`, new Uint8Array(FILE_CACHE_MAX_FILE_BYTES + 1));
    const cache = new FileCache();
    const config = fileServerConfig(root);
    const range = (uri: string, value: string) =>
      serveFile(
        {
          req: new Request(`http://x${uri}`, { headers: { range: value } }),
          uri,
          search: "",
          prefix: "/",
        },
        config,
        cache,
      );
    for (let i = 0; i < 2; i++) {
      const res = await range("/r.txt", "bytes=2-4");
      assert.equal(res.status, 206);
      assert.equal(await res.text(), "cde");
    }
    const big = await range("/big.bin", "bytes=-3");
    assert.equal(big.status, 206);
    assert.equal((await big.arrayBuffer()).byteLength, 3);
    assert.equal(cache.stats.files, 1);
    assert.equal(cache.stats.bytes, 10);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
