/**
 * `deno task compile:all [NAME…]`: builds the single `wmproxy` binary for every
 * release target (or the named ones) into dist/, each as an archive with a
 * SHA-256 file beside it. The compiler runs with `--frozen`, so a build uses
 * exactly the tested lockfile. Archives are reproducible: entries sorted, owner
 * 0, every time stamp set to `$SOURCE_DATE_EPOCH` (the release workflow passes
 * the tagged commit's time), gzip without a name or time.
 *
 * `deno compile` needs the Deno runtime download for each target, so this runs
 * where that host is reachable (the release workflow); elsewhere it stops at
 * the first failure with the compiler's message.
 *
 * @module
 */
// deno-lint-ignore-file no-console
import { VERSION } from "../../src/version.ts";
import { V8_FLAGS_ARG } from "../../src/cli/v8_flags.ts";

/** Release targets: `deno compile --target` triple and archive kind. */
export const TARGETS = [
  { target: "x86_64-unknown-linux-gnu", name: "linux-x64", archive: "tar.gz" },
  { target: "aarch64-unknown-linux-gnu", name: "linux-arm64", archive: "tar.gz" },
  { target: "x86_64-apple-darwin", name: "macos-x64", archive: "tar.gz" },
  { target: "aarch64-apple-darwin", name: "macos-arm64", archive: "tar.gz" },
  { target: "x86_64-pc-windows-msvc", name: "windows-x64", archive: "zip" },
] as const;

/** One entry of {@link TARGETS}. */
export type Target = (typeof TARGETS)[number];

/** The files shipped beside the binary in every archive. */
export const SHIPPED_FILES = ["README.md", "LICENSE", "config.example.yaml"] as const;

/**
 * The targets named on the command line, in {@link TARGETS} order; all of
 * them when none is named. Throws on a name that is not a target.
 */
export function selectTargets(names: readonly string[]): Target[] {
  const known = new Set<string>(TARGETS.map((t) => t.name));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0) {
    throw new Error(
      `Cannot build ${unknown.join(", ")}: not a release target (known: ${[...known].join(", ")})`,
    );
  }
  return names.length === 0 ? [...TARGETS] : TARGETS.filter((t) => names.includes(t.name));
}

/** The `deno compile` arguments for one target, writing `out`. */
export function compileArgs(t: Target, out: string): string[] {
  return ["compile", "-A", "--frozen", V8_FLAGS_ARG, "--target", t.target, "-o", out, "main.ts"];
}

async function run(
  cmd: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.env ? { env: options.env } : {}),
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`Cannot run ${cmd} ${args.join(" ")}: exit code ${out.code}`);
}

/** Hex SHA-256 of a file's bytes. */
export async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every path below `dir` (files and folders), relative to `base`, sorted. */
async function listTree(base: string, dir: string): Promise<string[]> {
  const out: string[] = [dir];
  for await (const e of Deno.readDir(`${base}/${dir}`)) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await listTree(base, rel));
    else out.push(rel);
  }
  return out.sort();
}

/** The time stamp archives carry: `$SOURCE_DATE_EPOCH`, else 2000-01-01. */
export function sourceDateEpoch(env: { get(name: string): string | undefined } = Deno.env): number {
  const text = env.get("SOURCE_DATE_EPOCH");
  if (text === undefined || text === "") return 946684800;
  if (!/^\d{1,12}$/.test(text)) {
    throw new Error(`Cannot read SOURCE_DATE_EPOCH: "${text}" is not whole seconds since 1970`);
  }
  return Number(text);
}

/**
 * Archives `distDir/dir` as `distDir/dir.kind` byte for byte reproducibly,
 * writes `dir.kind.sha256` beside it (`sha256sum -c` format) and returns the
 * archive's name and digest.
 */
export async function packageDir(
  distDir: string,
  dir: string,
  kind: "tar.gz" | "zip",
  epoch: number,
): Promise<{ archive: string; sha256: string }> {
  const entries = await listTree(distDir, dir);
  const when = new Date(epoch * 1000);
  for (const e of entries) await Deno.utime(`${distDir}/${e}`, when, when);
  const archive = `${dir}.${kind}`;
  await Deno.remove(`${distDir}/${archive}`).catch(() => {});
  const env = { TZ: "UTC", LC_ALL: "C" };
  if (kind === "zip") {
    await run("zip", ["-X", "-q", "-D", archive, ...entries.filter((e) => e !== dir)], {
      cwd: distDir,
      env,
    });
  } else {
    const tarFile = `${dir}.tar`;
    await run("tar", [
      "--format=gnu",
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      `--mtime=@${epoch}`,
      "--no-recursion",
      "-cf",
      tarFile,
      ...entries,
    ], { cwd: distDir, env });
    await run("gzip", ["-n", "-9", "-f", tarFile], { cwd: distDir, env });
    await Deno.rename(`${distDir}/${tarFile}.gz`, `${distDir}/${archive}`);
  }
  const sha256 = await sha256File(`${distDir}/${archive}`);
  await Deno.writeTextFile(`${distDir}/${archive}.sha256`, `${sha256}  ${archive}\n`);
  return { archive, sha256 };
}

if (import.meta.main) {
  const root = new URL("../../", import.meta.url).pathname;
  const dist = `${root}dist`;
  const epoch = sourceDateEpoch();
  await Deno.mkdir(dist, { recursive: true });
  for (const t of selectTargets(Deno.args)) {
    const dir = `wmproxy-${VERSION}-${t.name}`;
    const exe = t.name.startsWith("windows") ? "wmproxy.exe" : "wmproxy";
    await Deno.remove(`${dist}/${dir}`, { recursive: true }).catch(() => {});
    await Deno.mkdir(`${dist}/${dir}`, { recursive: true });
    console.log(`compile: ${t.target}`);
    await run(Deno.execPath(), compileArgs(t, `dist/${dir}/${exe}`), { cwd: root });
    for (const f of SHIPPED_FILES) await Deno.copyFile(`${root}${f}`, `${dist}/${dir}/${f}`);
    const { archive, sha256 } = await packageDir(dist, dir, t.archive, epoch);
    console.log(`built: dist/${archive} sha256 ${sha256}`);
  }
}
