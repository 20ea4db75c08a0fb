import assert from "node:assert/strict";
import { Histogram, LATENCY_BUCKETS_S } from "@/observability/mod.ts";

Deno.test("Histogram.observe() counts each value in the first bucket whose bound is >= it", () => {
  const h = new Histogram([0.1, 0.5, 1]);
  for (const v of [0, 0.1, 0.2, 0.5, 0.7, 1, 2, 100]) h.observe(v);
  const s = h.snapshot();
  assert.deepEqual(s.buckets, [0.1, 0.5, 1]);
  assert.deepEqual(s.counts, [2, 4, 6], "cumulative");
  assert.equal(s.count, 8, "+Inf holds everything");
  assert.ok(Math.abs(s.sum - 104.5) < 1e-9);
});

Deno.test("Histogram.observe() ignores NaN and counts a negative value as 0", () => {
  const h = new Histogram([1]);
  h.observe(NaN);
  h.observe(-3);
  assert.deepEqual(h.snapshot(), { buckets: [1], counts: [1], count: 1, sum: 0 });
});

Deno.test("Histogram uses LATENCY_BUCKETS_S by default and snapshots are copies", () => {
  const h = new Histogram();
  const before = h.snapshot();
  assert.deepEqual(before.buckets, LATENCY_BUCKETS_S);
  assert.equal(before.counts.length, LATENCY_BUCKETS_S.length);
  h.observe(0.003);
  assert.equal(before.count, 0);
  const after = h.snapshot();
  assert.equal(after.count, 1);
  assert.equal(after.counts[LATENCY_BUCKETS_S.indexOf(0.005)], 1);
  assert.equal(after.counts[LATENCY_BUCKETS_S.indexOf(0.0025)], 0);
});

Deno.test("new Histogram() rejects buckets that are empty, unordered or not finite", () => {
  assert.throws(() => new Histogram([]), RangeError);
  assert.throws(() => new Histogram([1, 1]), /strictly increasing/);
  assert.throws(() => new Histogram([0.5, Infinity]), /strictly increasing finite/);
  assert.throws(() => new Histogram(Array.from({ length: 65 }, (_, i) => i)), /1 to 64 buckets/);
});
