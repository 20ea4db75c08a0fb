/**
 * Mutation testing of the security- and routing-critical modules with Stryker
 * (command test runner calling `deno test`). Not part of CI: it takes minutes.
 *
 *   deno task mutate [MODULE…] [--threshold 80] [--concurrency 2]
 *
 * MODULE is a name from the table below (default: all). For each module this
 * writes a Stryker config into `.stryker-tmp/` (git-ignored), runs Stryker in a
 * sandbox copy of the repository (the copy has `deno.json`, so `@/` resolves
 * there), reads the JSON report and prints a score table plus every surviving
 * mutant. Exits 1 if any module scores below the threshold.
 *
 * See tests/mutate/README.md for the last figures.
 */
import { parseArgs } from "node:util";
import { formatTable, type ModuleScore, passes, summarize, undetected } from "./report.ts";

/** The one place the Stryker version is pinned. Stryker 10 wants Node ≥ 22; Deno runs it. */
export const STRYKER = "npm:@stryker-mutator/core@10.1.1/stryker";

/** A module under mutation and the unit tests that must kill its mutants. */
export interface MutateTarget {
  /** Short name used on the command line and in the table. */
  name: string;
  /** Files or Stryker ranges (`file:startLine-endLine`) to mutate. */
  mutate: string[];
  /** Test files passed to `deno test`. */
  tests: string[];
  /** Optional `deno test --filter` (a `/regex/`), to leave out slow cases that kill nothing here. */
  filter?: string;
}

export const TARGETS: readonly MutateTarget[] = [
  {
    name: "socks5_codec",
    mutate: ["src/proxy/socks5_codec.ts"],
    tests: ["tests/unit/proxy/socks5_codec_test.ts"],
  },
  {
    name: "mapping_registry",
    mutate: ["src/mapping/mapping_registry.ts"],
    tests: ["tests/unit/mapping/mapping_registry_test.ts"],
  },
  {
    name: "sni",
    mutate: ["src/mapping/sni.ts"],
    tests: ["tests/unit/mapping/sni_test.ts", "tests/unit/mapping/sni_reasons_test.ts"],
    // Leaves out the live openssl/curl hellos and the 20 000-case fuzz run, which
    // take most of the time per mutant (deno's filter has no look-ahead, so this
    // lists what stays: keep it in step with the test names).
    filter:
      "/^(hand-made hello|readClientHello|parseClientHello\\(\\) (reads the|reports|answers|handles|rejects|checks|parses))/",
  },
  {
    name: "auth_proof",
    mutate: ["src/tunnel/auth_proof.ts"],
    tests: ["tests/unit/tunnel/auth_proof_test.ts", "tests/unit/tunnel/vectors_test.ts"],
  },
  {
    name: "stream_state",
    mutate: ["src/mux/stream_state.ts"],
    tests: ["tests/unit/mux/stream_state_test.ts"],
  },
  {
    // Only the flow-control (credit / window) code of the stream: the
    // constructor's windows, write()'s credit loop, _receive()'s window check,
    // _credit(), #consumed() and #wakeWriter(). Keep the ranges in step with
    // src/mux/virtual_stream.ts when it changes.
    name: "virtual_stream_credit",
    mutate: [
      "src/mux/virtual_stream.ts:102-104",
      "src/mux/virtual_stream.ts:169-195",
      "src/mux/virtual_stream.ts:308-325",
      "src/mux/virtual_stream.ts:344-356",
      "src/mux/virtual_stream.ts:467-476",
      "src/mux/virtual_stream.ts:492-498",
    ],
    tests: ["tests/unit/mux/virtual_stream_credit_test.ts"],
  },
  // ---- added by the merger (modules owned by other helpers) ----
  // { name: "http1_framing", mutate: ["src/http1/framing.ts"], tests: ["tests/unit/http1/…"] },
  // { name: "egress_policy", mutate: ["src/proxy/<egress policy module>.ts"], tests: ["…"] },
];

const TMP = ".stryker-tmp";

function out(line: string): void {
  Deno.stdout.writeSync(new TextEncoder().encode(line + "\n"));
}

function strykerConfig(t: MutateTarget, reportFile: string, concurrency: number) {
  return {
    $schema:
      "https://raw.githubusercontent.com/stryker-mutator/stryker/master/packages/api/schema/stryker-core.json",
    mutate: t.mutate,
    testRunner: "command",
    commandRunner: {
      command: `deno test -A --no-check --quiet${
        t.filter === undefined ? "" : ` --filter '${t.filter}'`
      } ${t.tests.join(" ")}`,
    },
    coverageAnalysis: "off",
    plugins: [],
    checkers: [],
    concurrency,
    reporters: ["json", "clear-text", "progress-append-only"],
    jsonReporter: { fileName: reportFile },
    clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
    timeoutMS: 15000,
    timeoutFactor: 2,
    tempDirName: TMP,
    cleanTempDir: true,
    // `--no-check` ignores types anyway; this only stops Stryker touching other files.
    disableTypeChecks: false,
    thresholds: { high: 90, low: 80, break: null },
  };
}

async function runTarget(t: MutateTarget, concurrency: number): Promise<ModuleScore> {
  await Deno.mkdir(`${TMP}/reports`, { recursive: true });
  const configFile = `${TMP}/stryker.${t.name}.conf.json`;
  const reportFile = `${TMP}/reports/${t.name}.json`;
  await Deno.remove(reportFile).catch(() => {});
  await Deno.writeTextFile(
    configFile,
    JSON.stringify(strykerConfig(t, reportFile, concurrency), null, 2),
  );
  out(`mutate: ${t.name}: ${t.mutate.join(", ")} against ${t.tests.join(", ")}`);
  const started = performance.now();
  // --no-config / --no-lock: Stryker's own npm packages must not enter deno.json or deno.lock.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", "--no-lock", STRYKER, "run", configFile],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const status = await child.status;
  const seconds = (performance.now() - started) / 1000;
  if (!status.success) {
    throw new Error(`Cannot mutate ${t.name}: Stryker exited with code ${status.code}`);
  }
  const report = JSON.parse(await Deno.readTextFile(reportFile));
  for (const u of undetected(report)) {
    out(`  ${u.status.padEnd(10)} ${u.file}:${u.line}:${u.column} ${u.mutator}: ${u.replacement}`);
  }
  return { ...summarize(t.name, report), seconds };
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      threshold: { type: "string", default: "80" },
      concurrency: { type: "string", default: "2" },
    },
  });
  const threshold = Number(values.threshold);
  const concurrency = Number(values.concurrency);
  if (!Number.isFinite(threshold) || !Number.isInteger(concurrency) || concurrency < 1) {
    throw new TypeError("Cannot mutate: --threshold must be a number and --concurrency ≥ 1");
  }
  const unknown = positionals.filter((p) => !TARGETS.some((t) => t.name === p));
  if (unknown.length > 0) {
    throw new TypeError(
      `Cannot mutate: unknown module ${unknown.join(", ")} (known: ${
        TARGETS.map((t) => t.name).join(", ")
      })`,
    );
  }
  const chosen = positionals.length === 0
    ? TARGETS
    : TARGETS.filter((t) => positionals.includes(t.name));
  const rows: ModuleScore[] = [];
  for (const t of chosen) rows.push(await runTarget(t, concurrency));
  out("");
  out(formatTable(rows));
  const failing = rows.filter((r) => !passes(r, threshold));
  if (failing.length > 0) {
    out(`mutate: below ${threshold} %: ${failing.map((r) => r.module).join(", ")}`);
    Deno.exit(1);
  }
  out(`mutate: every module reaches ${threshold} %`);
}
