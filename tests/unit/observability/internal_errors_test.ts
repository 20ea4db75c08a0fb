import assert from "node:assert/strict";
import { InternalErrors, Logger, MemorySink } from "@/observability/mod.ts";

function setup() {
  const sink = new MemorySink();
  const errors = new InternalErrors(new Logger({ format: "json", sink }));
  return { sink, errors, lines: () => sink.lines.map((l) => JSON.parse(l)) };
}

Deno.test("InternalErrors: an unhandled rejection is prevented, logged with its stack and counted", () => {
  const { errors, lines } = setup();
  const target = new EventTarget();
  using _ = errors.install(target);
  const event = new PromiseRejectionEvent("unhandledrejection", {
    promise: Promise.resolve(),
    reason: new Error("Cannot frobnicate: no widget"),
    cancelable: true,
  });
  target.dispatchEvent(event);
  assert.equal(event.defaultPrevented, true);
  assert.equal(errors.count, 1);
  const [line] = lines();
  assert.equal(line.event, "internal_error");
  assert.equal(line.level, "error");
  assert.equal(line.kind, "unhandled_rejection");
  assert.equal(line.error, "Cannot frobnicate: no widget");
  assert.match(line.stack, /internal_errors_test\.ts/);
});

Deno.test("InternalErrors: an uncaught exception and a non-Error reason are handled too", () => {
  const { errors, lines } = setup();
  const target = new EventTarget();
  using _ = errors.install(target);
  const thrown = new ErrorEvent("error", {
    error: new TypeError("x is undefined"),
    message: "Uncaught TypeError: x is undefined",
    cancelable: true,
  });
  target.dispatchEvent(thrown);
  assert.equal(thrown.defaultPrevented, true);
  target.dispatchEvent(
    new PromiseRejectionEvent("unhandledrejection", {
      promise: Promise.resolve(),
      reason: "plain string",
      cancelable: true,
    }),
  );
  assert.equal(errors.count, 2);
  const [a, b] = lines();
  assert.equal(a.kind, "uncaught_exception");
  assert.equal(a.error, "x is undefined");
  assert.equal(b.error, "plain string");
  assert.equal(b.stack, undefined);
});

Deno.test("InternalErrors: disposing the installation stops listening", () => {
  const { errors } = setup();
  const target = new EventTarget();
  {
    using _ = errors.install(target);
  }
  target.dispatchEvent(new ErrorEvent("error", { error: new Error("x"), cancelable: true }));
  assert.equal(errors.count, 0);
});

Deno.test("InternalErrors: installed on the real global scope, the process survives both", async () => {
  const module = new URL("../../../src/observability/mod.ts", import.meta.url).href;
  const script = `
    import { InternalErrors, Logger } from ${JSON.stringify(module)};
    const errors = new InternalErrors(new Logger({ format: "json" }));
    errors.install();
    Promise.reject(new Error("stray rejection"));
    setTimeout(() => { throw new Error("stray exception"); }, 0);
    setTimeout(() => console.log("alive " + errors.count), 50);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(stdout.trim(), "alive 2");
  const events = stderr.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(events.map((e) => [e.event, e.error]), [
    ["internal_error", "stray rejection"],
    ["internal_error", "stray exception"],
  ]);
});
