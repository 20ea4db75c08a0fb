/**
 * The config pipeline: text → parse (YAML or TOML) → validate → defaults →
 * frozen {@link Config}. Every problem is reported at once in a {@link ConfigError}.
 *
 * @module
 */
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import { parse as parseToml, TomlError } from "smol-toml";
import { completeConfig } from "./defaults.ts";
import { ConfigError, type ConfigIssue } from "./errors.ts";
import { checkCompleteConfig, type KeyPath, type Locate, validateConfig } from "./validate.ts";
import type { Config } from "./types.ts";
import type { ConfigInput } from "./input.ts";

/** Source formats the loader understands. */
export type ConfigFormat = "yaml" | "toml";

/** Picks the format from a file name: `.toml` is TOML, anything else YAML. */
export function formatOf(path: string): ConfigFormat {
  return path.toLowerCase().endsWith(".toml") ? "toml" : "yaml";
}

interface Parsed {
  doc: unknown;
  locate: Locate;
  issues: ConfigIssue[];
}

function parseYaml(text: string): Parsed {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  const issues: ConfigIssue[] = document.errors.map((e) => ({
    path: "",
    message: `Cannot parse YAML: ${e.message.split("\n")[0]}`,
    ...(e.linePos?.[0] ? { line: e.linePos[0].line } : {}),
  }));
  // The line of a key (not of its value), so `server:` points at "server".
  const locate: Locate = (path: KeyPath) => {
    for (let n = path.length; n > 0; n--) {
      const parent = n === 1 ? document.contents : document.getIn(path.slice(0, n - 1), true);
      const last = path[n - 1];
      let node: unknown;
      if (isMap(parent)) {
        node = parent.items.find((pair) => isScalar(pair.key) && pair.key.value === last)?.key;
      } else if (isSeq(parent) && typeof last === "number") {
        node = parent.items[last];
      }
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  return { doc: issues.length > 0 ? undefined : document.toJS(), locate, issues };
}

function parseTomlText(text: string): Parsed {
  try {
    return { doc: parseToml(text), locate: () => undefined, issues: [] };
  } catch (err) {
    const line = err instanceof TomlError ? err.line : undefined;
    const message = err instanceof Error ? err.message.split("\n")[0] : String(err);
    return {
      doc: undefined,
      locate: () => undefined,
      issues: [{ path: "", message: `Cannot parse TOML: ${message}`, ...(line ? { line } : {}) }],
    };
  }
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Orders issues as they appear in the file; those without a line go last. */
function byLine(issues: ConfigIssue[]): ConfigIssue[] {
  return [...issues].sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
}

/** Options for {@link parseConfig}. */
export interface ParseConfigOptions {
  /** Source format. @default "yaml" */
  format?: ConfigFormat;
  /** Name used in messages. @default "<inline>" */
  source?: string;
  /** Applied to the validated input before defaults (quick CLI flags). */
  override?: (input: ConfigInput) => ConfigInput;
}

/**
 * Runs the whole pipeline on config text.
 * Throws {@link ConfigError} listing every problem.
 */
export function parseConfig(text: string, options: ParseConfigOptions = {}): Config {
  const source = options.source ?? "<inline>";
  const parsed = (options.format ?? "yaml") === "toml" ? parseTomlText(text) : parseYaml(text);
  if (parsed.issues.length > 0) throw new ConfigError(source, parsed.issues);
  const { input, issues } = validateConfig(parsed.doc, parsed.locate);
  if (issues.length > 0) throw new ConfigError(source, byLine(issues));
  const config = completeConfig(options.override ? options.override(input) : input);
  const late = checkCompleteConfig(config, parsed.locate);
  if (late.length > 0) throw new ConfigError(source, late);
  return deepFreeze(config);
}

/** Reads and runs the pipeline on a file; the format follows the extension. */
export async function loadConfig(
  path: string,
  options: Omit<ParseConfigOptions, "format" | "source"> = {},
): Promise<Config> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound ? "no such file" : (err as Error).message;
    throw new ConfigError(path, [{ path: "", message: `Cannot read file: ${why}` }]);
  }
  return parseConfig(text, { ...options, format: formatOf(path), source: path });
}
