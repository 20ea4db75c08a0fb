/**
 * Mux throughput against raw TLS on 127.0.0.1, in one run:
 *
 *   deno run -A tests/bench/mux_bench.ts [--quick] [--json] [--reps N] [--mib N]
 *
 * The receiver runs in a child process (this file with `--receiver`) so the
 * sender and the receiver each get their own event loop and the figures match
 * how the tunnel runs (client and server in two processes). Raw TLS: one TLS
 * connection per run, 64 KiB writes, a 64 KiB read loop. Mux: one TLS
 * connection carrying one session for every mux run; 1 stream, then 16
 * streams sharing the same byte count. Each run ends when the receiver has
 * read everything and answered one byte. Figures are medians of the reps.
 *
 * `runMuxBench(options)` returns the same figures for tests/bench/main.ts.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Session, type VirtualStream } from "../../src/mux/mod.ts";
import { writeAll } from "../../src/transport/conn.ts";
import { dialTls, listenTls, tlsHandshake } from "../../src/transport/tls.ts";
import { testCerts } from "../unit/transport/_test_certs.ts";

/** Options for {@link runMuxBench}. */
export interface MuxBenchOptions {
  /** Fewer, smaller runs (256 MiB, 3 reps). @default false */
  quick?: boolean;
  /** Repetitions per variant. @default 5 (3 with quick) */
  reps?: number;
  /** Bytes per run. @default 1 GiB (256 MiB with quick) */
  bytes?: number;
  /** Progress lines go here. @default none */
  progress?: (line: string) => void;
}

/** One variant's figures. */
export interface MuxBenchFigure {
  /** Median MB/s (10^6 bytes per second). */
  mbps: number;
  /** Every run's MB/s. */
  runs: number[];
}

/** What {@link runMuxBench} measures. */
export interface MuxBenchResult {
  bytes: number;
  reps: number;
  rawTls: MuxBenchFigure;
  mux1: MuxBenchFigure & { ratio: number };
  mux16: MuxBenchFigure & { ratio: number };
}

const CHUNK = 65536;
const MODE_RAW = 0x52; // "R"
const MODE_MUX = 0x4d; // "M"

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function sendOn(
  s: { write(p: Uint8Array): Promise<number> },
  bytes: number,
  buf: Uint8Array,
) {
  for (let off = 0; off < bytes; off += buf.length) {
    await writeAll(s, off + buf.length <= bytes ? buf : buf.subarray(0, bytes - off));
  }
}

async function readAck(s: { read(p: Uint8Array): Promise<number | null> }): Promise<void> {
  const b = new Uint8Array(1);
  if ((await s.read(b)) !== 1) {
    throw new Error("Cannot finish run: the receiver did not acknowledge");
  }
}

