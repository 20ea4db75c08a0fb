import assert from "node:assert/strict";
import { fuzzEdgeParsers } from "../../fuzz/_fuzz_parsers.ts";

Deno.test("edge parsers (SOCKS5, HTTP head, chunked, SNI) end every fuzzed input in a value or their own error", () => {
  const stats = fuzzEdgeParsers(20261124, 400);
  assert.equal(stats.cases, 400 * 8);
  assert.ok(stats.rejected > 0 && stats.accepted > 0, "the corpus exercises both outcomes");
});
