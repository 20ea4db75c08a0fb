/**
 * The V8 flags wmproxy runs with. The compiled binary has them built in
 * (`deno compile --v8-flags`); `deno task start`, the unit `install-service`
 * writes for a `deno run` install, the tests and the benchmarks pass them.
 *
 * `--max-semi-space-size=4` caps V8's young generation at 4 MiB semi-spaces;
 * by default they grow to 16 MiB under allocation pressure. Measured on the
 * 2-core development VM: a tunnel server at a paced 1,000 req/s through an
 * HTTP mapping stays at 86–93 MiB instead of climbing from 94 to 140 MiB in
 * its first minute, and the reverse proxy under wrk holds 108 instead of 147
 * MiB, with req/s and Gbit/s within run-to-run noise (−3 % and −4 %).
 *
 * @module
 */

/** The flags, as V8 spells them. */
export const V8_FLAGS: readonly string[] = ["--max-semi-space-size=4"];

/** {@link V8_FLAGS} as one `deno run` / `deno compile` argument. */
export const V8_FLAGS_ARG = `--v8-flags=${V8_FLAGS.join(",")}`;
