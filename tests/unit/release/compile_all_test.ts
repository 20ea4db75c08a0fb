import assert from "node:assert/strict";
import { packageDir, selectTargets, sourceDateEpoch, TARGETS } from "../../release/compile_all.ts";

Deno.test("compile_all: an unknown target name fails with the known ones", () => {
  assert.throws(
    () => selectTargets(["linux-x64", "plan9-mips"]),
    /Cannot build plan9-mips: not a release target \(known: linux-x64, /,
  );
  assert.deepEqual(selectTargets([]).map((t) => t.name), TARGETS.map((t) => t.name));
  assert.deepEqual(selectTargets(["windows-x64", "linux-x64"]).map((t) => t.name), [
    "linux-x64",
    "windows-x64",
  ]);
});

Deno.test("compile_all: SOURCE_DATE_EPOCH is whole seconds", () => {
  const env = (v: string | undefined) => ({ get: () => v });
  assert.equal(sourceDateEpoch(env("1700000000")), 1700000000);
  assert.equal(sourceDateEpoch(env(undefined)), 946684800);
  assert.throws(() => sourceDateEpoch(env("yesterday")), /Cannot read SOURCE_DATE_EPOCH/);
});

for (const kind of ["tar.gz", "zip"] as const) {
  Deno.test(`compile_all: ${kind} archives are byte-for-byte reproducible`, async () => {
    const digests: string[] = [];
    for (const [i, order] of [["b", "a", "c"], ["c", "b", "a"]].entries()) {
      const dist = await Deno.makeTempDir();
      try {
        const dir = "wmproxy-9.9.9-test";
        await Deno.mkdir(`${dist}/${dir}/sub`, { recursive: true });
        // Files created in another order and at other times each round.
        for (const name of order) await Deno.writeTextFile(`${dist}/${dir}/${name}.txt`, name);
        await Deno.writeTextFile(`${dist}/${dir}/sub/x`, "x");
        await Deno.utime(`${dist}/${dir}/a.txt`, new Date(i * 1e9), new Date(i * 1e9));
        const { archive, sha256 } = await packageDir(dist, dir, kind, 1700000000);
        assert.equal(archive, `${dir}.${kind}`);
        assert.equal(
          await Deno.readTextFile(`${dist}/${archive}.sha256`),
          `${sha256}  ${archive}\n`,
        );
        digests.push(sha256);
      } finally {
        await Deno.remove(dist, { recursive: true });
      }
    }
    assert.equal(digests[0], digests[1]);
  });
}
