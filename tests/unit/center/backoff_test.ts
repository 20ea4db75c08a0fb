import assert from "node:assert/strict";
import { AuthThrottle } from "@/center/auth_throttle.ts";
import { Backoff, sleep } from "@/center/backoff.ts";
import { FakeTime } from "../../_fake_time.ts";

Deno.test("Backoff.next() doubles its cap up to maxMs and stays within [cap/2, cap]", () => {
  const low = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
  const high = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => low.next()), [50, 100, 200, 400, 500, 500]);
  assert.deepEqual([1, 2, 3, 4, 5, 6].map(() => high.next()), [100, 200, 400, 800, 1000, 1000]);
});

Deno.test("Backoff.reset() starts again from initialMs", () => {
  const b = new Backoff({ initialMs: 10, maxMs: 10_000, random: () => 1 });
  for (let i = 0; i < 50; i++) b.next();
  assert.equal(b.attempt, 50);
  b.reset();
  assert.equal(b.next(), 10);
});

Deno.test("Backoff rejects a max below the initial delay", () => {
  assert.throws(() => new Backoff({ initialMs: 10, maxMs: 5 }), RangeError);
});

Deno.test("sleep() ends early when its signal aborts, and leaves no timer", async () => {
  using time = new FakeTime();
  const ac = new AbortController();
  const p = sleep(10_000, ac.signal);
  assert.equal(time.pending, 1);
  ac.abort();
  await p; // resolves without the clock moving
  assert.equal(time.pending, 0);
});

Deno.test("AuthThrottle delays repeated failures per address and forgets them", () => {
  let now = 0;
  const t = new AuthThrottle({
    baseDelayMs: 100,
    maxDelayMs: 1000,
    windowMs: 5000,
    now: () => now,
  });
  assert.equal(t.delayFor("1.2.3.4"), 0);
  t.fail("1.2.3.4");
  assert.equal(t.delayFor("1.2.3.4"), 100);
  t.fail("1.2.3.4");
  t.fail("1.2.3.4");
  assert.equal(t.delayFor("1.2.3.4"), 400);
  for (let i = 0; i < 10; i++) t.fail("1.2.3.4");
  assert.equal(t.delayFor("1.2.3.4"), 1000);
  assert.equal(t.delayFor("5.6.7.8"), 0, "other addresses are not slowed");
  now = 6000;
  assert.equal(t.delayFor("1.2.3.4"), 0, "forgotten after the window");
  t.fail("9.9.9.9");
  t.succeed("9.9.9.9");
  assert.equal(t.delayFor("9.9.9.9"), 0);
});

Deno.test("AuthThrottle keeps at most maxEntries addresses", () => {
  const t = new AuthThrottle({ maxEntries: 3 });
  for (const a of ["a", "b", "c", "d", "e"]) t.fail(a);
  assert.equal(t.size, 3);
  assert.equal(t.delayFor("a"), 0);
  assert.ok(t.delayFor("e") > 0);
});
