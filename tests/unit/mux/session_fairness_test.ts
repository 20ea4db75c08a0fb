import { equal, ok } from "node:assert/strict";
import type { VirtualStream } from "@/mux/mod.ts";
import { TCP } from "../transport/_pairs.ts";
import { barrier, receivePattern, sendPattern, type SessionPair, sessionPair } from "./_helpers.ts";

async function transfer(pair: SessionPair, bytes: number): Promise<number> {
  const t0 = performance.now();
  const s = await pair.client.open({ type: "open", kind: "proxy" });
  const t = (await pair.server.accept())!;
  const [, got] = await Promise.all([sendPattern(s, bytes, 65536), receivePattern(t)]);
  equal(got, bytes);
  return performance.now() - t0;
}

Deno.test("Session: a reader that stops consuming does not slow another stream, and loses no byte (PROTOCOL.md §10)", async () => {
  await using pair = await sessionPair(TCP);
  const bytes = 48 * 1024 * 1024;
  await transfer(pair, 8 * 1024 * 1024); // warm up
  const solo: number[] = [];
  const contended: number[] = [];
  solo.push(await transfer(pair, bytes));

  // The slow stream: its writer fills the receive window, then waits for credit.
  const slowTotal = 8 * 1024 * 1024;
  const slow = await pair.client.open({ type: "open", kind: "proxy" });
  const slowSending = sendPattern(slow, slowTotal, 65536);
  const slowPeer: VirtualStream = (await pair.server.accept())!;
  await barrier(pair);
  equal(slow.stats.sendWindow, 0, "the slow stream is blocked on credit");

  contended.push(await transfer(pair, bytes));
  solo.push(await transfer(pair, bytes));
  contended.push(await transfer(pair, bytes));
  equal(slow.stats.sendWindow, 0, "still blocked: nobody read it");

  const ratio = Math.min(...solo) / Math.min(...contended);
  // The real figure goes to the log; the bound is generous for noisy 2-core machines.
  // deno-lint-ignore no-console
  console.log(
    `fast stream with a stalled neighbour: ${(ratio * 100).toFixed(0)} % of solo throughput ` +
      `(solo ${solo.map((t) => t.toFixed(0)).join("/")} ms, contended ${
        contended.map((t) => t.toFixed(0)).join("/")
      } ms for ${bytes >> 20} MiB)`,
  );
  ok(ratio >= 0.5, `ratio ${ratio.toFixed(2)} is below 0.5`);

  // Now the slow reader catches up: every byte arrives, in order.
  equal(await receivePattern(slowPeer), slowTotal);
  await slowSending;
});
