import assert from "node:assert/strict";
import { V8_FLAGS, V8_FLAGS_ARG } from "@/cli/v8_flags.ts";

Deno.test("V8_FLAGS_ARG joins the flags into one --v8-flags argument", () => {
  assert.equal(V8_FLAGS_ARG, `--v8-flags=${V8_FLAGS.join(",")}`);
  assert.ok(V8_FLAGS.every((f) => f.startsWith("--") && !f.includes(",")));
});

Deno.test("deno task start and compile pass the same V8 flags as the code", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("../../../deno.json", import.meta.url)),
  ) as { tasks: Record<string, string> };
  for (const task of ["start", "compile"]) {
    const words = config.tasks[task]!.split(" ");
    assert.ok(words.includes(V8_FLAGS_ARG), `task ${task} lacks ${V8_FLAGS_ARG}`);
  }
});
