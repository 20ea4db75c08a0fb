/**
 * The command line: argument parsing, help texts and the program's run loop.
 *
 * @module
 */
export { run } from "./run.ts";
export type { RunOptions } from "./run.ts";
export { parseCli, UsageError } from "./args.ts";
export type { CliOptions, Command, Mode } from "./args.ts";
