/**
 * An error that carries the HTTP status it should be answered with.
 *
 * @module
 */

/** A failure with its reply status (e.g. 408 body timeout, 413 body too large). */
export class HttpStatusError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpStatusError";
    this.status = status;
  }
}

/** A short plain-text reply: `STATUS Reason` and a newline. */
export function statusResponse(
  status: number,
  reason: string,
  headers: HeadersInit = {},
): Response {
  return new Response(`${status} ${reason}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}
