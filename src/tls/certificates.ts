/**
 * Certificates for the tunnel server: a private CA and a server certificate
 * signed by it (ECDSA P-256). rustls refuses a self-signed CA used directly as
 * the server's own certificate, so there are always two.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";

/**
 * The certificate generator, loaded on first use: it costs ~14 MiB of RSS,
 * which a process that never generates a certificate should not pay.
 */
let generator: Promise<typeof import("@peculiar/x509")> | undefined;
function x509Library(): Promise<typeof import("@peculiar/x509")> {
  generator ??= (async () => {
    await import("reflect-metadata");
    const x509 = await import("@peculiar/x509");
    x509.cryptoProvider.set(crypto);
    return x509;
  })();
  return generator;
}

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const DAY_MS = 86_400_000;

/** PEM text of a certificate and, where we hold it, its private key. */
export interface CertificatePair {
  /** Certificate, PEM. */
  cert: string;
  /** PKCS#8 private key, PEM. */
  key: string;
}

/** A CA and a server certificate signed by it. */
export interface GeneratedCertificates {
  ca: CertificatePair;
  server: CertificatePair;
  /** SHA-256 fingerprint of the CA certificate (colon-separated upper-case hex). */
  caFingerprint: string;
  /** SHA-256 fingerprint of the server certificate. */
  serverFingerprint: string;
}

/** Options for {@link generateCertificates}. */
export interface GenerateCertificatesOptions {
  /** DNS names and IP addresses the server certificate is valid for. @default ["localhost", "127.0.0.1", "::1"] */
  names?: readonly string[];
  /** Common name of the CA. @default "wmproxy tunnel CA" */
  caName?: string;
  /** Validity of the CA in days. @default 3650 */
  caDays?: number;
  /** Validity of the server certificate in days. @default 825 */
  serverDays?: number;
}

function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // positive
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function isIp(name: string): boolean {
  return /^\d+\.\d+\.\d+\.\d+$/.test(name) || name.includes(":");
}

async function keyPem(key: CryptoKey): Promise<string> {
  const x509 = await x509Library();
  return x509.PemConverter.encode(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/** SHA-256 fingerprint of a PEM certificate, as `AB:CD:…`. */
export function certificateFingerprint(pem: string): Promise<string> {
  return Promise.resolve(new X509Certificate(pem).fingerprint256);
}

/** Creates a CA and a server certificate signed by it. */
export async function generateCertificates(
  options: GenerateCertificatesOptions = {},
): Promise<GeneratedCertificates> {
  const x509 = await x509Library();
  const names = options.names ?? ["localhost", "127.0.0.1", "::1"];
  if (names.length === 0) {
    throw new RangeError("Cannot generate certificates: no server names given");
  }
  const now = Date.now();
  const notBefore = new Date(now - 60_000);
  const caKeys = await crypto.subtle.generateKey(ALGORITHM, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${options.caName ?? "wmproxy tunnel CA"}`,
    notBefore,
    notAfter: new Date(now + (options.caDays ?? 3650) * DAY_MS),
    keys: caKeys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const serverKeys = await crypto.subtle.generateKey(ALGORITHM, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${names[0]}`,
    issuer: ca.subject,
    notBefore,
    notAfter: new Date(now + (options.serverDays ?? 825) * DAY_MS),
    signingKey: caKeys.privateKey,
    publicKey: serverKeys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(
        names.map((
          n,
        ) => (isIp(n) ? { type: "ip" as const, value: n } : { type: "dns" as const, value: n })),
      ),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  const caPem = ca.toString("pem");
  const serverPem = server.toString("pem");
  return {
    ca: { cert: caPem, key: await keyPem(caKeys.privateKey) },
    server: { cert: serverPem, key: await keyPem(serverKeys.privateKey) },
    caFingerprint: await certificateFingerprint(caPem),
    serverFingerprint: await certificateFingerprint(serverPem),
  };
}

/** The DNS names and IP addresses a PEM certificate is valid for (its subjectAltName). */
export function certificateNames(pem: string): string[] {
  const san = new X509Certificate(pem).subjectAltName;
  if (san === undefined) return [];
  // "DNS:a.example, IP Address:127.0.0.1" (values with odd characters are quoted).
  return san.split(", ").map((entry) => {
    const value = entry.slice(entry.indexOf(":") + 1);
    return (value.startsWith('"') ? JSON.parse(value) as string : value).toLowerCase();
  });
}
