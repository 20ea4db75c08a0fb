/**
 * The shape every benchmark scenario follows, and the helpers they share:
 * alternating repetitions behind an idle gate, rows with ratios to peers
 * measured in the same run, and targets.
 *
 * A new scenario is one file under `scenarios/` exporting a {@linkcode Scenario}
 * plus one line in `scenarios/mod.ts`.
 *
 * @module
 */
import type { Server, ToolName, ToolSet } from "./_peers.ts";
import { pairedRatios, summarize, type Summary } from "./_stats.ts";

/** What a scenario gets from the runner. */
export interface ScenarioContext {
  /** The short version (`--quick`): shorter runs, fewer bytes. */
  quick: boolean;
  /** Repetitions per subject. */
  reps: number;
  /** A temp dir owned by this scenario (removed by the runner). */
  dir: string;
  /** The runner's temp dir, shared by all scenarios. */
  rootDir: string;
  /** Tools found or installed. */
  tools: ToolSet;
  /** Aborted on SIGINT/SIGTERM. */
  signal: AbortSignal;
  /** Progress message on stderr. */
  log(message: string): void;
  /** The path of a tool listed in the scenario's `peers` (throws if missing). */
  tool(name: ToolName): string;
  /** The path of a tool, or `undefined` when it is missing (for `optionalPeers`). */
  optionalTool(name: ToolName): string | undefined;
  /**
   * A server shared by scenarios (e.g. the nginx origin), started on first use
   * and stopped by the runner at the end.
   */
  shared<T extends Server>(key: string, start: () => Promise<T>): Promise<T>;
  /** Waits for an idle CPU (bounded) and returns the idle share measured. */
  idleGate(): Promise<number>;
}

/** A measured figure of one subject, over all repetitions. */
export interface Row {
  /** What was measured: `wmproxy`, `squid`, `socat -b 262144`, … */
  subject: string;
  /** Unit of the main figure (`req/s`, `MB/s`). */
  unit: string;
  /** The main figure over the repetitions; absent when the subject failed. */
  summary?: Summary;
  /** Whether more is better for the main figure. */
  higherIsBetter: boolean;
  /** Ratios (this / peer) of repetitions run side by side, to each peer row. */
  ratios: RatioSummary[];
  /** The target this row is judged by, if any. */
  target?: TargetResult;
  /** Secondary figures (p50, p99, RSS, …) by name, each over the repetitions. */
  extra: Record<string, Summary>;
  /** Short human text for the secondary figures. */
  details: string;
  /** Why the subject has no figure (it failed or was skipped). */
  error?: string;
}

/** The ratio of a subject to one peer. */
export interface RatioSummary {
  /** The peer row's subject. */
  peer: string;
  /** Median, min and max of the paired per-repetition ratios. */
  median: number;
  min: number;
  max: number;
}

/** A target and whether it was met. */
export interface TargetResult {
  /** E.g. `≥ 2.0× squid`. */
  text: string;
  /** True when the median ratio meets the target; `null` when there was nothing to judge. */
  met: boolean | null;
}

/** What a scenario returns. */
export interface ScenarioResult {
  /** One row per subject. */
  rows: Row[];
  /** Remarks (idle share, sizes, commands) printed under the table. */
  notes: string[];
  /** Set when the whole scenario could not run. */
  skipped?: string;
}

