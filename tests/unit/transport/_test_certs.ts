/**
 * Test certificates made with the `openssl` CLI: a CA and an ECDSA P-256 leaf
 * signed by it with SAN IP:127.0.0.1, DNS:localhost (rustls rejects a
 * self-signed CA used as the leaf). Made once per process.
 */

/** PEM strings for a TLS test server and its clients. */
export interface TestCerts {
  /** The CA certificate clients trust. */
  caCert: string;
  /** The leaf certificate (server). */
  cert: string;
  /** The leaf's private key (PKCS#8). */
  key: string;
}

let cached: Promise<TestCerts> | null = null;

async function openssl(cwd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

async function generate(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "wmproxy-certs-" });
  try {
    const ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
    await openssl(dir, ["genpkey", ...ec, "-out", "ca.key"]);
    await openssl(dir, [
      "req",
      "-x509",
      "-new",
      "-key",
      "ca.key",
      "-sha256",
      "-days",
      "2",
      "-subj",
      "/CN=wmproxy test CA",
      "-out",
      "ca.pem",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    await openssl(dir, ["genpkey", ...ec, "-out", "leaf.key"]);
    await openssl(dir, [
      "req",
      "-new",
      "-key",
      "leaf.key",
      "-subj",
      "/CN=localhost",
      "-out",
      "leaf.csr",
    ]);
    await Deno.writeTextFile(
      `${dir}/leaf.ext`,
      "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
        "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      "leaf.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
      "-sha256",
      "-extfile",
      "leaf.ext",
      "-out",
      "leaf.pem",
    ]);
    return {
      caCert: await Deno.readTextFile(`${dir}/ca.pem`),
      cert: await Deno.readTextFile(`${dir}/leaf.pem`),
      key: await Deno.readTextFile(`${dir}/leaf.key`),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The process-wide test certificates (generated on first call). */
export function testCerts(): Promise<TestCerts> {
  cached ??= generate();
  return cached;
}
