/**
 * wmproxy entry point: parses argv and runs the program. Nothing else lives here.
 *
 * @module
 */
import { run } from "./src/cli/mod.ts";

if (import.meta.main) {
  Deno.exit(await run(Deno.args));
}
