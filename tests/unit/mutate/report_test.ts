import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { formatTable, passes, summarize, undetected } from "../../mutate/report.ts";
import { TARGETS } from "../../mutate/main.ts";

const mutant = (status: string, line = 1, mutatorName = "EqualityOperator") => ({
  id: String(Math.random()),
  mutatorName,
  replacement: "a <= b",
  status,
  location: { start: { line, column: 3 }, end: { line, column: 9 } },
});

const REPORT = {
  schemaVersion: "2",
  thresholds: { high: 90, low: 80 },
  files: {
    "src/a.ts": {
      language: "typescript",
      source: "",
      mutants: [
        mutant("Killed"),
        mutant("Killed"),
        mutant("Killed"),
        mutant("Timeout"),
        mutant("Survived", 7),
        mutant("NoCoverage", 2, "StringLiteral"),
        mutant("Ignored"),
        mutant("CompileError"),
      ],
    },
    "src/b.ts": { language: "typescript", source: "", mutants: [mutant("Killed")] },
  },
};

Deno.test("summarize() counts statuses and scores detected / valid like Stryker", () => {
  const s = summarize("m", REPORT);
  deepEqual(s, {
    module: "m",
    mutants: 9,
    killed: 4,
    survived: 1,
    timeout: 1,
    noCoverage: 1,
    invalid: 2,
    score: (100 * 5) / 7,
  });
  ok(passes(s, 71));
  ok(!passes(s, 72));
});

Deno.test("summarize() of a report without valid mutants has no score and never passes", () => {
  const s = summarize("empty", { files: { "x.ts": { mutants: [mutant("Ignored")] } } });
  ok(Number.isNaN(s.score));
  equal(passes(s, 0), false);
  ok(formatTable([s]).includes("n/a"));
});

Deno.test("summarize() rejects something that is not a Stryker report", () => {
  throws(() => summarize("m", null), /not a JSON object/);
  throws(() => summarize("m", {}), /no `files` object/);
  throws(() => summarize("m", { files: { "a.ts": {} } }), /file a.ts has no `mutants` array/);
});

Deno.test("undetected() lists survived and uncovered mutants by file and line", () => {
  deepEqual(
    undetected(REPORT).map((u) => `${u.file}:${u.line}:${u.column} ${u.status} ${u.mutator}`),
    [
      "src/a.ts:2:3 NoCoverage StringLiteral",
      "src/a.ts:7:3 Survived EqualityOperator",
    ],
  );
});

Deno.test("formatTable() renders one aligned Markdown row per module", () => {
  const table = formatTable([
    { ...summarize("socks5_codec", REPORT), seconds: 61.4 },
    summarize("x", { files: { "a.ts": { mutants: [mutant("Survived")] } } }),
  ]);
  const lines = table.split("\n");
  equal(lines.length, 4);
  ok(lines[0]!.startsWith("| module "));
  ok(lines[1]!.startsWith("|---"));
  ok(lines[2]!.includes("| 71.4 % |") && lines[2]!.includes("61 s"), lines[2]);
  ok(lines[3]!.includes("0.0 %"), lines[3]);
  equal(new Set(lines.map((l) => l.length)).size, 1, "all rows have the same width");
});

Deno.test("the module table names existing files and tests, each module once", async () => {
  equal(new Set(TARGETS.map((t) => t.name)).size, TARGETS.length);
  for (const t of TARGETS) {
    ok(t.tests.length > 0, t.name);
    for (const f of [...t.mutate.map((m) => m.replace(/:\d+-\d+$/, "")), ...t.tests]) {
      const info = await Deno.stat(new URL(`../../../${f}`, import.meta.url));
      ok(info.isFile, `${t.name}: ${f}`);
    }
  }
});
