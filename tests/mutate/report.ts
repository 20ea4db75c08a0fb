/**
 * Pure half of `deno task mutate`: reads a Stryker JSON report
 * (mutation-testing-report-schema) into per-module counts and renders the
 * score table. No `Deno.*` here, so `tests/unit/mutate/report_test.ts` runs it
 * on hand-made reports.
 *
 * @module
 */

/** Counts of one module's mutants by Stryker status. */
export interface ModuleScore {
  module: string;
  mutants: number;
  killed: number;
  survived: number;
  timeout: number;
  noCoverage: number;
  /** Ignored, CompileError, RuntimeError and Pending: left out of the score. */
  invalid: number;
  /** Detected / valid in percent (`NaN` when no mutant is valid). */
  score: number;
  /** Wall-clock seconds the Stryker run took, when measured. */
  seconds?: number;
}

/** One surviving (or uncovered) mutant, for the listing under the table. */
export interface Undetected {
  file: string;
  line: number;
  column: number;
  mutator: string;
  replacement: string;
  status: string;
}

interface ReportMutant {
  mutatorName?: unknown;
  status?: unknown;
  replacement?: unknown;
  location?: { start?: { line?: unknown; column?: unknown } };
}

function fileEntries(report: unknown): [string, ReportMutant[]][] {
  if (typeof report !== "object" || report === null) {
    throw new TypeError("Cannot read the Stryker report: it is not a JSON object");
  }
  const files = (report as { files?: unknown }).files;
  if (typeof files !== "object" || files === null) {
    throw new TypeError("Cannot read the Stryker report: it has no `files` object");
  }
  const out: [string, ReportMutant[]][] = [];
  for (const [name, entry] of Object.entries(files as Record<string, unknown>)) {
    const mutants = (entry as { mutants?: unknown } | null)?.mutants;
    if (!Array.isArray(mutants)) {
      throw new TypeError(`Cannot read the Stryker report: file ${name} has no \`mutants\` array`);
    }
    out.push([name, mutants as ReportMutant[]]);
  }
  return out;
}

/**
 * Counts the mutants of every file in `report` under the name `module`. The
 * score follows Stryker's definition: (killed + timeout) / (killed + timeout +
 * survived + no coverage).
 */
export function summarize(module: string, report: unknown): ModuleScore {
  const s: ModuleScore = {
    module,
    mutants: 0,
    killed: 0,
    survived: 0,
    timeout: 0,
    noCoverage: 0,
    invalid: 0,
    score: NaN,
  };
  for (const [, mutants] of fileEntries(report)) {
    for (const m of mutants) {
      s.mutants++;
      switch (m.status) {
        case "Killed":
          s.killed++;
          break;
        case "Survived":
          s.survived++;
          break;
        case "Timeout":
          s.timeout++;
          break;
        case "NoCoverage":
          s.noCoverage++;
          break;
        default:
          s.invalid++;
      }
    }
  }
  const detected = s.killed + s.timeout;
  const valid = detected + s.survived + s.noCoverage;
  s.score = valid === 0 ? NaN : (100 * detected) / valid;
  return s;
}

/** The survived and no-coverage mutants of `report`, sorted by file and line. */
export function undetected(report: unknown): Undetected[] {
  const out: Undetected[] = [];
  for (const [file, mutants] of fileEntries(report)) {
    for (const m of mutants) {
      if (m.status !== "Survived" && m.status !== "NoCoverage") continue;
      out.push({
        file,
        line: Number(m.location?.start?.line ?? 0),
        column: Number(m.location?.start?.column ?? 0),
        mutator: String(m.mutatorName ?? "?"),
        replacement: String(m.replacement ?? ""),
        status: String(m.status),
      });
    }
  }
  out.sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
  return out;
}

/** Whether `s` reaches `threshold` percent (a module without valid mutants fails). */
export function passes(s: ModuleScore, threshold: number): boolean {
  return Number.isFinite(s.score) && s.score >= threshold;
}

function pct(score: number): string {
  return Number.isFinite(score) ? `${score.toFixed(1)} %` : "n/a";
}

/** A Markdown table of `rows`, one line per module. */
export function formatTable(rows: readonly ModuleScore[]): string {
  const head = ["module", "mutants", "killed", "survived", "timeout", "no cov", "score", "time"];
  const body = rows.map((r) => [
    r.module,
    String(r.mutants),
    String(r.killed),
    String(r.survived),
    String(r.timeout),
    String(r.noCoverage),
    pct(r.score),
    r.seconds === undefined ? "" : `${Math.round(r.seconds)} s`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    `| ${
      cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")
    } |`;
  const rule = `|${
    widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : "-".repeat(w + 1) + ":")).join("|")
  }|`;
  return [line(head), rule, ...body.map(line)].join("\n");
}
