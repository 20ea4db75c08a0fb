/**
 * The tools section readers validate with: a {@link ConfigReader} that
 * collects issues with paths and lines, and small helpers.
 *
 * @module
 */
import { parseHostPort } from "../transport/conn.ts";
import { parseDuration, parseSize } from "./units.ts";
import type { ConfigIssue } from "./errors.ts";

/** A key path as the parser sees it: names and list indexes. */
export type KeyPath = readonly (string | number)[];

/** Finds the 1-based source line of a key path, when the parser knows it. */
export type Locate = (path: KeyPath) => number | undefined;

/** Renders a key path as `proxy.users[1].password`. */
export function formatPath(path: KeyPath): string {
  let out = "";
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : out === "" ? part : `.${part}`;
  }
  return out;
}

/**
 * Walks a document, collecting issues instead of throwing. Section readers
 * (one per config section) take one and report every problem with its path.
 */
export class ConfigReader {
  readonly issues: ConfigIssue[] = [];
  readonly #locate: Locate;

  constructor(locate: Locate) {
    this.#locate = locate;
  }

  fail(path: KeyPath, message: string): undefined {
    const line = this.#locate(path);
    this.issues.push({
      path: formatPath(path),
      message,
      ...(line === undefined ? {} : { line }),
    });
    return undefined;
  }

  /** A mapping with only `keys`; unknown keys are reported with the known ones. */
  table(
    value: unknown,
    path: KeyPath,
    keys: readonly string[],
  ): Record<string, unknown> | undefined {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      return this.fail(path, `expected a mapping of keys, got ${describe(value)}`);
    }
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!keys.includes(key)) {
        this.fail([...path, key], `unknown key (known keys: ${keys.join(", ")})`);
      }
    }
    return record;
  }

  string(value: unknown, path: KeyPath): string | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value === "") {
      return this.fail(path, `expected a non-empty string, got ${describe(value)}`);
    }
    return value;
  }

  bool(value: unknown, path: KeyPath): boolean | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "boolean") {
      return this.fail(path, `expected true or false, got ${describe(value)}`);
    }
    return value;
  }

  int(value: unknown, path: KeyPath, min: number, max: number): number | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      return this.fail(
        path,
        `expected a whole number from ${min} to ${max}, got ${describe(value)}`,
      );
    }
    return value;
  }

  oneOf<T extends string>(value: unknown, path: KeyPath, allowed: readonly T[]): T | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== "string" || !allowed.includes(value as T)) {
      return this.fail(path, `expected one of ${allowed.join(", ")}, got ${describe(value)}`);
    }
    return value as T;
  }

  duration(value: unknown, path: KeyPath, minMs = 1): number | undefined {
    if (value === undefined) return undefined;
    try {
      const ms = parseDuration(value);
      if (ms < minMs) {
        return this.fail(path, `expected at least ${minMs}ms, got ${describe(value)}`);
      }
      return ms;
    } catch (err) {
      return this.fail(path, (err as Error).message);
    }
  }

  size(value: unknown, path: KeyPath, min: number, max: number): number | undefined {
    if (value === undefined) return undefined;
    try {
      const n = parseSize(value);
      if (n < min || n > max) {
        return this.fail(
          path,
          `expected a size from ${min} to ${max} bytes, got ${describe(value)}`,
        );
      }
      return n;
    } catch (err) {
      return this.fail(path, (err as Error).message);
    }
  }

  address(value: unknown, path: KeyPath): string | undefined {
    const text = this.string(value, path);
    if (text === undefined) return undefined;
    try {
      parseHostPort(text);
      return text;
    } catch {
      return this.fail(
        path,
        `expected an address like "127.0.0.1:8090" or "[::1]:8090", got ${describe(value)}`,
      );
    }
  }

  list(value: unknown, path: KeyPath): unknown[] | undefined {
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) return this.fail(path, `expected a list, got ${describe(value)}`);
    return value;
  }
}

/** Names a value for messages: `"text"`, `a list`, `a mapping`, `42`. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}

/** Drops keys whose value is `undefined`, so optional fields stay absent. */
export function compact<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
