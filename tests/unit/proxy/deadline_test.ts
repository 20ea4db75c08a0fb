/**
 * Deadline and IdleTimer, including the reuse of one IdleTimer across the
 * waits of a keep-alive connection (pause / restart).
 */
import assert from "node:assert/strict";
import { Deadline, IdleTimer } from "@/proxy/_deadline.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("Deadline runs onExpire once unless cancelled", async () => {
  let runs = 0;
  const d = new Deadline(20, () => runs++);
  await sleep(60);
  assert.equal(runs, 1);
  assert.ok(d.expired);
  const c = new Deadline(20, () => runs++);
  c.cancel();
  c.cancel();
  await sleep(40);
  assert.equal(runs, 1);
  assert.ok(!c.expired);
});

Deno.test("IdleTimer fires after ms without touch, and touching postpones it", async () => {
  let fired = 0;
  const t = new IdleTimer(80, () => fired++);
  try {
    for (let i = 0; i < 4; i++) {
      await sleep(30);
      t.touch();
    }
    assert.equal(fired, 0, "touched every 30 ms: never idle for 80 ms");
    await sleep(160);
    assert.equal(fired, 1);
    assert.ok(t.fired);
  } finally {
    t.cancel();
  }
});

Deno.test("IdleTimer.pause() stops watching; restart() watches again from now with a new callback", async () => {
  const calls: string[] = [];
  const t = new IdleTimer(80, () => calls.push("first"));
  try {
    t.pause();
    await sleep(140);
    assert.equal(calls.length, 0, "paused: the pending timer fires but does nothing");
    assert.ok(!t.fired);

    // Restart late in a pending timer's period: the reused timer fires early,
    // sees less than ms of idleness and re-arms; the callback waits the full ms.
    await sleep(10);
    t.restart(() => calls.push("second"));
    await sleep(50);
    t.restart(() => calls.push("third"));
    const restarted = Date.now();
    await sleep(60);
    assert.equal(calls.length, 0, "restart resets the idle clock");
    while (calls.length === 0 && Date.now() - restarted < 2000) await sleep(5);
    assert.deepEqual(calls, ["third"], "only the latest callback runs");
    assert.ok(Date.now() - restarted >= 75, `fired after ${Date.now() - restarted} ms`);
    assert.ok(t.fired);

    // After firing, restart() arms a new timer and clears `fired`.
    t.restart(() => calls.push("fourth"));
    assert.ok(!t.fired);
    await sleep(160);
    assert.deepEqual(calls, ["third", "fourth"]);
  } finally {
    t.cancel();
  }
});

Deno.test("IdleTimer.cancel() leaves no timer behind, even while paused", async () => {
  let fired = 0;
  const t = new IdleTimer(30, () => fired++);
  t.pause();
  t.restart(() => fired++);
  t.cancel();
  t.cancel();
  await sleep(60);
  assert.equal(fired, 0);
  // (the op sanitizer fails this test if a timer were still pending)
});
