/**
 * Content types by file extension, and which types compress well. Pure.
 *
 * @module
 */

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  htm: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  json: "application/json; charset=utf-8",
  map: "application/json; charset=utf-8",
  txt: "text/plain; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  xml: "application/xml; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  avif: "image/avif",
  ico: "image/x-icon",
  woff: "font/woff",
  woff2: "font/woff2",
  ttf: "font/ttf",
  otf: "font/otf",
  wasm: "application/wasm",
  pdf: "application/pdf",
  zip: "application/zip",
  gz: "application/gzip",
  tar: "application/x-tar",
  mp4: "video/mp4",
  webm: "video/webm",
  mp3: "audio/mpeg",
  ogg: "audio/ogg",
  wav: "audio/wav",
  webmanifest: "application/manifest+json; charset=utf-8",
  yaml: "text/yaml; charset=utf-8",
  yml: "text/yaml; charset=utf-8",
  toml: "text/plain; charset=utf-8",
  ts: "text/plain; charset=utf-8",
};

/**
 * The content type of a file name: `extra` (config `mime_types`) first, then
 * the built-in table, else `fallback`.
 */
export function contentTypeFor(
  name: string,
  extra: Readonly<Record<string, string>>,
  fallback: string,
): string {
  const dot = name.lastIndexOf(".");
  if (dot <= name.lastIndexOf("/")) return fallback;
  const ext = name.slice(dot + 1).toLowerCase();
  return extra[ext] ?? TYPES[ext] ?? fallback;
}

/** Whether a content type is text-like and worth compressing on the fly. */
export function isCompressible(contentType: string): boolean {
  const t = contentType.split(";")[0]!.trim().toLowerCase();
  return t.startsWith("text/") || t === "application/json" || t === "application/xml" ||
    t === "image/svg+xml" || t === "application/manifest+json" || t === "application/wasm" ||
    t.endsWith("+json") || t.endsWith("+xml");
}
