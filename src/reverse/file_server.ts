/**
 * The static file server of a location: root/alias, index files, optional
 * HTML-escaped listings, MIME types, ETag/Last-Modified with conditional
 * requests, single and suffix ranges (416), HEAD, precompressed `.br`/`.gz`
 * siblings, on-the-fly gzip of text types, Cache-Control and hidden names.
 *
 * No way out of the root (B14): the path it gets is already decoded and
 * normalised (`normalizePath`: encoded `..`, backslashes and NUL are refused
 * there), hidden names are checked on the requested path, and every file is
 * opened only after `realPath` shows it inside the real root, so a symlink
 * pointing outside answers 404.
 *
 * @module
 */
import type { FileServerConfig } from "../config/http_section.ts";
import type { FileCache } from "./file_cache.ts";
import { contentTypeFor, isCompressible } from "./mime.ts";

/** Files smaller than this are not compressed on the fly. */
export const MIN_GZIP_BYTES = 256;
/** Listings show at most this many entries. */
export const MAX_LISTING_ENTRIES = 10_000;
const READ_CHUNK = 64 * 1024;

/** What the file server needs besides its config. */
export interface FileRequest {
  req: Request;
  /** Decoded, normalised path (`$uri`). */
  uri: string;
  /** Query string with `?`, or "" (kept on directory redirects). */
  search: string;
  /** The matched location prefix, for `alias`. */
  prefix: string;
}

function textResponse(status: number, text: string, headers: HeadersInit = {}): Response {
  return new Response(text + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}

function globToRegExp(glob: string): RegExp {
  const src = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${src}$`);
}

const globCache = new Map<string, RegExp>();

/** Whether any segment of `path` matches a hidden-name glob. */
export function isHidden(path: string, hidden: readonly string[]): boolean {
  if (hidden.length === 0) return false;
  const res = hidden.map((g) => {
    let re = globCache.get(g);
    if (re === undefined) {
      re = globToRegExp(g);
      if (globCache.size < 1024) globCache.set(g, re);
    }
    return re;
  });
  return path.split("/").some((seg) => seg !== "" && res.some((re) => re.test(seg)));
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Whether `real` is `root` or inside it. */
function inside(root: string, real: string): boolean {
  return real === root || real.startsWith(root.endsWith("/") ? root : root + "/");
}

async function realInside(root: string, path: string): Promise<string | undefined> {
  try {
    const real = await Deno.realPath(path);
    return inside(root, real) ? real : undefined;
  } catch {
    return undefined;
  }
}

/** A strong validator from size and modification time. */
export function makeEtag(size: number, mtimeMs: number, suffix = ""): string {
  return `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}${suffix}"`;
}

function etagMatches(header: string, etag: string): boolean {
  const bare = etag.replace(/^W\//, "");
  return header.split(",").some((t) => {
    const v = t.trim();
    return v === "*" || v.replace(/^W\//, "") === bare;
  });
}

/** A byte range, inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range` header for a file of `size` bytes: one range
 * (`bytes=a-b`, `bytes=a-`, `bytes=-n`). `"ignore"` for a header to ignore
 * (other units, several ranges, syntax errors), `"unsatisfiable"` for 416.
 */
export function parseRange(header: string, size: number): ByteRange | "ignore" | "unsatisfiable" {
  const m = /^bytes=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return "ignore";
  if (m[1] === "") {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== "" && Number(m[2]) < start) return "ignore";
  if (start >= size) return "unsatisfiable";
  return { start, end };
}

function fileStream(file: Deno.FsFile, length: number): ReadableStream<Uint8Array> {
  let left = length;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (left <= 0) {
          file.close();
          controller.close();
          return;
        }
        const buf = new Uint8Array(Math.min(READ_CHUNK, left));
        const n = await file.read(buf);
        if (n === null) {
          file.close();
          controller.close();
          return;
        }
        left -= n;
        controller.enqueue(buf.subarray(0, n));
      } catch (err) {
        try {
          file.close();
        } catch {
          // already closed
        }
        controller.error(err);
      }
    },
    cancel() {
      try {
        file.close();
      } catch {
        // already closed
      }
    },
  }, { highWaterMark: 0 });
}

function acceptsEncoding(req: Request, token: string): boolean {
  const header = req.headers.get("accept-encoding");
  if (header === null) return false;
  return header.split(",").some((part) => {
    const [name, ...params] = part.trim().split(";");
    if (name!.trim().toLowerCase() !== token) return false;
    const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)).find(Boolean);
    return q ? Number(q[1]) > 0 : true;
  });
}

/**
 * Serves `request.uri` from the location's root or alias.
 *
 * @example
 * ```ts
 * await serveFile({ req: new Request("http://x/a.txt"), uri: "/a.txt", search: "", prefix: "/" }, config);
 * ```
 */
