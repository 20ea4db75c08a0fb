// deno-lint-ignore-file no-console
/**
 * `deno task bench`: runs the benchmark scenarios side by side with real peers
 * on 127.0.0.1 and prints one table (median, min–max, ratio to each peer
 * measured in the same run, target, met?) plus the machine line.
 *
 * Usage: `deno task bench [--quick] [--only NAME[,NAME]] [--reps N] [--json FILE]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  ensureTools,
  type Server,
  stopAll,
  stopProcess,
  type ToolName,
  waitIdle,
} from "./_peers.ts";
import type { Row, Scenario, ScenarioContext, ScenarioResult } from "./_scenario.ts";
import { SCENARIOS } from "./scenarios/mod.ts";

/** Where and on what the benchmark ran. */
export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  deno: string;
  v8: string;
  kernel: string;
  date: string;
}

/** One scenario's outcome in the report. */
export interface ScenarioReport extends ScenarioResult {
  name: string;
  description: string;
  /** Set when the scenario threw. */
  error?: string;
  /** Seconds the scenario took. */
  seconds: number;
}

/** The JSON written by `--json FILE`. */
export interface BenchReport {
  machine: MachineInfo;
  options: { quick: boolean; reps: number; only: string[] };
  wallSeconds: number;
  scenarios: ScenarioReport[];
}

const USAGE = `Usage: deno task bench [options]

Runs wmproxy next to real peers (nginx, squid, socat, …) on 127.0.0.1 and prints
median, min–max and ratios to the peers measured in the same run.

Options:
  --quick            short runs: one repetition, 1-second runs, no ceiling rows
                     (finishes in under two minutes)
  --only NAME[,NAME] run only these scenarios
  --reps N           repetitions per subject   [default: 5, with --quick 1]
  --json FILE        also write the results as JSON
  --no-install       do not apt-get install missing peers (their scenarios are skipped)
  -h, --help         this text

Scenarios:
${SCENARIOS.map((s) => `  ${s.name.padEnd(18)} ${s.description}`).join("\n")}`;

/** Reads nproc, CPU model, Deno and kernel versions and the date. */
export async function machineInfo(): Promise<MachineInfo> {
  let cpuModel = "unknown";
  let nproc = navigator.hardwareConcurrency;
  try {
    const cpuinfo = await Deno.readTextFile("/proc/cpuinfo");
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? cpuModel;
    nproc = (cpuinfo.match(/^processor\s*:/gm) ?? []).length || nproc;
  } catch { /* not Linux */ }
  let kernel = "unknown";
  try {
    kernel = Deno.osRelease();
  } catch { /* no --allow-sys */ }
  return {
    nproc,
    cpuModel,
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    kernel,
    date: new Date().toISOString(),
  };
}

function fmtNumber(n: number): string {
  const abs = Math.abs(n);
  if (Math.round(abs) >= 1000) return Math.round(n).toLocaleString("en-US");
  if (abs >= 100) return n.toFixed(0);
  if (abs >= 10) return n.toFixed(1);
  return n.toFixed(2);
}

function fmtRatio(r: { peer: string; median: number; min: number; max: number }): string {
  const range = r.min === r.max ? "" : ` (${r.min.toFixed(2)}–${r.max.toFixed(2)})`;
  return `${r.median.toFixed(2)}× ${r.peer}${range}`;
}

/** Renders the report as a plain-text table with notes and the machine line. */
export function renderTable(report: BenchReport): string {
  const header = [
    "scenario",
    "subject",
    "median",
    "min–max",
    "unit",
    "vs peers",
    "target",
    "met?",
    "details",
  ];
  const lines: string[][] = [];
  for (const s of report.scenarios) {
    if (s.skipped !== undefined || s.error !== undefined) {
      const why = s.skipped !== undefined ? `skipped: ${s.skipped}` : `error: ${s.error}`;
      lines.push([s.name, "—", "", "", "", "", "", "", why]);
      continue;
    }
    for (const row of s.rows) lines.push(rowCells(s.name, row));
  }
  const widths = header.map((h, i) =>
    Math.max(h.length, ...lines.map((l) => i === header.length - 1 ? 0 : (l[i] ?? "").length))
  );
  const fmt = (cells: string[]) =>
    cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i]!)).join("  ").trimEnd();
  const out = [fmt(header), fmt(widths.map((w, i) => "-".repeat(i === widths.length - 1 ? 7 : w)))];
  for (const l of lines) out.push(fmt(l));
  out.push("");
  for (const s of report.scenarios) {
    const notes = s.notes ?? [];
    if (notes.length === 0) continue;
    out.push(`${s.name} (${s.seconds.toFixed(0)} s):`);
    for (const note of notes) out.push(`  - ${note}`);
  }
  const m = report.machine;
  out.push("");
  out.push(
    `machine: nproc ${m.nproc}, CPU ${m.cpuModel}, Deno ${m.deno} (V8 ${m.v8}), kernel ${m.kernel}, ` +
      `${m.date}; reps ${report.options.reps}${
        report.options.quick ? " (quick: 1-s runs, ceiling rows left out; indicative only)" : ""
      }, ` +
      `wall ${report.wallSeconds.toFixed(0)} s`,
  );
  return out.join("\n");
}

function rowCells(scenario: string, row: Row): string[] {
  const s = row.summary;
  const target = row.target;
  const met = target === undefined ? "" : target.met === null ? "—" : target.met ? "met" : "MISSED";
  const details = row.error !== undefined
    ? (row.details ? `${row.details}; ` : "") +
      (row.error.startsWith("skipped") ? row.error : `error: ${row.error}`)
    : row.details;
  return [
    scenario,
    row.subject,
    s === undefined ? "—" : fmtNumber(s.median),
    s === undefined || s.values.length < 2 ? "" : `${fmtNumber(s.min)}–${fmtNumber(s.max)}`,
    row.unit,
    row.ratios.map(fmtRatio).join(", "),
    target?.text ?? "",
    met,
    details,
  ];
}

