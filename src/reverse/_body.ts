/**
 * Body stream helpers: byte counting with an end callback (access log,
 * upstream release), idle timeouts between chunks, and size limits.
 *
 * @module
 */

/** Options for {@link watchBody}. */
export interface WatchBodyOptions {
  /** Longest wait for the next chunk; 0 = none. */
  idleTimeoutMs?: number;
  /** Error used when the idle timeout fires. */
  timeoutError?: () => Error;
  /** Most bytes allowed; more errors the stream with `limitError`. */
  maxBytes?: number;
  limitError?: () => Error;
  /** Called once: at the end, on error or on cancel, with the bytes passed. */
  onEnd?: (bytes: number, error: unknown) => void;
  /** Called after each chunk passed. */
  onChunk?: (bytes: number) => void;
}

/**
 * Passes `body` through, counting bytes, enforcing `idleTimeoutMs` between
 * chunks and `maxBytes`, and calling `onEnd` exactly once.
 */
export function watchBody(
  body: ReadableStream<Uint8Array>,
  options: WatchBodyOptions,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let bytes = 0;
  let ended = false;
  const end = (error: unknown) => {
    if (ended) return;
    ended = true;
    options.onEnd?.(bytes, error);
  };
  const idle = options.idleTimeoutMs ?? 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const read = reader.read();
        let result: ReadableStreamReadResult<Uint8Array>;
        if (idle > 0) {
          result = await new Promise<ReadableStreamReadResult<Uint8Array>>((resolve, reject) => {
            timer = setTimeout(
              () => reject(options.timeoutError?.() ?? new Error("body idle timeout")),
              idle,
            );
            read.then(resolve, reject);
          });
        } else {
          result = await read;
        }
        clearTimeout(timer);
        if (result.done) {
          end(undefined);
          controller.close();
          return;
        }
        bytes += result.value.byteLength;
        if (options.maxBytes !== undefined && bytes > options.maxBytes) {
          throw options.limitError?.() ?? new RangeError("body too large");
        }
        controller.enqueue(result.value);
        options.onChunk?.(bytes);
      } catch (err) {
        clearTimeout(timer);
        end(err);
        reader.cancel(err).catch(() => {});
        controller.error(err);
      }
    },
    cancel(reason) {
      end(reason ?? new Error("cancelled"));
      return reader.cancel(reason).catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * Reads `body` into memory when it ends within `limit` bytes (`bytes`);
 * otherwise returns a stream that replays what was read and goes on with the
 * rest (`stream`). Rejects with the stream's errors.
 */
export async function bufferBody(
  body: ReadableStream<Uint8Array>,
  limit: number,
): Promise<{ bytes?: Uint8Array; stream?: ReadableStream<Uint8Array> }> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (total <= limit) {
    const { done, value } = await reader.read();
    if (done) {
      const out = new Uint8Array(total);
      let off = 0;
      for (const c of chunks) {
        out.set(c, off);
        off += c.byteLength;
      }
      return { bytes: out };
    }
    chunks.push(value);
    total += value.byteLength;
  }
  return {
    stream: new ReadableStream<Uint8Array>({
      async pull(controller) {
        const head = chunks.shift();
        if (head !== undefined) return controller.enqueue(head);
        try {
          const { done, value } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (err) {
          controller.error(err);
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    }, { highWaterMark: 0 }),
  };
}