export async function serveFile(
  request: FileRequest,
  config: FileServerConfig,
  cache?: FileCache,
): Promise<Response> {
  const { req, uri } = request;
  if (req.method !== "GET" && req.method !== "HEAD") {
    return textResponse(405, "405 Method Not Allowed", { allow: "GET, HEAD" });
  }
  let rel: string;
  let base: string;
  if (config.alias !== undefined) {
    rel = uri.slice(request.prefix.length);
    if (!rel.startsWith("/")) rel = "/" + rel;
    base = config.alias;
  } else {
    rel = uri;
    base = config.root ?? ".";
  }
  if (isHidden(rel, config.hidden)) return textResponse(404, "404 Not Found");
  const key = cache === undefined ? "" : `${base}\0${rel}`;
  const hit = cache?.lookup(key);
  if (hit !== undefined) return await sendFile(req, config, hit.root, hit.path, hit.info, cache);
  let root: string;
  try {
    root = await Deno.realPath(base);
  } catch {
    return textResponse(404, "404 Not Found");
  }
  const target = await realInside(root, root + rel);
  // A link inside the root to a hidden name is hidden too.
  if (target === undefined || isHidden(target.slice(root.length), config.hidden)) {
    return textResponse(404, "404 Not Found");
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(target);
  } catch {
    return textResponse(404, "404 Not Found");
  }
  if (info.isDirectory) {
    if (!uri.endsWith("/")) {
      return new Response(null, {
        status: 301,
        headers: { location: encodeURI(uri + "/") + request.search },
      });
    }
    for (const name of config.index) {
      const index = await realInside(root, `${target}/${name}`);
      if (index === undefined) continue;
      try {
        const indexInfo = await Deno.stat(index);
        if (indexInfo.isFile) return await sendFile(req, config, root, index, indexInfo, undefined);
      } catch {
        // next index
      }
    }
    if (config.browse) return await listDirectory(req, uri, root, target, config);
    return textResponse(403, "403 Forbidden");
  }
  if (!info.isFile) return textResponse(404, "404 Not Found");
  cache?.remember(key, { root, path: target, info });
  return await sendFile(req, config, root, target, info, cache);
}

/** What a file's headers need, worked out once per `stat` result (kept by the FileCache). */
interface FileFacts {
  contentType: string;
  compressible: boolean;
  mtime: number;
  etag: string;
  lastModified: string | undefined;
}

const factsByConfig = new WeakMap<FileServerConfig, WeakMap<Deno.FileInfo, FileFacts>>();

function factsOf(config: FileServerConfig, path: string, info: Deno.FileInfo): FileFacts {
  let byInfo = factsByConfig.get(config);
  if (byInfo === undefined) factsByConfig.set(config, byInfo = new WeakMap());
  let facts = byInfo.get(info);
  if (facts === undefined) {
    const contentType = contentTypeFor(path, config.mime_types, config.default_type);
    const mtime = info.mtime?.getTime() ?? 0;
    facts = {
      contentType,
      compressible: isCompressible(contentType),
      mtime,
      etag: makeEtag(info.size, mtime),
      lastModified: mtime > 0 ? new Date(mtime).toUTCString() : undefined,
    };
    byInfo.set(info, facts);
  }
  return facts;
}

