/**
 * Raises this process's soft limit on open files (RLIMIT_NOFILE) toward its
 * hard limit, through libc's `setrlimit` over FFI (Deno has no API for it).
 * Child processes spawned afterwards inherit the new limit, so one call before
 * starting the wmproxy server and client covers them too.
 *
 * @module
 */

/** RLIMIT_NOFILE on Linux (x86-64 and arm64). */
const RLIMIT_NOFILE = 7;

/** What {@linkcode raiseOpenFileLimit} found and did. */
export interface OpenFileLimit {
  /** The soft limit now in force (`undefined` when it could not be read). */
  soft?: number;
  /** The hard limit (`undefined` when it could not be read). */
  hard?: number;
  /** Why the limit could not be read or raised, if so. */
  problem?: string;
}

/**
 * Makes the soft open-file limit at least `wanted` if the hard limit allows
 * it (otherwise raises it to the hard limit and says so). Never lowers it.
 */
export function raiseOpenFileLimit(wanted: number): OpenFileLimit {
  if (Deno.build.os !== "linux") {
    return { problem: `cannot read RLIMIT_NOFILE on ${Deno.build.os} (Linux only)` };
  }
  let lib;
  try {
    lib = Deno.dlopen("libc.so.6", {
      getrlimit: { parameters: ["i32", "buffer"], result: "i32" },
      setrlimit: { parameters: ["i32", "buffer"], result: "i32" },
    });
  } catch (error) {
    const why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    return { problem: `cannot load libc.so.6 for setrlimit: ${why}` };
  }
  try {
    const limits = new BigUint64Array(2);
    const bytes = new Uint8Array(limits.buffer);
    if (lib.symbols.getrlimit(RLIMIT_NOFILE, bytes) !== 0) {
      return { problem: "getrlimit(RLIMIT_NOFILE) failed" };
    }
    const soft = limits[0]!;
    const hard = limits[1]!;
    const target = BigInt(wanted) < hard ? BigInt(wanted) : hard;
    if (soft < target) {
      limits[0] = target;
      if (lib.symbols.setrlimit(RLIMIT_NOFILE, bytes) !== 0) {
        return {
          soft: Number(soft),
          hard: Number(hard),
          problem: `setrlimit(RLIMIT_NOFILE, ${target}) failed`,
        };
      }
    }
    const now = soft < target ? target : soft;
    const result: OpenFileLimit = { soft: Number(now), hard: Number(hard) };
    if (now < BigInt(wanted)) {
      result.problem = `the hard limit on open files is ${hard}, below the ${wanted} needed ` +
        `(raise it with \`ulimit -Hn\` as root)`;
    }
    return result;
  } finally {
    lib.close();
  }
}
