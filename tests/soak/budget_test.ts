/**
 * Tests of the soak time budget. Run with `deno test -A tests/soak`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { planPhases } from "./_budget.ts";

function near(actual: number, expected: number): void {
  assert.ok(Math.abs(actual - expected) < 1e-6, `expected ${expected}, got ${actual}`);
}

Deno.test("planPhases() splits the total back to back by share", () => {
  const plan = planPhases(500, 600_000, [
    { name: "streams", share: 0.3 },
    { name: "storm", share: 0.3 },
    { name: "fuzz", share: 0.4 },
  ]);
  assert.deepEqual(plan.map((p) => p.name), ["streams", "storm", "fuzz"]);
  near(plan[0]!.budgetMs, 180_000);
  near(plan[1]!.startMs, plan[0]!.deadlineMs);
  near(plan[2]!.deadlineMs, 600_500);
});

Deno.test("planPhases() normalises the shares of a subset of phases", () => {
  const plan = planPhases(0, 60_000, [{ name: "a", share: 0.1 }, { name: "b", share: 0.3 }]);
  near(plan[0]!.budgetMs, 15_000);
  near(plan[1]!.deadlineMs, 60_000);
});

Deno.test("planPhases() rejects a zero total and negative shares", () => {
  assert.throws(() => planPhases(0, 0, [{ name: "a", share: 1 }]), RangeError);
  assert.throws(() => planPhases(0, 1000, [{ name: "a", share: 0 }]), RangeError);
  assert.throws(
    () => planPhases(0, 1000, [{ name: "a", share: 1 }, { name: "b", share: -1 }]),
    RangeError,
  );
});
