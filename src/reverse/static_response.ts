/**
 * Static responses of a location: status, headers and a body template, with
 * variables expanded per request.
 *
 * @module
 */
import type { StaticResponseConfig } from "../config/http_section.ts";
import { expandTemplate, type RequestVariables } from "./variables.ts";

/** The configured reply for one request (no body for HEAD, 204 and 304). */
export function staticResponse(
  req: Request,
  config: StaticResponseConfig,
  vars: RequestVariables,
): Response {
  const headers = new Headers({ "content-type": config.content_type });
  for (const [name, value] of Object.entries(config.headers)) {
    headers.set(name, expandTemplate(value, vars));
  }
  const noBody = req.method === "HEAD" || config.status === 204 || config.status === 304 ||
    config.status < 200;
  const body = noBody ? null : expandTemplate(config.body, vars);
  if (noBody && config.status >= 200) {
    headers.set(
      "content-length",
      String(new TextEncoder().encode(expandTemplate(config.body, vars)).length),
    );
  }
  return new Response(body, { status: config.status, headers });
}
