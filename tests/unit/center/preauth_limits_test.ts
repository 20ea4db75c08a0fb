import assert from "node:assert/strict";
import { addressKey, PreauthLimits } from "@/center/preauth_limits.ts";
import { AuthThrottle } from "@/center/auth_throttle.ts";
import { type RefusalLine, RefusalLog } from "@/center/refusal_log.ts";

Deno.test("addressKey: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64", () => {
  const cases: [string, string][] = [
    ["127.0.0.2", "127.0.0.2"],
    ["::ffff:10.1.2.3", "10.1.2.3"],
    ["2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"],
    ["2001:db8:1:2:bbbb:cccc:dddd:eeee", "2001:db8:1:2::/64"],
    ["[2001:DB8::5]", "2001:db8:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
  ];
  for (const [input, want] of cases) assert.equal(addressKey(input), want, input);
});

Deno.test("PreauthLimits: per-address cap, total cap, release frees the slot once", () => {
  const l = new PreauthLimits({ maxTotal: 3, maxPerAddress: 2 });
  const a1 = l.admit("a");
  const a2 = l.admit("a");
  assert.ok(a1.ok && a2.ok);
  const a3 = l.admit("a");
  assert.ok(!a3.ok);
  assert.equal(a3.refusal.kind, "max_handshakes_per_ip");
  assert.match(a3.refusal.reason, /max_handshakes_per_ip \(2\) reached for a/);
  const b1 = l.admit("b");
  assert.ok(b1.ok, "another address still gets in while one holds its maximum");
  const c1 = l.admit("c");
  assert.ok(!c1.ok);
  assert.equal(c1.refusal.kind, "max_handshakes");
  a1.slot.release();
  a1.slot.release(); // idempotent
  assert.equal(l.total, 2);
  assert.equal(l.heldBy("a"), 1);
  assert.ok(l.admit("c").ok);
  b1.slot.release();
  assert.equal(l.addresses, 2, "an address with no connection is forgotten");
});

Deno.test("PreauthLimits: a failing address gets the smaller cap; update() takes new limits", () => {
  const l = new PreauthLimits({ maxTotal: 10, maxPerAddress: 5 });
  assert.ok(l.admit("x", 1).ok);
  const second = l.admit("x", 1);
  assert.ok(!second.ok);
  assert.equal(second.refusal.kind, "failing");
  assert.ok(l.admit("x").ok, "without failures the per-address cap applies");
  l.update({ maxTotal: 2, maxPerAddress: 5 });
  const over = l.admit("y");
  assert.ok(!over.ok);
  assert.equal(over.refusal.kind, "max_handshakes");
});

Deno.test("AuthThrottle: failing() follows delayFor(); parallelWhileFailing defaults to 1", () => {
  let now = 0;
  const t = new AuthThrottle({ windowMs: 1000, now: () => now });
  assert.equal(t.parallelWhileFailing, 1);
  assert.equal(t.failing("a"), false);
  t.fail("a");
  assert.equal(t.failing("a"), true);
  now = 2000;
  assert.equal(t.failing("a"), false, "forgotten after the window");
  assert.equal(t.size, 0);
});

Deno.test("RefusalLog: first line at once, then one per interval with the suppressed count", () => {
  let now = 0;
  const lines: RefusalLine[] = [];
  const r = new RefusalLog({ emit: (l) => lines.push(l), intervalMs: 1000, now: () => now });
  r.record("k", "1.1.1.1:1", "full");
  for (let i = 2; i <= 100; i++) r.record("k", `1.1.1.1:${i}`, "full");
  assert.deepEqual(lines, [{ peer: "1.1.1.1:1", reason: "full", suppressed: 0 }]);
  r.record("other", "2.2.2.2:1", "full"); // another key is written at once
  assert.equal(lines.length, 2);
  now = 500;
  r.flush();
  assert.equal(lines.length, 2, "nothing before the interval");
  now = 1000;
  r.flush();
  assert.deepEqual(lines[2], { peer: "1.1.1.1:100", reason: "full", suppressed: 99 });
  now = 2000;
  r.flush(); // quiet keys are forgotten
  r.flush();
  assert.equal(r.size, 0);
  r.record("k", "1.1.1.1:7", "full");
  assert.deepEqual(lines.at(-1), { peer: "1.1.1.1:7", reason: "full", suppressed: 0 });
});

Deno.test("RefusalLog keeps at most maxKeys keys; more are counted under one", () => {
  const lines: RefusalLine[] = [];
  const r = new RefusalLog({ emit: (l) => lines.push(l), maxKeys: 4, now: () => 0 });
  for (let i = 0; i < 1000; i++) r.record(`k${i}`, `10.0.0.${i % 250}:1`, "full");
  assert.ok(r.size <= 5, `tracked ${r.size} keys`);
  assert.equal(lines.length, 5, "4 keys plus one overflow line");
  assert.match(lines[4]!.reason, /other addresses/);
});