/** Runs the benchmark against a receiver child process and returns the figures. */
export async function runMuxBench(options: MuxBenchOptions = {}): Promise<MuxBenchResult> {
  const quick = options.quick ?? false;
  const reps = options.reps ?? (quick ? 3 : 5);
  const bytes = options.bytes ?? (quick ? 256 : 1024) * 1024 * 1024;
  const progress = options.progress ?? (() => {});
  const certs = await testCerts();
  const dir = await Deno.makeTempDir({ prefix: "wmproxy-bench-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, certs.cert);
  await Deno.writeTextFile(`${dir}/key.pem`, certs.key);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, "--receiver", dir],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stdout = child.stdout.getReader();
  try {
    let line = "";
    while (!line.includes("\n")) {
      const r = await stdout.read();
      if (r.done) throw new Error("Cannot start receiver: it exited before listening");
      line += new TextDecoder().decode(r.value);
    }
    const port = JSON.parse(line.split("\n")[0]!).port as number;
    const addr = { hostname: "127.0.0.1", port };
    const buf = new Uint8Array(CHUNK).map((_, i) => i & 0xff);

    const muxConn = await dialTls(addr, { caCerts: [certs.caCert] });
    await writeAll(muxConn, new Uint8Array([MODE_MUX]));
    const session = new Session(muxConn, { role: "client", heartbeatIntervalMs: 0 });
    const raw: number[] = [];
    const mux1: number[] = [];
    const mux16: number[] = [];
    try {
      const muxRun = async (streams: number): Promise<number> => {
        const t0 = performance.now();
        const per = Math.floor(bytes / streams);
        await Promise.all(Array.from({ length: streams }, async () => {
          const s: VirtualStream = await session.open({ type: "open", kind: "proxy" });
          await sendOn(s, per, buf);
          await s.closeWrite();
          await readAck(s);
          s.close();
        }));
        return (per * streams) / 1e6 / ((performance.now() - t0) / 1000);
      };
      const rawRun = async (): Promise<number> => {
        const conn = await dialTls(addr, { caCerts: [certs.caCert] });
        try {
          await writeAll(conn, new Uint8Array([MODE_RAW]));
          const t0 = performance.now();
          await sendOn(conn, bytes, buf);
          await conn.closeWrite();
          await readAck(conn);
          return bytes / 1e6 / ((performance.now() - t0) / 1000);
        } finally {
          conn.close();
        }
      };
      await muxRun(1); // warm up both code paths with a short run each
      for (let i = 0; i < reps; i++) {
        raw.push(await rawRun());
        mux1.push(await muxRun(1));
        mux16.push(await muxRun(16));
        progress(
          `rep ${i + 1}/${reps}: raw TLS ${raw.at(-1)!.toFixed(0)} MB/s, mux 1 stream ${
            mux1.at(-1)!.toFixed(0)
          } MB/s, mux 16 streams ${mux16.at(-1)!.toFixed(0)} MB/s`,
        );
      }
    } finally {
      await session.close();
    }
    const rawMbps = median(raw);
    return {
      bytes,
      reps,
      rawTls: { mbps: rawMbps, runs: raw },
      mux1: { mbps: median(mux1), runs: mux1, ratio: median(mux1) / rawMbps },
      mux16: { mbps: median(mux16), runs: mux16, ratio: median(mux16) / rawMbps },
    };
  } finally {
    stdout.releaseLock();
    await child.stdin.close();
    await child.stdout.cancel().catch(() => {});
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

/** The receiver process: reads everything, answers one byte per run. */
async function receiver(dir: string): Promise<void> {
  const listener = listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: await Deno.readTextFile(`${dir}/cert.pem`),
    key: await Deno.readTextFile(`${dir}/key.pem`),
  });
  Deno.stdout.writeSync(
    new TextEncoder().encode(JSON.stringify({ port: listener.addr.port }) + "\n"),
  );
  // Exit when the parent closes our stdin.
  (async () => {
    const b = new Uint8Array(16);
    while ((await Deno.stdin.read(b)) !== null) { /* ignore */ }
    Deno.exit(0);
  })();
  const drainAndAck = async (s: {
    read(p: Uint8Array): Promise<number | null>;
    write(p: Uint8Array): Promise<number>;
  }, buf: Uint8Array) => {
    while ((await s.read(buf)) !== null) { /* count nothing: the sender times */ }
    await s.write(new Uint8Array([1]));
  };
  for await (const conn of listener) {
    (async () => {
      try {
        await tlsHandshake(conn);
        const mode = new Uint8Array(1);
        if ((await conn.read(mode)) !== 1) return conn.close();
        if (mode[0] === MODE_RAW) {
          await drainAndAck(conn, new Uint8Array(CHUNK));
          conn.close();
          return;
        }
        const session = new Session(conn, { role: "server", heartbeatIntervalMs: 0 });
        for await (const s of session) {
          (async () => {
            await drainAndAck(s, new Uint8Array(256 * 1024));
            await s.closeWrite();
          })().catch(() => {});
        }
      } catch {
        conn.close();
      }
    })();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      quick: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      receiver: { type: "string" },
      reps: { type: "string" },
      mib: { type: "string" },
    },
  });
  if (values.receiver !== undefined) {
    await receiver(values.receiver);
  } else {
    const out = (s: string) => Deno.stdout.writeSync(new TextEncoder().encode(s + "\n"));
    const result = await runMuxBench({
      quick: values.quick,
      ...(values.reps ? { reps: Number(values.reps) } : {}),
      ...(values.mib ? { bytes: Number(values.mib) * 1024 * 1024 } : {}),
      ...(values.json ? {} : { progress: out }),
    });
    if (values.json) {
      out(JSON.stringify(result));
    } else {
      const pct = (r: number) => `${(r * 100).toFixed(0)} %`;
      out(`mux bench: ${result.bytes >> 20} MiB per run, median of ${result.reps}`);
      out(`  raw TLS          ${result.rawTls.mbps.toFixed(0)} MB/s`);
      out(
        `  mux, 1 stream    ${result.mux1.mbps.toFixed(0)} MB/s  (${
          pct(result.mux1.ratio)
        } of raw TLS, target 60 %)`,
      );
      out(
        `  mux, 16 streams  ${result.mux16.mbps.toFixed(0)} MB/s  (${
          pct(result.mux16.ratio)
        } of raw TLS, target 60 %)`,
      );
    }
  }
}
