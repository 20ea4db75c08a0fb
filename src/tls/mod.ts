/**
 * Certificates: generation (CA + server certificate) and the server's identity.
 *
 * @module
 */
export { certificateFingerprint, certificateNames, generateCertificates } from "./certificates.ts";
export type {
  CertificatePair,
  GenerateCertificatesOptions,
  GeneratedCertificates,
} from "./certificates.ts";
export { IDENTITY_FILES, loadServerIdentity, writeIdentity } from "./server_identity.ts";
export type { LoadServerIdentityOptions, ServerIdentity } from "./server_identity.ts";
