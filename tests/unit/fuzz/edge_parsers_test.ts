import assert from "node:assert/strict";
import { fuzzEdgeParsers, isParserRejection } from "../../fuzz/_fuzz_parsers.ts";

Deno.test("edge parsers (SOCKS5, HTTP head, chunked, SNI) end every fuzzed input in a value or their own error", () => {
  const stats = fuzzEdgeParsers(20261124, 400);
  assert.equal(stats.cases, 400 * 8);
  assert.ok(stats.rejected > 0 && stats.accepted > 0, "the corpus exercises both outcomes");
});

Deno.test("the fuzz oracle tells a parser's rejection from an engine error of the same class", () => {
  const engineErrors: unknown[] = [];
  for (
    const fault of [
      () => new DataView(new ArrayBuffer(1)).getUint16(0),
      () => new Array(-1),
      () => new Uint8Array(2).set([1, 2, 3]),
      () => JSON.parse("{"),
      () => decodeURIComponent("%"),
    ]
  ) {
    try {
      fault();
    } catch (err) {
      engineErrors.push(err);
    }
  }
  assert.equal(engineErrors.length, 5);
  for (const err of engineErrors) assert.equal(isParserRejection(err), false, String(err));
  assert.equal(
    isParserRejection(new RangeError("Cannot parse chunked body: size overflows")),
    true,
  );
  assert.equal(isParserRejection(new TypeError("Cannot parse x")), false);
});
