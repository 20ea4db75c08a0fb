/**
 * mux: raw TLS vs the tunnel multiplexer with 1 and 16 streams, measured by
 * tests/bench/mux_bench.ts (`runMuxBench(options)`, written separately). This
 * file only calls it and turns its figures into table rows; until that file
 * exists the scenario reports itself as skipped.
 *
 * @module
 */
import {
  addRatio,
  makeRow,
  type Row,
  type Scenario,
  type ScenarioContext,
  type ScenarioResult,
  skipped,
} from "../_scenario.ts";

const MUX_BENCH = new URL("../mux_bench.ts", import.meta.url);

type RunMuxBench = (options: Record<string, unknown>) => Promise<unknown>;

const NAME_KEYS = ["name", "subject", "variant", "label", "case"] as const;
const VALUE_KEYS = [
  "runs",
  "values",
  "samples",
  "mbPerSec",
  "MBps",
  "mbps",
  "throughput",
  "median",
  "value",
] as const;

function numbers(v: unknown): number[] | undefined {
  if (typeof v === "number" && Number.isFinite(v)) return [v];
  if (Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === "number")) {
    return v as number[];
  }
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    for (const k of ["runs", "values", "samples"]) if (Array.isArray(o[k])) return numbers(o[k]);
    for (const k of ["mbps", "mbPerSec", "median"]) if (typeof o[k] === "number") return [o[k]];
  }
  return undefined;
}

/** Table names for the keys of mux_bench.ts's `MuxBenchResult`. */
const KNOWN_NAMES: Record<string, string> = {
  rawTls: "raw TLS",
  mux1: "mux 1 stream",
  mux16: "mux 16 streams",
};

/**
 * Turns whatever runMuxBench returned into `[name, values, unit]` triples:
 * an array (or `{ rows }`) of objects with a name field and a numeric field,
 * or an object mapping names to numbers, arrays or `{ median }`.
 */
export function muxFigures(result: unknown): { name: string; values: number[]; unit: string }[] {
  const out: { name: string; values: number[]; unit: string }[] = [];
  let list: unknown = result;
  if (list !== null && typeof list === "object" && !Array.isArray(list)) {
    const o = list as Record<string, unknown>;
    if (Array.isArray(o.rows)) list = o.rows;
    else if (Array.isArray(o.results)) list = o.results;
  }
  if (Array.isArray(list)) {
    for (const item of list) {
      if (item === null || typeof item !== "object") continue;
      const o = item as Record<string, unknown>;
      const name = NAME_KEYS.map((k) => o[k]).find((v) => typeof v === "string");
      let values: number[] | undefined;
      for (const k of VALUE_KEYS) if ((values = numbers(o[k])) !== undefined) break;
      if (typeof name === "string" && values !== undefined) {
        out.push({ name, values, unit: typeof o.unit === "string" ? o.unit : "MB/s" });
      }
    }
  } else if (list !== null && typeof list === "object") {
    for (const [name, v] of Object.entries(list as Record<string, unknown>)) {
      if (v === null || typeof v !== "object") continue; // scalars such as bytes, reps
      const values = numbers(v);
      if (values !== undefined) out.push({ name: KNOWN_NAMES[name] ?? name, values, unit: "MB/s" });
    }
  }
  return out;
}

/** The mux scenario (delegates to tests/bench/mux_bench.ts). */
export const mux: Scenario = {
  name: "mux",
  description: "raw TLS vs mux with 1 and 16 streams (tests/bench/mux_bench.ts)",
  peers: [],
  async run(ctx: ScenarioContext): Promise<ScenarioResult> {
    try {
      await Deno.stat(MUX_BENCH);
    } catch {
      return skipped("tests/bench/mux_bench.ts not present yet");
    }
    let mod: Record<string, unknown>;
    try {
      mod = await import(MUX_BENCH.href) as Record<string, unknown>;
    } catch (error) {
      const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
      return skipped(`tests/bench/mux_bench.ts does not load: ${why}`);
    }
    if (typeof mod.runMuxBench !== "function") {
      return skipped("tests/bench/mux_bench.ts does not export runMuxBench yet");
    }
    const result = await (mod.runMuxBench as RunMuxBench)({
      quick: ctx.quick,
      reps: ctx.reps,
      // The short run moves 64 MiB per run (mux_bench.ts's own quick size is 256 MiB).
      ...(ctx.quick ? { bytes: 64 * 1024 * 1024 } : {}),
      dir: ctx.dir,
      progress: (line: string) => ctx.log(`mux: ${line}`),
    });
    const figures = muxFigures(result);
    if (figures.length === 0) {
      return {
        rows: [],
        notes: [`runMuxBench returned no figure this table understands: ${JSON.stringify(result)}`],
      };
    }
    const rows: Row[] = figures.map((f) => makeRow(f.name, f.unit, f.values));
    const raw = rows.find((r) => /raw/i.test(r.subject));
    if (raw !== undefined) { for (const row of rows) if (row !== raw) addRatio(row, raw); }
    const bytes = (result as { bytes?: unknown }).bytes;
    const size = typeof bytes === "number" ? `${bytes / 1048576} MiB per run, ` : "";
    return {
      rows,
      notes: [
        `${size}runs as reported by runMuxBench (tests/bench/mux_bench.ts): raw TLS vs one ` +
        `TLS connection carrying a mux session, sender and receiver in two processes; ` +
        `ratios are paired per run`,
      ],
    };
  },
};
