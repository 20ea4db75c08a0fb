import { equal } from "node:assert/strict";
import { createHash } from "node:crypto";
import { TCP } from "../transport/_pairs.ts";
import { Prng } from "../tunnel/_prng.ts";
import { barrier, sessionPair, str, text } from "./_helpers.ts";

const STREAMS = 1000;
const MAX_SIZE = 4 * 1024 * 1024;
const SEED = 20261124;

/**
 * Sizes are log-uniform between 1 B and 4 MiB (seeded), so small and large
 * streams are both common: about 275 MB in total for 1,000 streams, which keeps
 * the test to a few seconds on two cores.
 */
function sizes(rng: Prng): number[] {
  return Array.from(
    { length: STREAMS },
    () => Math.max(1, Math.floor(Math.exp(rng.float() * Math.log(MAX_SIZE)))),
  );
}

Deno.test("Session carries 1,000 concurrent streams of random sizes with SHA-256 checked end to end (DESIGN.md §10)", async () => {
  await using pair = await sessionPair(TCP);
  const rng = new Prng(SEED);
  const block = rng.bytes(1 << 20);
  const plan = sizes(rng).map((size) => ({ size, offset: rng.int(block.length) }));
  const total = plan.reduce((n, p) => n + p.size, 0);

  // Server: hash each stream and answer with the hex digest.
  const server = (async () => {
    const handlers: Promise<void>[] = [];
    for (let i = 0; i < STREAMS; i++) {
      const s = (await pair.server.accept())!;
      handlers.push((async () => {
        const h = createHash("sha256");
        const buf = new Uint8Array(65536);
        for (let n = await s.read(buf); n !== null; n = await s.read(buf)) {
          h.update(buf.subarray(0, n));
        }
        await s.write(text(h.digest("hex")));
        await s.closeWrite();
      })());
    }
    await Promise.all(handlers);
  })();

  const t0 = performance.now();
  await Promise.all(plan.map(async ({ size, offset }) => {
    const s = await pair.client.open({ type: "open", kind: "proxy" });
    const h = createHash("sha256");
    let sent = 0;
    let pos = offset;
    while (sent < size) {
      const n = Math.min(65536, size - sent, block.length - pos);
      const chunk = block.subarray(pos, pos + n);
      h.update(chunk);
      await s.write(chunk);
      sent += n;
      pos = (pos + n) % block.length;
    }
    await s.closeWrite();
    const reply = new Uint8Array(64);
    let got = 0;
    for (
      let n = await s.read(reply.subarray(got));
      n !== null;
      n = await s.read(reply.subarray(got))
    ) {
      got += n;
    }
    equal(str(reply.subarray(0, got)), h.digest("hex"), `stream ${s.id} (${size} bytes)`);
  }));
  await server;
  const ms = performance.now() - t0;
  // deno-lint-ignore no-console
  console.log(`1,000 streams, ${(total / 1e6).toFixed(0)} MB in ${ms.toFixed(0)} ms`);
  await barrier(pair);
  equal(pair.client.stats().streams, 0, "finished streams are forgotten");
  equal(pair.server.stats().streams, 0, "finished streams are forgotten");
  equal(pair.client.stats().streamsOpened, STREAMS);
  equal(pair.server.stats().streamsAccepted, STREAMS);
});
