/**
 * The tunnel server's TLS identity: configured files, or a CA and server
 * certificate created once in the state directory and reused after.
 *
 * @module
 */
import { certificateFingerprint, generateCertificates } from "./certificates.ts";

/** File names inside the state directory. */
export const IDENTITY_FILES = {
  caCert: "ca.pem",
  caKey: "ca.key",
  cert: "server.pem",
  key: "server.key",
} as const;

/** What the server listens with, and what clients need to trust it. */
export interface ServerIdentity {
  /** Server certificate chain, PEM. */
  cert: string;
  /** Server private key, PEM. */
  key: string;
  /** The CA file clients should trust, when we made it (else `undefined`). */
  caFile: string | undefined;
  /** SHA-256 fingerprint of the CA (generated) or of the server certificate (configured). */
  fingerprint: string;
  /** True when this call generated the files. */
  created: boolean;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
}

/**
 * Writes a new CA and server certificate into `dir` (keys with mode 0600).
 * Existing files are replaced only when `overwrite` is true.
 */
export async function writeIdentity(
  dir: string,
  options: { names?: readonly string[]; overwrite?: boolean } = {},
): Promise<ServerIdentity> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  if (!options.overwrite) {
    for (const f of Object.values(IDENTITY_FILES)) {
      if ((await readIfExists(`${dir}/${f}`)) !== undefined) {
        throw new Error(
          `Cannot create certificates in "${dir}": ${f} already exists (remove it, or use --force)`,
        );
      }
    }
  }
  const gen = await generateCertificates(options.names ? { names: options.names } : {});
  await Deno.writeTextFile(`${dir}/${IDENTITY_FILES.caCert}`, gen.ca.cert);
  await Deno.writeTextFile(`${dir}/${IDENTITY_FILES.caKey}`, gen.ca.key, { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/${IDENTITY_FILES.cert}`, gen.server.cert);
  await Deno.writeTextFile(`${dir}/${IDENTITY_FILES.key}`, gen.server.key, { mode: 0o600 });
  return {
    cert: gen.server.cert,
    key: gen.server.key,
    caFile: `${dir}/${IDENTITY_FILES.caCert}`,
    fingerprint: gen.caFingerprint,
    created: true,
  };
}

/** Options for {@link loadServerIdentity}. */
export interface LoadServerIdentityOptions {
  /** Configured certificate file; with `keyFile`, used instead of generating. */
  certFile: string | undefined;
  keyFile: string | undefined;
  /** Where generated files live. */
  stateDir: string;
  /** Names for a generated server certificate. */
  names?: readonly string[];
}

/** Loads the configured identity, or the generated one, creating it on first use. */
export async function loadServerIdentity(
  options: LoadServerIdentityOptions,
): Promise<ServerIdentity> {
  if (options.certFile !== undefined && options.keyFile !== undefined) {
    const cert = await Deno.readTextFile(options.certFile).catch((err) => {
      throw new Error(
        `Cannot read server.tls.cert "${options.certFile}": ${(err as Error).message}`,
      );
    });
    const key = await Deno.readTextFile(options.keyFile).catch((err) => {
      throw new Error(`Cannot read server.tls.key "${options.keyFile}": ${(err as Error).message}`);
    });
    return {
      cert,
      key,
      caFile: undefined,
      fingerprint: await certificateFingerprint(cert),
      created: false,
    };
  }
  const dir = options.stateDir;
  const cert = await readIfExists(`${dir}/${IDENTITY_FILES.cert}`);
  const key = await readIfExists(`${dir}/${IDENTITY_FILES.key}`);
  const ca = await readIfExists(`${dir}/${IDENTITY_FILES.caCert}`);
  if (cert !== undefined && key !== undefined && ca !== undefined) {
    return {
      cert,
      key,
      caFile: `${dir}/${IDENTITY_FILES.caCert}`,
      fingerprint: await certificateFingerprint(ca),
      created: false,
    };
  }
  return await writeIdentity(dir, {
    ...(options.names ? { names: options.names } : {}),
    overwrite: true,
  });
}
