/**
 * A small cache for the file server, like nginx's `open_file_cache`: the
 * resolved path and `stat` of a request path are reused for
 * {@link FILE_CACHE_VALID_MS}, and the bytes of small files are kept while
 * their size and modification time stay the same. Without it every request
 * costs two `realpath`s, a `stat`, an `open` and reads.
 *
 * A file changed on disk is served fresh at most {@link FILE_CACHE_VALID_MS}
 * later. Both maps are bounded; the oldest entries go first.
 *
 * @module
 */

/** How long a resolved path and its `stat` are trusted. */
export const FILE_CACHE_VALID_MS = 1_000;
/** Files up to this size are kept in memory. */
export const FILE_CACHE_MAX_FILE_BYTES = 64 * 1024;
/** Most bytes of file contents kept. */
export const FILE_CACHE_MAX_BYTES = 16 * 1024 * 1024;
/** Most resolved paths kept. */
export const FILE_CACHE_MAX_ENTRIES = 10_000;

/** A request path resolved to a regular file inside its root. */
export interface ResolvedFile {
  root: string;
  path: string;
  info: Deno.FileInfo;
}

interface Contents {
  bytes: Uint8Array<ArrayBuffer>;
  size: number;
  mtime: number;
}

/** See the module doc. */
export class FileCache {
  readonly #resolved = new Map<string, { file: ResolvedFile; until: number }>();
  readonly #contents = new Map<string, Contents>();
  #bytes = 0;
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The resolution of `key` when still valid. */
  lookup(key: string): ResolvedFile | undefined {
    const hit = this.#resolved.get(key);
    if (hit === undefined) return undefined;
    if (hit.until > this.#now()) return hit.file;
    this.#resolved.delete(key);
    return undefined;
  }

  /** Remembers that `key` resolved to `file`. */
  remember(key: string, file: ResolvedFile): void {
    this.#resolved.delete(key);
    if (this.#resolved.size >= FILE_CACHE_MAX_ENTRIES) {
      this.#resolved.delete(this.#resolved.keys().next().value!);
    }
    this.#resolved.set(key, { file, until: this.#now() + FILE_CACHE_VALID_MS });
  }

  /**
   * The whole contents of a small file as `info` describes it (read and kept
   * when missing or changed); `undefined` for files too large to keep.
   */
  async contents(
    path: string,
    info: Deno.FileInfo,
  ): Promise<Uint8Array<ArrayBuffer> | undefined> {
    if (info.size > FILE_CACHE_MAX_FILE_BYTES) return undefined;
    const mtime = info.mtime?.getTime() ?? 0;
    const known = this.#contents.get(path);
    if (known !== undefined && known.size === info.size && known.mtime === mtime) {
      return known.bytes;
    }
    const bytes = await Deno.readFile(path);
    if (bytes.length !== info.size) return undefined; // changed while reading: do not keep
    if (known !== undefined) {
      this.#contents.delete(path);
      this.#bytes -= known.bytes.length;
    }
    while (this.#bytes + bytes.length > FILE_CACHE_MAX_BYTES && this.#contents.size > 0) {
      const [oldest, entry] = this.#contents.entries().next().value!;
      this.#contents.delete(oldest);
      this.#bytes -= entry.bytes.length;
    }
    this.#contents.set(path, { bytes, size: info.size, mtime });
    this.#bytes += bytes.length;
    return bytes;
  }

  /** Paths and bytes kept (for tests and status). */
  get stats(): { entries: number; files: number; bytes: number } {
    return { entries: this.#resolved.size, files: this.#contents.size, bytes: this.#bytes };
  }
}
