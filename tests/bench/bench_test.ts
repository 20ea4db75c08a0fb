/**
 * Tests of the benchmark helpers that need no peers: wrk output parsing,
 * statistics and the mux result adapter. Run with `deno test -A tests/bench`.
 *
 * @module
 */
import { median, pairedRatios, summarize } from "./_stats.ts";
import { parseWrkDuration, parseWrkOutput, wrkProblem } from "./_wrk.ts";
import { muxFigures } from "./scenarios/mux.ts";

function assertEquals(actual: unknown, expected: unknown): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`Expected ${e}, got ${a}`);
}

const WRK_OUTPUT = `Running 1s test @ http://127.0.0.1:34253/t.ts
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.07ms    0.97ms  13.01ms   94.95%
    Req/Sec     1.96k   326.80     2.29k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.08ms
     90%    1.45ms
     99%    1.02s
  1954 requests in 1.00s, 1.32MB read
  Non-2xx or 3xx responses: 30
  Socket errors: connect 0, read 2, write 0, timeout 1
Requests/sec:   1951.72
Transfer/sec:      1.32MB
`;

Deno.test("parseWrkOutput() reads req/s, percentiles and errors", () => {
  const r = parseWrkOutput(WRK_OUTPUT);
  assertEquals(r.requestsPerSec, 1951.72);
  assertEquals(r.p50Ms, 0.812);
  assertEquals(r.p99Ms, 1020);
  assertEquals(r.requests, 1954);
  assertEquals(r.non2xx, 30);
  assertEquals(r.socketErrors, 3);
  assertEquals(wrkProblem(r), "30 of 1954 responses were not 2xx/3xx");
});

Deno.test("parseWrkOutput() rejects output without --latency", () => {
  let threw = false;
  try {
    parseWrkOutput("Requests/sec: 10\n");
  } catch (error) {
    threw = error instanceof SyntaxError;
  }
  assertEquals(threw, true);
});

Deno.test("parseWrkDuration() converts every unit to ms", () => {
  assertEquals(["5us", "2ms", "1.5s", "1m"].map(parseWrkDuration), [0.005, 2, 1500, 60000]);
});

Deno.test("summarize() and median() handle odd and even counts", () => {
  assertEquals(median([3, 1, 2]), 2);
  assertEquals(median([4, 1, 2, 3]), 2.5);
  const s = summarize([5, 1, 9]);
  assertEquals([s.median, s.min, s.max, s.count], [5, 1, 9, 3]);
  assertEquals(pairedRatios([2, 6], [1, 3]), [2, 2]);
});

Deno.test("muxFigures() accepts rows, objects and maps", () => {
  assertEquals(
    muxFigures([{ name: "raw TLS", mbPerSec: 1382 }, { variant: "mux 16", values: [1, 2] }]),
    [{ name: "raw TLS", values: [1382], unit: "MB/s" }, {
      name: "mux 16",
      values: [1, 2],
      unit: "MB/s",
    }],
  );
  assertEquals(muxFigures({ rows: [{ subject: "x", median: 3, unit: "Gbit/s" }] }), [
    { name: "x", values: [3], unit: "Gbit/s" },
  ]);
  assertEquals(muxFigures({ "mux 1": [864], raw: { median: 1382 }, bytes: 5 }), [
    { name: "mux 1", values: [864], unit: "MB/s" },
    { name: "raw", values: [1382], unit: "MB/s" },
  ]);
  assertEquals(
    muxFigures({
      bytes: 1,
      reps: 2,
      rawTls: { mbps: 2, runs: [1, 3] },
      mux1: { mbps: 1, runs: [1, 1], ratio: 0.5 },
    }),
    [{ name: "raw TLS", values: [1, 3], unit: "MB/s" }, {
      name: "mux 1 stream",
      values: [1, 1],
      unit: "MB/s",
    }],
  );
});
