import assert from "node:assert/strict";
import { LimitReqZone } from "@/reverse/limit_req.ts";

const zone = (rate: number, maxKeys = 100) =>
  new LimitReqZone({ name: "z", key: "$remote_addr", rate_per_second: rate, max_keys: maxKeys });

Deno.test("LimitReqZone.check() with nodelay passes 1 + burst at once, then refuses", () => {
  const z = zone(1);
  const verdicts = Array.from({ length: 10 }, () => z.check("a", 5, true, 1000).kind);
  assert.deepEqual(verdicts, [
    ..."pass pass pass pass pass pass".split(" "),
    ..."reject reject reject reject".split(" "),
  ]);
  assert.equal(z.check("b", 5, true, 1000).kind, "pass", "keys are separate");
});

Deno.test("LimitReqZone.check() drains at the rate (leaky bucket)", () => {
  const z = zone(2); // one request per 500 ms
  assert.equal(z.check("a", 0, false, 0).kind, "pass");
  assert.equal(z.check("a", 0, false, 100).kind, "reject");
  assert.equal(z.check("a", 0, false, 499).kind, "reject");
  assert.equal(z.check("a", 0, false, 500).kind, "pass", "a rejected request did not fill it");
  // A steady client at exactly the rate is never refused (B21).
  for (let t = 1000; t < 20_000; t += 500) assert.equal(z.check("a", 0, false, t).kind, "pass");
});

Deno.test("LimitReqZone.check() without nodelay delays the excess by excess/rate", () => {
  const z = zone(10); // 100 ms per request
  assert.deepEqual(z.check("a", 3, false, 0), { kind: "pass" });
  assert.deepEqual(z.check("a", 3, false, 0), { kind: "delay", ms: 100 });
  assert.deepEqual(z.check("a", 3, false, 0), { kind: "delay", ms: 200 });
  assert.deepEqual(z.check("a", 3, false, 0), { kind: "delay", ms: 300 });
  assert.deepEqual(z.check("a", 3, false, 0), { kind: "reject" });
  assert.deepEqual(z.check("a", 3, false, 150), { kind: "delay", ms: 250 });
});

Deno.test("LimitReqZone keeps at most max_keys, evicting the least recently seen", () => {
  const z = zone(1, 3);
  for (const k of ["a", "b", "c"]) z.check(k, 0, true, 0);
  z.check("a", 5, true, 0); // a is now the most recent (and has excess)
  z.check("d", 0, true, 0); // evicts b, the least recently seen
  assert.equal(z.size, 3);
  assert.equal(z.check("a", 0, true, 0).kind, "reject", "a is still tracked");
  assert.equal(z.check("b", 0, true, 0).kind, "pass", "b was forgotten");
  assert.equal(z.size, 3);
});
