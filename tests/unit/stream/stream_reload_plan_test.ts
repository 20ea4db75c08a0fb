import assert from "node:assert/strict";
import { completeStreamSection, type StreamServerInput } from "@/config/stream_section.ts";
import type { UpstreamGroupInput } from "@/config/upstream_section.ts";
import { planStreamReload } from "@/stream/mod.ts";

function config(servers: StreamServerInput[], upstreams: UpstreamGroupInput[] = []) {
  return completeStreamSection({ upstreams, servers });
}

const A = { listen: "127.0.0.1:7000", target: "127.0.0.1:9000" };
const B = { listen: "127.0.0.1:7001", target: "127.0.0.1:9001" };
const C = { listen: "127.0.0.1:7002", target: "127.0.0.1:9002" };

Deno.test("planStreamReload() keeps unchanged servers, restarts a moved one and starts a new one", () => {
  const plan = planStreamReload(
    config([A, B]),
    [true, true],
    config([A, { ...B, listen: "127.0.0.1:7101" }, C]),
  );
  assert.deepEqual(plan.servers, [
    { action: "keep", from: 0, to: 0 },
    { action: "restart", from: 1, to: 1 },
    { action: "start", to: 2 },
  ]);
});

Deno.test("planStreamReload() updates in place when only the target or timeouts change", () => {
  const plan = planStreamReload(
    config([A, B]),
    [true, true],
    config([{ ...B, target: "127.0.0.1:9999", connect_timeout: 1000 }, A]),
  );
  assert.deepEqual(plan.servers, [
    { action: "update", from: 1, to: 0 },
    { action: "keep", from: 0, to: 1 },
  ]);
});

Deno.test("planStreamReload() restarts a server whose protocol changed and stops removed ones", () => {
  const plan = planStreamReload(
    config([A, B, C]),
    [true, true, true],
    config([{ ...A, protocol: "ws2tcp" }]),
  );
  assert.deepEqual(plan.servers, [
    { action: "restart", from: 0, to: 0 },
    { action: "stop", from: 1 },
    { action: "stop", from: 2 },
  ]);
});

Deno.test("planStreamReload() starts again a server that failed to start, even with the same config", () => {
  const plan = planStreamReload(config([A, B]), [true, false], config([A, B]));
  assert.deepEqual(plan.servers, [
    { action: "keep", from: 0, to: 0 },
    { action: "start", to: 1 },
  ]);
});

Deno.test("planStreamReload() keeps unchanged groups and updates the servers of a changed group", () => {
  const groups = (port: number): UpstreamGroupInput[] => [
    { name: "one", servers: [{ addr: "127.0.0.1:9100" }] },
    { name: "two", servers: [{ addr: `127.0.0.1:${port}` }] },
  ];
  const servers = [
    { listen: "127.0.0.1:7000", upstream: "one" },
    { listen: "127.0.0.1:7001", upstream: "two" },
  ];
  const plan = planStreamReload(
    config(servers, groups(9200)),
    [true, true],
    config(servers, groups(9201)),
  );
  assert.deepEqual(plan.keptGroups, ["one"]);
  assert.deepEqual(plan.newGroups, ["two"]);
  assert.deepEqual(plan.retiredGroups, ["two"]);
  assert.deepEqual(plan.servers, [
    { action: "keep", from: 0, to: 0 },
    { action: "update", from: 1, to: 1 },
  ]);
});

Deno.test("planStreamReload() matches a port-0 listener only at the same position", () => {
  const zero = (target: string) => ({ listen: "127.0.0.1:0", target });
  const plan = planStreamReload(
    config([zero("127.0.0.1:9000"), zero("127.0.0.1:9001")]),
    [true, true],
    config([zero("127.0.0.1:9000"), { ...B, target: "127.0.0.1:9001" }, zero("127.0.0.1:9002")]),
  );
  assert.deepEqual(plan.servers, [
    { action: "keep", from: 0, to: 0 },
    { action: "restart", from: 1, to: 1 },
    { action: "start", to: 2 },
  ]);
});
