/**
 * `deno task compile:all`: builds the single `wmproxy` binary for every release
 * target into dist/, each as an archive with a SHA-256 file beside it. It needs
 * the Deno runtime download for each target, so it runs where that host is
 * reachable (the release workflow); elsewhere it stops at the first failure
 * with the compiler's message.
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

async function run(cmd: string, args: string[], cwd?: string): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    ...(cwd ? { cwd } : {}),
    stdout: "inherit",
    stderr: "inherit",
  })
    .output();
  if (!out.success) throw new Error(`Cannot run ${cmd} ${args.join(" ")}: exit code ${out.code}`);
}

async function sha256File(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

if (import.meta.main) {
  const root = new URL("../../", import.meta.url).pathname;
  const only = Deno.args[0];
  await Deno.mkdir(`${root}dist`, { recursive: true });
  for (const t of TARGETS) {
    if (only && only !== t.name) continue;
    const dir = `wmproxy-${VERSION}-${t.name}`;
    const exe = t.name.startsWith("windows") ? "wmproxy.exe" : "wmproxy";
    await Deno.mkdir(`${root}dist/${dir}`, { recursive: true });
    console.log(`compile: ${t.target}`);
    await run(Deno.execPath(), [
      "compile",
      "-A",
      V8_FLAGS_ARG,
      "--target",
      t.target,
      "--include",
      "config.example.yaml",
      "-o",
      `dist/${dir}/${exe}`,
      "main.ts",
    ], root);
    await Deno.copyFile(`${root}README.md`, `${root}dist/${dir}/README.md`);
    await Deno.copyFile(`${root}LICENSE`, `${root}dist/${dir}/LICENSE`);
    await Deno.copyFile(`${root}config.example.yaml`, `${root}dist/${dir}/config.example.yaml`);
    const archive = `${dir}.${t.archive}`;
    if (t.archive === "zip") await run("zip", ["-qr", archive, dir], `${root}dist`);
    else await run("tar", ["-czf", archive, dir], `${root}dist`);
    const sum = await sha256File(`${root}dist/${archive}`);
    await Deno.writeTextFile(`${root}dist/${archive}.sha256`, `${sum}  ${archive}\n`);
    console.log(`built: dist/${archive} sha256 ${sum}`);
  }
}
