/**
 * The quick `--map` form of a client mapping:
 * `NAME=TYPE:LOCAL_ADDR[@DOMAINS|@:PORT]`, e.g.
 * `web=http:127.0.0.1:8080@example.com,www.example.com`,
 * `ssh=tcp:127.0.0.1:22@:2222`, `dns=udp:127.0.0.1:53@:5353`.
 *
 * @module
 */

const MAP_REGEXP = /^([A-Za-z0-9_.-]{1,64})=(http|https|tcp|udp):([^@]+)(?:@(.*))?$/;

/**
 * Parses one `--map` value into the same raw shape as a `client.mappings[]`
 * entry of a config file (validated later like one). Throws `SyntaxError`.
 */
export function parseMapFlag(text: string): Record<string, unknown> {
  const m = MAP_REGEXP.exec(text.trim());
  if (!m) {
    throw new SyntaxError(
      `Cannot use --map ${JSON.stringify(text)}: expected NAME=TYPE:LOCAL_ADDR@DOMAINS or ` +
        "NAME=TYPE:LOCAL_ADDR@:PORT, e.g. web=http:127.0.0.1:8080@example.com or ssh=tcp:127.0.0.1:22@:2222",
    );
  }
  const [, name, type, local, target] = m;
  const raw: Record<string, unknown> = { name, type, local_addr: local };
  if (type === "http" || type === "https") {
    if (target === undefined || target === "") {
      throw new SyntaxError(
        `Cannot use --map ${JSON.stringify(text)}: a ${type} mapping needs @DOMAIN[,DOMAIN…]`,
      );
    }
    raw.domains = target.split(",").map((d) => d.trim()).filter((d) => d !== "");
  } else if (target !== undefined && target !== "") {
    const port = /^:(\d{1,5})$/.exec(target);
    if (!port) {
      throw new SyntaxError(
        `Cannot use --map ${JSON.stringify(text)}: a ${type} mapping takes @:PORT (0 = any)`,
      );
    }
    raw.remote_port = Number(port[1]);
  }
  return raw;
}
