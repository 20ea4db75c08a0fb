import { ok } from "./_assert.ts";
import { fuzzControlDecoder, fuzzFrameDecoder } from "../../fuzz/_fuzz_decoders.ts";

Deno.test("FrameDecoder survives seeded fuzzing: only ProtocolError, same frames for any chunking (PROTOCOL.md §5)", () => {
  for (const seed of [1, 2, 3]) {
    const s = fuzzFrameDecoder(seed, 400);
    ok(s.accepted > 0 && s.rejected > 0, `seed ${seed}: ${JSON.stringify(s)}`);
  }
});

Deno.test("decodeControlMessage() survives seeded fuzzing: only ProtocolError, canonical re-encoding (PROTOCOL.md §11)", () => {
  for (const seed of [1, 2, 3]) {
    const s = fuzzControlDecoder(seed, 1500);
    ok(s.accepted > 0 && s.rejected > 0, `seed ${seed}: ${JSON.stringify(s)}`);
  }
});