async function sendFile(
  req: Request,
  config: FileServerConfig,
  root: string,
  path: string,
  info: Deno.FileInfo,
  cache: FileCache | undefined,
): Promise<Response> {
  const facts = factsOf(config, path, info);
  const contentType = facts.contentType;
  const headers = new Headers({ "content-type": contentType, "accept-ranges": "bytes" });
  if (config.cache_control !== undefined) headers.set("cache-control", config.cache_control);
  const mtime = facts.mtime;
  const compressible = facts.compressible;
  if (config.precompressed || (config.gzip && compressible)) headers.set("vary", "Accept-Encoding");

  // Precompressed siblings, when no range is asked for.
  let servePath = path;
  let size = info.size;
  let encoding: string | undefined;
  let etag = facts.etag;
  if (config.precompressed && !req.headers.has("range")) {
    for (const [token, ext] of [["br", ".br"], ["gzip", ".gz"]] as const) {
      if (!acceptsEncoding(req, token)) continue;
      const sibling = await realInside(root, path + ext);
      if (sibling === undefined) continue;
      try {
        const s = await Deno.stat(sibling);
        if (!s.isFile) continue;
        servePath = sibling;
        size = s.size;
        encoding = token;
        etag = makeEtag(s.size, s.mtime?.getTime() ?? 0, `-${token}`);
        break;
      } catch {
        // none
      }
    }
  }
  const gzipOnTheFly = encoding === undefined && config.gzip && compressible &&
    size >= MIN_GZIP_BYTES && acceptsEncoding(req, "gzip") && !req.headers.has("range");
  if (gzipOnTheFly) etag = `W/${etag}`;
  headers.set("etag", etag);
  if (facts.lastModified !== undefined) headers.set("last-modified", facts.lastModified);
  if (encoding !== undefined) headers.set("content-encoding", encoding);

  // Conditional requests (RFC 9110 §13.2.2: If-None-Match wins over If-Modified-Since).
  const inm = req.headers.get("if-none-match");
  const ims = req.headers.get("if-modified-since");
  if (inm !== null) {
    if (etagMatches(inm, etag)) return new Response(null, { status: 304, headers });
  } else if (ims !== null && mtime > 0) {
    const since = Date.parse(ims);
    if (!Number.isNaN(since) && Math.floor(mtime / 1000) <= Math.floor(since / 1000)) {
      return new Response(null, { status: 304, headers });
    }
  }

  let start = 0;
  let length = size;
  let status = 200;
  const rangeHeader = req.method === "GET" ? req.headers.get("range") : null;
  if (rangeHeader !== null) {
    const ifRange = req.headers.get("if-range");
    const rangeValid = ifRange === null ||
      (ifRange.startsWith('"') || ifRange.startsWith("W/")
        ? ifRange === etag
        : Date.parse(ifRange) >= Math.floor(mtime / 1000) * 1000);
    if (rangeValid) {
      const range = parseRange(rangeHeader, size);
      if (range === "unsatisfiable") {
        headers.set("content-range", `bytes */${size}`);
        headers.set("content-type", "text/plain; charset=utf-8");
        return new Response("416 Range Not Satisfiable\n", { status: 416, headers });
      }
      if (range !== "ignore") {
        start = range.start;
        length = range.end - range.start + 1;
        status = 206;
        headers.set("content-range", `bytes ${range.start}-${range.end}/${size}`);
      }
    }
  }

  if (gzipOnTheFly) {
    headers.set("content-encoding", "gzip");
    if (req.method === "HEAD") return new Response(null, { status, headers });
    const file = await Deno.open(servePath, { read: true });
    return new Response(
      fileStream(file, size).pipeThrough(
        new CompressionStream("gzip") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>,
      ),
      { status, headers },
    );
  }
  headers.set("content-length", String(length));
  if (req.method === "HEAD") return new Response(null, { status, headers });
  if (servePath === path && cache !== undefined) {
    const bytes = await cache.contents(path, info);
    if (bytes !== undefined) {
      return new Response(bytes.subarray(start, start + length), { status, headers });
    }
  }
  const file = await Deno.open(servePath, { read: true });
  if (start > 0) await file.seek(start, Deno.SeekMode.Start);
  // To the end of the file: the file's own resource-backed stream, which
  // Deno.serve copies without a JS round trip per chunk.
  if (start + length === size) return new Response(file.readable, { status, headers });
  return new Response(fileStream(file, length), { status, headers });
}

/**
 * The listing of `dir` (inside the real `root`). A symlink is listed only when
 * it resolves inside the root to a name that is not hidden (what
 * {@link serveFile} would serve); links out of the root and dangling links
 * are left out, so their targets' size and time never show.
 */
async function listDirectory(
  req: Request,
  uri: string,
  root: string,
  dir: string,
  config: FileServerConfig,
): Promise<Response> {
  const entries: { name: string; dir: boolean; size: number; mtime: number }[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (isHidden(e.name, config.hidden)) continue;
    let path = `${dir}/${e.name}`;
    if (e.isSymlink) {
      const real = await realInside(root, path);
      if (real === undefined || isHidden(real.slice(root.length), config.hidden)) continue;
      path = real;
    }
    let size = 0;
    let mtime = 0;
    let isDir = e.isDirectory;
    try {
      const s = await Deno.stat(path);
      size = s.size;
      mtime = s.mtime?.getTime() ?? 0;
      isDir = s.isDirectory;
    } catch {
      // removed meanwhile: list it without details
    }
    entries.push({ name: e.name, dir: isDir, size, mtime });
    if (entries.length >= MAX_LISTING_ENTRIES) break;
  }
  entries.sort((a, b) => (a.dir === b.dir ? a.name.localeCompare(b.name) : a.dir ? -1 : 1));
  const title = escapeHtml(`Index of ${uri}`);
  const rows = entries.map((e) => {
    const href = encodeURIComponent(e.name) + (e.dir ? "/" : "");
    const label = escapeHtml(e.name + (e.dir ? "/" : ""));
    const when = e.mtime > 0 ? new Date(e.mtime).toISOString().replace("T", " ").slice(0, 19) : "";
    return `<tr><td><a href="${escapeHtml(href)}">${label}</a></td><td>${
      e.dir ? "-" : e.size
    }</td><td>${when}</td></tr>`;
  });
  const up = uri === "/" ? "" : `<tr><td><a href="../">../</a></td><td></td><td></td></tr>`;
  const html = `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${title}</title></head>` +
    `<body><h1>${title}</h1><table>${up}${rows.join("")}</table></body></html>\n`;
  return new Response(req.method === "HEAD" ? null : html, {
    headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-cache" },
  });
}
