/**
 * The one polling wait of the test suites: for a condition that no event
 * announces (a counter in the process under test). Every wait has a deadline
 * and fails saying what it waited for, so a regression fails the test instead
 * of hanging the run.
 *
 * @module
 */

/** Polls `cond` every 5 ms; throws `Cannot wait for <what>: …` after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean,
  what: string,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) {
      throw new Error(`Cannot wait for ${what}: still not true after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
