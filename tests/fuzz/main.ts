/**
 * Long fuzz run of the frame decoder, the control-message decoder and the
 * edge parsers (SOCKS5, HTTP head, chunked body, TLS ClientHello).
 *
 *   deno task fuzz [--seconds N] [--seed S]
 *
 * Runs batches with consecutive seeds until the time is up; the first
 * violation prints its seed and exits 1.
 */
import { parseArgs } from "node:util";
import { fuzzControlDecoder, fuzzFrameDecoder } from "./_fuzz_decoders.ts";
import { fuzzEdgeParsers } from "./_fuzz_parsers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { seconds: { type: "string", default: "30" }, seed: { type: "string" } },
});
const seconds = Number(values.seconds);
let seed = values.seed !== undefined ? Number(values.seed) : (Date.now() & 0x7fffffff);
if (!Number.isFinite(seconds) || seconds <= 0 || !Number.isInteger(seed)) {
  throw new TypeError("Cannot fuzz: --seconds must be positive and --seed an integer");
}
const out = (line: string) => Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
out(`fuzz: ${seconds} s starting at seed ${seed}`);
const end = performance.now() + seconds * 1000;
const total = { frame: 0, control: 0, frameRejected: 0, controlRejected: 0, edge: 0, batches: 0 };
while (performance.now() < end) {
  try {
    const f = fuzzFrameDecoder(seed, 500);
    const c = fuzzControlDecoder(seed, 500);
    total.frame += f.cases;
    total.frameRejected += f.rejected;
    total.control += c.cases;
    total.controlRejected += c.rejected;
    total.edge += fuzzEdgeParsers(seed, 200).cases;
    total.batches++;
  } catch (err) {
    out(`fuzz: FAILED at seed ${seed}: ${err instanceof Error ? err.stack : err}`);
    Deno.exit(1);
  }
  seed = (seed + 1) >>> 0;
}
out(
  `fuzz: ok, ${total.batches} batches (last seed ${
    seed - 1
  }), frame cases ${total.frame} (${total.frameRejected} rejected), control cases ${total.control} (${total.controlRejected} rejected), edge parser cases ${total.edge} (SOCKS5, HTTP head, chunked, SNI)`,
);
