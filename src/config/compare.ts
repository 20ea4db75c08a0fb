/**
 * Comparing config values for reload: secrets count by their real value (a
 * changed password is a change) without ever being printed.
 *
 * @module
 */
import { Secret } from "./secret.ts";

/** JSON text of `value` where each Secret stands for its value; for comparison only. */
export function configKey(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
    const raw = this[key];
    return raw instanceof Secret ? `secret:${raw.reveal()}` : v;
  }) ?? "undefined";
}

/** Whether two config values are the same, secrets included. */
export function sameConfig(a: unknown, b: unknown): boolean {
  return configKey(a) === configKey(b);
}
