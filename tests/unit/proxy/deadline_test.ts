/**
 * Deadline and IdleTimer, including the reuse of one IdleTimer across the
 * waits of a keep-alive connection (pause / restart). Fake time: no test here
 * waits for real time.
 */
import assert from "node:assert/strict";
import { Deadline, IdleTimer } from "@/proxy/_deadline.ts";
import { FakeTime } from "../../_fake_time.ts";

Deno.test("Deadline runs onExpire once at its time unless cancelled", () => {
  using time = new FakeTime();
  let runs = 0;
  const d = new Deadline(20, () => runs++);
  time.tick(19);
  assert.equal(runs, 0);
  assert.ok(!d.expired);
  time.tick(1);
  assert.equal(runs, 1);
  assert.ok(d.expired);
  time.tick(1000);
  assert.equal(runs, 1, "once");
  const c = new Deadline(20, () => runs++);
  c.cancel();
  c.cancel();
  time.tick(40);
  assert.equal(runs, 1);
  assert.ok(!c.expired);
  assert.equal(time.pending, 0);
});

Deno.test("IdleTimer fires after ms without touch, and touching postpones it", () => {
  using time = new FakeTime();
  let fired = 0;
  const t = new IdleTimer(80, () => fired++);
  for (let i = 0; i < 10; i++) {
    time.tick(30);
    t.touch();
  }
  assert.equal(fired, 0, "touched every 30 ms: never idle for 80 ms");
  time.tick(79);
  assert.equal(fired, 0);
  time.tick(1);
  assert.equal(fired, 1);
  assert.ok(t.fired);
  time.tick(1000);
  assert.equal(fired, 1, "once");
  t.cancel();
});

Deno.test("IdleTimer.pause() stops watching; restart() watches again from now with a new callback", () => {
  using time = new FakeTime();
  const calls: string[] = [];
  const t = new IdleTimer(80, () => calls.push("first"));
  t.pause();
  time.tick(140);
  assert.equal(calls.length, 0, "paused: the pending timer fires but does nothing");
  assert.ok(!t.fired);

  // Restart late in a pending timer's period: the reused timer fires early,
  // sees less than ms of idleness and re-arms; the callback waits the full ms.
  time.tick(10);
  t.restart(() => calls.push("second"));
  time.tick(50);
  t.restart(() => calls.push("third"));
  const restarted = time.now;
  time.tick(79);
  assert.equal(calls.length, 0, "restart resets the idle clock");
  time.tick(1);
  assert.deepEqual(calls, ["third"], "only the latest callback runs, ms after the restart");
  assert.equal(time.now - restarted, 80);
  assert.ok(t.fired);

  // After firing, restart() arms a new timer and clears `fired`.
  t.restart(() => calls.push("fourth"));
  assert.ok(!t.fired);
  time.tick(80);
  assert.deepEqual(calls, ["third", "fourth"]);
  t.cancel();
});

Deno.test("IdleTimer reuses one pending timer across pause/restart (no timer per request)", () => {
  using time = new FakeTime();
  const t = new IdleTimer(1000, () => {});
  for (let i = 0; i < 100; i++) {
    t.pause();
    t.restart(() => {});
    time.tick(1);
  }
  assert.equal(time.pending, 1);
  t.cancel();
  assert.equal(time.pending, 0);
});

Deno.test("IdleTimer.cancel() leaves no timer behind, even while paused", () => {
  using time = new FakeTime();
  let fired = 0;
  const t = new IdleTimer(30, () => fired++);
  t.pause();
  t.restart(() => fired++);
  t.cancel();
  t.cancel();
  assert.equal(time.pending, 0);
  time.tick(60);
  assert.equal(fired, 0);
});
