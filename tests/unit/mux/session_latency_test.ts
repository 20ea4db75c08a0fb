/**
 * The Nagle stall of PROTOCOL.md §10: a `Deno.listenTls` server cannot turn
 * Nagle off, so a reply over one TLS record waits for the client's delayed ACK
 * (~40 ms) unless the client nudges. This checks the nudge removes the stall
 * (a 40 ms effect; the bound below is loose on purpose, not a speed test).
 */
import assert from "node:assert/strict";
import { sessionPair } from "./_helpers.ts";
import { TLS } from "../transport/_pairs.ts";

async function medianRoundTrip(
  ackChatter: boolean,
  replyBytes: number,
  rounds: number,
): Promise<number> {
  await using pair = await sessionPair(TLS, { ackChatter }, {});
  const reply = new Uint8Array(replyBytes).fill(7);
  const serving = (async () => {
    for (let i = 0; i < rounds; i++) {
      const s = (await pair.server.accept())!;
      const buf = new Uint8Array(1024);
      let got = 0;
      while (got < 100) got += (await s.read(buf)) ?? 100;
      await s.write(reply);
      await s.closeWrite();
      while ((await s.read(buf)) !== null) { /* drain to the client's FIN */ }
      s.close();
    }
  })();
  const times: number[] = [];
  const buf = new Uint8Array(65536);
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    const s = await pair.client.open({ type: "open", kind: "proxy" });
    await s.write(new Uint8Array(100));
    let got = 0;
    for (let n = await s.read(buf); n !== null; n = await s.read(buf)) got += n;
    times.push(performance.now() - t0);
    assert.equal(got, replyBytes);
    await s.closeWrite();
    s.close();
  }
  await serving;
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

// The baseline: a 20 kB reply over TLS without nudges stalls behind Nagle and
// the peer's delayed ACK (tens of ms); measured once, in the same run.
let stalled: number | undefined;

for (const size of [20_000, 60_000]) {
  Deno.test(`Session with ackChatter answers ${size} B replies over TLS without the ~40 ms Nagle stall (PROTOCOL.md §10)`, async () => {
    stalled ??= await medianRoundTrip(false, 20_000, 5);
    const nudged = await medianRoundTrip(true, size, 15);
    // deno-lint-ignore no-console
    console.log(
      `  median round trip, ${size} B reply: ${nudged.toFixed(2)} ms with nudges; ` +
        `20000 B without: ${stalled.toFixed(2)} ms`,
    );
    // Judged against the baseline, not an absolute bound: half the stalled
    // round trip separates "stalled" from "not stalled" at any machine speed.
    assert.ok(
      stalled > 10,
      `the baseline did not stall (${stalled.toFixed(1)} ms): nothing to prove`,
    );
    assert.ok(
      nudged < stalled / 2,
      `median ${nudged.toFixed(1)} ms with nudges vs ${stalled.toFixed(1)} ms stalled: ` +
        `the reply stalled behind Nagle`,
    );
  });
}