/** The temp dir of the running benchmark, removed on SIGINT/SIGTERM too. */
let activeRootDir: string | undefined;

/** Runs the selected scenarios and returns the report (the CLI prints it). */
export async function runBench(options: {
  quick: boolean;
  reps: number;
  scenarios: readonly Scenario[];
  install: boolean;
  signal: AbortSignal;
}): Promise<BenchReport> {
  const t0 = performance.now();
  const log = (msg: string) =>
    console.error(`[bench ${((performance.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`);
  const rootDir = await Deno.makeTempDir({ prefix: "wmproxy-bench-" });
  // Peers that drop root (nginx workers, squid) must be able to reach their files.
  await Deno.chmod(rootDir, 0o755);
  activeRootDir = rootDir;
  const shared = new Map<string, Promise<Server>>();
  const reports: ScenarioReport[] = [];
  try {
    const needed = [
      ...new Set(options.scenarios.flatMap((s) => [...s.peers, ...(s.optionalPeers ?? [])])),
    ] as ToolName[];
    const tools = await ensureTools(needed, { install: options.install, log });
    for (const scenario of options.scenarios) {
      const started = performance.now();
      const base = { name: scenario.name, description: scenario.description };
      const missing = scenario.peers.map((p) => tools.missing[p]).filter((m) => m !== undefined);
      if (missing.length > 0) {
        reports.push({ ...base, rows: [], notes: [], skipped: missing.join("; "), seconds: 0 });
        continue;
      }
      if (options.signal.aborted) break;
      const dir = `${rootDir}/${scenario.name}`;
      await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
      const ctx: ScenarioContext = {
        quick: options.quick,
        reps: options.reps,
        dir,
        rootDir,
        tools,
        signal: options.signal,
        log,
        tool(name) {
          const path = tools.paths[name];
          if (path === undefined) {
            throw new Error(`Cannot find ${name}: ${tools.missing[name] ?? "not listed in peers"}`);
          }
          return path;
        },
        optionalTool: (name) => tools.paths[name],
        shared<T extends Server>(key: string, start: () => Promise<T>): Promise<T> {
          let server = shared.get(key);
          if (server === undefined) {
            server = start();
            shared.set(key, server);
            server.catch(() => shared.delete(key));
          }
          return server as Promise<T>;
        },
        // Quick: one 200 ms look and no wait, so the whole run stays under two minutes.
        idleGate: () => options.quick ? waitIdle(85, 0, 200) : waitIdle(85, 10, 1000),
      };
      log(`${scenario.name}: start`);
      try {
        const result = await scenario.run(ctx);
        reports.push({ ...base, ...result, seconds: (performance.now() - started) / 1000 });
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        log(`${scenario.name}: error: ${why}`);
        reports.push({
          ...base,
          rows: [],
          notes: [],
          error: why.split("\n")[0]!,
          seconds: (performance.now() - started) / 1000,
        });
      }
    }
  } finally {
    for (const server of shared.values()) {
      try {
        await stopProcess((await server).process);
      } catch { /* it never started */ }
    }
    await stopAll();
    await Deno.remove(rootDir, { recursive: true }).catch(() => {});
    activeRootDir = undefined;
  }
  return {
    machine: await machineInfo(),
    options: {
      quick: options.quick,
      reps: options.reps,
      only: options.scenarios.map((s) => s.name),
    },
    wallSeconds: (performance.now() - t0) / 1000,
    scenarios: reports,
  };
}

async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        quick: { type: "boolean", default: false },
        json: { type: "string" },
        only: { type: "string" },
        reps: { type: "string" },
        "no-install": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    console.error(
      `Cannot parse arguments: ${error instanceof Error ? error.message : error}\n\n${USAGE}`,
    );
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  let scenarios: readonly Scenario[] = SCENARIOS;
  if (values.only !== undefined) {
    const names = values.only.split(",").map((s) => s.trim()).filter(Boolean);
    const unknown = names.filter((n) => !SCENARIOS.some((s) => s.name === n));
    if (unknown.length > 0) {
      console.error(
        `Cannot select scenarios: unknown ${unknown.map((n) => JSON.stringify(n)).join(", ")} ` +
          `(known: ${SCENARIOS.map((s) => s.name).join(", ")})`,
      );
      return 2;
    }
    scenarios = SCENARIOS.filter((s) => names.includes(s.name));
  }
  const reps = values.reps === undefined ? (values.quick ? 1 : 5) : Number(values.reps);
  if (!Number.isInteger(reps) || reps < 1 || reps > 50) {
    console.error(
      `Cannot use --reps ${JSON.stringify(values.reps)}: expected an integer from 1 to 50`,
    );
    return 2;
  }

  const controller = new AbortController();
  const onSignal = async () => {
    if (controller.signal.aborted) return;
    console.error("[bench] interrupted: stopping the processes it started");
    controller.abort();
    await stopAll();
    if (activeRootDir !== undefined) {
      await Deno.remove(activeRootDir, { recursive: true }).catch(() => {});
    }
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const report = await runBench({
      quick: values.quick,
      reps,
      scenarios,
      install: !values["no-install"],
      signal: controller.signal,
    });
    console.log(renderTable(report));
    if (values.json !== undefined) {
      await Deno.writeTextFile(values.json, JSON.stringify(report, null, 2) + "\n");
      console.error(`[bench] wrote ${values.json}`);
    }
    return report.scenarios.some((s) => s.error !== undefined) ? 1 : 0;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