/** A benchmark scenario. */
export interface Scenario {
  /** Name used by `--only` and in the table (snake_case). */
  name: string;
  /** One line for `--help`. */
  description: string;
  /** Tools it needs; when one cannot be installed the scenario is skipped. */
  peers: readonly ToolName[];
  /** Tools for extra comparison rows; installed when possible, their rows skipped otherwise. */
  optionalPeers?: readonly ToolName[];
  /** Runs the scenario. Throwing marks the scenario as failed. */
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

/** A subject of an alternating measurement. */
export interface Subject<S> {
  /** Row name. */
  name: string;
  /** Measures once. */
  run(rep: number): Promise<S>;
}

/** Samples per subject, plus the idle share measured before each run. */
export interface AlternateResult<S> {
  /** Samples in repetition order, per subject name. */
  samples: Map<string, S[]>;
  /** The first error of a subject that failed (it is not run again). */
  errors: Map<string, string>;
  /** Idle share before each run, in %. */
  idle: number[];
}

/**
 * Runs every subject `ctx.reps` times, alternating the order each repetition
 * (A B, B A, …) so that drift on a noisy machine hits all subjects alike, with
 * the idle gate before each run. A subject that throws is not run again.
 */
export async function alternate<S>(
  ctx: ScenarioContext,
  label: string,
  subjects: readonly Subject<S>[],
): Promise<AlternateResult<S>> {
  const result: AlternateResult<S> = { samples: new Map(), errors: new Map(), idle: [] };
  for (const s of subjects) result.samples.set(s.name, []);
  for (let rep = 0; rep < ctx.reps; rep++) {
    const order = rep % 2 === 0 ? subjects : [...subjects].reverse();
    for (const subject of order) {
      if (ctx.signal.aborted) throw new Error("Cannot continue: interrupted");
      if (result.errors.has(subject.name)) continue;
      result.idle.push(await ctx.idleGate());
      try {
        const sample = await subject.run(rep);
        result.samples.get(subject.name)!.push(sample);
        ctx.log(`${label} rep ${rep + 1}/${ctx.reps} ${subject.name}: ${brief(sample)}`);
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        result.errors.set(subject.name, why);
        ctx.log(`${label} ${subject.name} failed: ${why}`);
      }
    }
  }
  return result;
}

function brief(sample: unknown): string {
  if (typeof sample === "number") return sample.toFixed(1);
  try {
    return JSON.stringify(sample, (_k, v) => typeof v === "number" ? Math.round(v * 100) / 100 : v);
  } catch {
    return String(sample);
  }
}

/** Options for {@linkcode makeRow}. */
export interface MakeRowOptions {
  /** Whether more is better. @default true */
  higherIsBetter?: boolean;
  /** Secondary figures, each one value per repetition. */
  extra?: Record<string, number[]>;
  /** Formats the secondary figures for the table. */
  details?: (extra: Record<string, Summary>) => string;
  /** Why there is no figure. */
  error?: string;
}

/** Builds a row from the main figure of each repetition. */
export function makeRow(
  subject: string,
  unit: string,
  values: readonly number[],
  options: MakeRowOptions = {},
): Row {
  const extra: Record<string, Summary> = {};
  for (const [k, v] of Object.entries(options.extra ?? {})) {
    if (v.length > 0) extra[k] = summarize(v);
  }
  const row: Row = {
    subject,
    unit,
    higherIsBetter: options.higherIsBetter ?? true,
    ratios: [],
    extra,
    details: "",
  };
  if (values.length > 0) row.summary = summarize(values);
  if (options.error !== undefined) row.error = options.error;
  else if (values.length === 0) row.error = "no measurement";
  if (options.details !== undefined && Object.keys(extra).length > 0) {
    row.details = options.details(extra);
  }
  return row;
}

/** Adds to `row` its paired ratio to `peer` (both rows measured in the same alternation). */
export function addRatio(row: Row, peer: Row): RatioSummary | undefined {
  if (row.summary === undefined || peer.summary === undefined) return undefined;
  const ratios = pairedRatios(row.summary.values, peer.summary.values);
  if (ratios.length === 0) return undefined;
  const s = summarize(ratios);
  const ratio = { peer: peer.subject, median: s.median, min: s.min, max: s.max };
  row.ratios.push(ratio);
  return ratio;
}

/** Judges `row` by a minimum ratio to `peer` (adding the ratio if it is not there yet). */
export function setRatioTarget(row: Row, peer: Row, minRatio: number): void {
  const ratio = row.ratios.find((r) => r.peer === peer.subject) ?? addRatio(row, peer);
  row.target = {
    text: `≥ ${minRatio.toFixed(1)}× ${peer.subject}`,
    met: ratio === undefined ? null : ratio.median >= minRatio,
  };
}

/** Summarises the idle share for the notes. */
export function idleNote(idle: readonly number[]): string {
  if (idle.length === 0) return "idle gate: no runs";
  const s = summarize(idle);
  const low = idle.filter((x) => x < 85).length;
  return `CPU idle before runs: median ${s.median.toFixed(0)} % (${s.min.toFixed(0)}–${
    s.max.toFixed(0)
  })${low > 0 ? `, ${low} run(s) started below 85 % after the gate's time limit` : ""}`;
}

/** A scenario result for a scenario that cannot run. */
export function skipped(why: string): ScenarioResult {
  return { rows: [], notes: [], skipped: why };
}
