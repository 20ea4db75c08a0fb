/**
 * The one logger. Every line carries an `event` name from {@link EVENTS} so that
 * operators and the e2e harness can wait on what happened, not on free text.
 *
 * @module
 */

/** Log severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** How lines are written: human text or one JSON object per line. */
export type LogFormat = "text" | "json";

/** Structured fields of one log line. Values must be JSON-serialisable. */
export type LogFields = Record<string, unknown>;

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Where finished lines go; stderr by default. */
export interface LogSink {
  write(line: string): void;
}

/** Options for {@link Logger}. */
export interface LoggerOptions {
  /** Lowest level written. @default "info" */
  level?: LogLevel;
  /** Output format. @default "text" */
  format?: LogFormat;
  /** Destination of finished lines. @default stderr */
  sink?: LogSink;
  /** Fields added to every line (for example `component`). */
  fields?: LogFields;
}

const encoder = new TextEncoder();

/** Writes whole lines to stderr synchronously so that lines never interleave. */
export const STDERR_SINK: LogSink = {
  write(line: string): void {
    const bytes = encoder.encode(line + "\n");
    let off = 0;
    while (off < bytes.length) off += Deno.stderr.writeSync(bytes.subarray(off));
  },
};

/** Collects lines in memory; for tests. */
export class MemorySink implements LogSink {
  readonly lines: string[] = [];
  write(line: string): void {
    this.lines.push(line);
  }
}

/**
 * A structured logger.
 *
 * @example
 * ```ts
 * const log = new Logger({ format: "json", sink: new MemorySink() });
 * log.info("listening", { component: "proxy", addr: "127.0.0.1:8090" });
 * ```
 */
export class Logger {
  readonly level: LogLevel;
  readonly format: LogFormat;
  readonly #sink: LogSink;
  readonly #fields: LogFields;

  constructor(options: LoggerOptions = {}) {
    this.level = options.level ?? "info";
    this.format = options.format ?? "text";
    this.#sink = options.sink ?? STDERR_SINK;
    this.#fields = options.fields ?? {};
  }

  /** A logger that adds `fields` to every line it writes. */
  child(fields: LogFields): Logger {
    return new Logger({
      level: this.level,
      format: this.format,
      sink: this.#sink,
      fields: { ...this.#fields, ...fields },
    });
  }

  /** Whether a line at `level` would be written. */
  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= LEVEL_RANK[this.level];
  }

  debug(event: string, fields?: LogFields): void {
    this.#emit("debug", event, fields);
  }
  info(event: string, fields?: LogFields): void {
    this.#emit("info", event, fields);
  }
  warn(event: string, fields?: LogFields): void {
    this.#emit("warn", event, fields);
  }
  error(event: string, fields?: LogFields): void {
    this.#emit("error", event, fields);
  }

  #emit(level: LogLevel, event: string, fields: LogFields | undefined): void {
    if (!this.enabled(level)) return;
    const all: LogFields = { ...this.#fields, ...fields };
    if (this.format === "json") {
      this.#sink.write(
        JSON.stringify({ time: new Date().toISOString(), level, event, ...all }, jsonReplacer),
      );
      return;
    }
    let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${event}`;
    for (const [key, value] of Object.entries(all)) {
      if (value === undefined) continue;
      line += ` ${key}=${formatText(value)}`;
    }
    this.#sink.write(line);
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return value.message;
  if (typeof value === "bigint") return value.toString();
  return value;
}

function formatText(value: unknown): string {
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === "string") {
    return /^[\w.:/\[\]@-]+$/.test(value) ? value : JSON.stringify(value);
  }
  if (typeof value === "object" && value !== null) return JSON.stringify(value, jsonReplacer);
  return String(value);
}

/** Turns an unknown thrown value into a message for logs and replies. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
