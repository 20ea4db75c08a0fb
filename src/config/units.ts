/**
 * Small value languages used in config files: durations and byte sizes.
 *
 * @module
 */

const DURATION_REGEXP = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;
const DURATION_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration (`"500ms"`, `"10s"`, `"5m"`, `"1h"`, or a number of seconds)
 * into milliseconds. Throws `SyntaxError` with the expected form.
 */
export function parseDuration(value: unknown): number {
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) {
    return Math.round(value * 1000);
  }
  if (typeof value === "string") {
    const m = DURATION_REGEXP.exec(value.trim());
    if (m) return Math.round(Number(m[1]) * DURATION_UNIT_MS[m[2]!]!);
  }
  throw new SyntaxError(
    `expected a duration like "500ms", "10s", "5m" or a number of seconds, got ${
      JSON.stringify(value)
    }`,
  );
}

const SIZE_REGEXP = /^(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB|k|K|M|G)?$/;
const SIZE_UNIT: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
  k: 1024,
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
};

/** Parses a byte size (`"64KiB"`, `"1MiB"`, or a number of bytes). */
export function parseSize(value: unknown): number {
  if (typeof value === "number" && Number.isInteger(value) && value >= 0) return value;
  if (typeof value === "string") {
    const m = SIZE_REGEXP.exec(value.trim());
    if (m) return Number(m[1]) * SIZE_UNIT[m[2] ?? "B"]!;
  }
  throw new SyntaxError(
    `expected a size like "64KiB", "1MiB" or a number of bytes, got ${JSON.stringify(value)}`,
  );
}
