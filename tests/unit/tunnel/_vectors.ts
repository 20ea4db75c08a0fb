/** Loads the hex test vectors of tests/testdata/protocol (PROTOCOL.md §17). */

/** One vector file. */
export interface Vector {
  name: string;
  title: string;
  expect: Record<string, unknown>;
  bytes: Uint8Array;
  /** The hex lines as written, for comparing with the spec. */
  hexText: string;
}

const DIR = new URL("../../testdata/protocol/", import.meta.url);

/** Every vector, sorted by name. */
export async function loadVectors(): Promise<Vector[]> {
  const out: Vector[] = [];
  for await (const entry of Deno.readDir(DIR)) {
    if (!entry.isFile || !entry.name.endsWith(".hex")) continue;
    const text = await Deno.readTextFile(new URL(entry.name, DIR));
    const lines = text.split("\n");
    const title = lines[0]?.replace(/^# /, "") ?? "";
    const expectLine = lines.find((l) => l.startsWith("# expect: "));
    if (expectLine === undefined) throw new Error(`${entry.name}: no "# expect:" line`);
    const hexLines = lines.filter((l) => l.trim() !== "" && !l.startsWith("#"));
    const digits = hexLines.join(" ").trim().split(/\s+/);
    const bytes = new Uint8Array(digits.map((d) => {
      if (!/^[0-9a-f]{2}$/.test(d)) throw new Error(`${entry.name}: bad hex "${d}"`);
      return parseInt(d, 16);
    }));
    out.push({
      name: entry.name.replace(/\.hex$/, ""),
      title,
      expect: JSON.parse(expectLine.slice("# expect: ".length)),
      bytes,
      hexText: hexLines.join("\n"),
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
