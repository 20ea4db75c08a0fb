/**
 * Tests of the tunnel benchmark helpers that need no peers: iperf3 JSON
 * parsing, percentiles, fair share, multi-peer targets and config text.
 * Run with `deno test -A tests/bench`.
 *
 * @module
 */
import { makeRow } from "./_scenario.ts";
import { parseIperfJson, percentile, setRatiosTarget, sshdConfig } from "./_tunnels.ts";
import { hostHeaderScript } from "./scenarios/http_mapping.ts";
import { fairShare } from "./scenarios/tcp_mapping.ts";

function assertEquals(actual: unknown, expected: unknown): void {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`Expected ${e}, got ${a}`);
}

function assertThrows(fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (error) {
    if (pattern.test(String(error))) return;
    throw new Error(`Expected an error matching ${pattern}, got ${error}`);
  }
  throw new Error(`Expected an error matching ${pattern}, got none`);
}

Deno.test("parseIperfJson() reads the receiver sum and each stream", () => {
  const r = parseIperfJson(JSON.stringify({
    start: {},
    end: {
      streams: [
        { sender: { bits_per_second: 9e9 }, receiver: { bits_per_second: 1.5e9 } },
        { sender: { bits_per_second: 9e9 }, receiver: { bits_per_second: 2.5e9 } },
      ],
      sum_sent: { bits_per_second: 4.1e9 },
      sum_received: { bits_per_second: 4e9 },
    },
  }));
  assertEquals(r, { gbps: 4, streams: [1.5, 2.5] });
});

Deno.test("parseIperfJson() rejects error reports and non-JSON", () => {
  assertThrows(
    () => parseIperfJson('{"start":{},"end":{},"error":"the server is busy running a test"}'),
    /server is busy/,
  );
  assertThrows(() => parseIperfJson("iperf3: error"), /Cannot parse iperf3/);
  assertThrows(() => parseIperfJson('{"end":{}}'), /sum_received/);
});

Deno.test("percentile() uses the nearest rank", () => {
  const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1
  assertEquals([percentile(v, 50), percentile(v, 99), percentile(v, 100)], [50, 99, 100]);
  assertEquals(percentile([7], 99), 7);
  assertEquals(Number.isNaN(percentile([], 50)), true);
});

Deno.test("fairShare() gives the smallest and largest stream over the mean", () => {
  assertEquals(fairShare([1, 1, 2]), { min: 0.75, max: 1.5 });
  assertEquals(fairShare([3, 3]), { min: 1, max: 1 });
});

Deno.test("setRatiosTarget() needs every ratio and the extra condition", () => {
  const wm = makeRow("wm", "Gbit/s", [3, 3, 3]);
  const ssh = makeRow("ssh -R", "Gbit/s", [2, 2, 2]);
  const st = makeRow("stunnel", "Gbit/s", [2.4, 2.4, 2.4]);
  setRatiosTarget(wm, [{ row: ssh, min: 1.5 }, { row: st, min: 1.2 }]);
  assertEquals(wm.target, { text: "≥ 1.5× ssh -R, ≥ 1.2× stunnel", met: true });
  setRatiosTarget(wm, [{ row: ssh, min: 1.5 }], { text: "p99 ≤ ssh's", met: false });
  assertEquals(wm.target?.met, false);
  const failed = makeRow("wm", "Gbit/s", [], { error: "boom" });
  setRatiosTarget(failed, [{ row: ssh, min: 1.5 }]);
  assertEquals(failed.target?.met, null);
});

Deno.test("sshdConfig() and hostHeaderScript() write loopback-only text", () => {
  const conf = sshdConfig("/tmp/x", 2222);
  assertEquals(conf.includes("ListenAddress 127.0.0.1\nPort 2222\n"), true);
  assertEquals(conf.includes("PermitListen 127.0.0.1:*"), true);
  assertEquals(
    hostHeaderScript("bench.test").endsWith('wrk.headers["Host"] = "bench.test"\n'),
    true,
  );
});
