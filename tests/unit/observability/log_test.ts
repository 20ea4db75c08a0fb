import assert from "node:assert/strict";
import { Logger, MemorySink } from "@/observability/mod.ts";
import { Secret } from "@/config/mod.ts";

Deno.test("Logger writes JSON lines with time, level, event and fields", () => {
  const sink = new MemorySink();
  const log = new Logger({ format: "json", sink }).child({ component: "proxy" });
  log.info("listening", { addr: "127.0.0.1:8090" });
  const line = JSON.parse(sink.lines[0]!);
  assert.equal(line.event, "listening");
  assert.equal(line.level, "info");
  assert.equal(line.component, "proxy");
  assert.equal(line.addr, "127.0.0.1:8090");
  assert.ok(!Number.isNaN(Date.parse(line.time)));
});

Deno.test("Logger drops lines below its level", () => {
  const sink = new MemorySink();
  const log = new Logger({ level: "warn", sink });
  log.info("x");
  log.debug("y");
  log.warn("z");
  assert.equal(sink.lines.length, 1);
  assert.match(sink.lines[0]!, / WARN {2}z$/);
});

Deno.test("Logger text format quotes values with spaces and masks secrets and errors", () => {
  const sink = new MemorySink();
  const log = new Logger({ sink });
  log.error("fatal", { error: new Error("Cannot listen: in use"), pass: new Secret("hunter2") });
  assert.match(sink.lines[0]!, /error="Cannot listen: in use"/);
  assert.ok(!sink.lines[0]!.includes("hunter2"));
  const json = new MemorySink();
  new Logger({ sink: json, format: "json" }).info("x", { pass: new Secret("hunter2") });
  assert.ok(!json.lines[0]!.includes("hunter2"));
});
