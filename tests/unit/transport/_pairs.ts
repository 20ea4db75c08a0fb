/** Connected `ByteConn` pairs over the pipe, TCP and TLS on 127.0.0.1, for shared suites. */
import type { ByteConn } from "@/transport/conn.ts";
import { createPipe } from "@/transport/pipe.ts";
import { dialTcp, listenTcp } from "@/transport/tcp.ts";
import { dialTls, listenTls, tlsHandshake } from "@/transport/tls.ts";
import { testCerts } from "./_test_certs.ts";

/** Two connected ends; `a` dialled, `b` accepted. */
export interface ConnPair {
  a: ByteConn;
  b: ByteConn;
  /** Closes the listener (the ends are closed by their users). */
  close(): void;
}

/** A named way to make a pair. */
export interface PairFactory {
  name: string;
  make(): Promise<ConnPair>;
}

export const PIPE: PairFactory = {
  name: "pipe",
  make() {
    const [a, b] = createPipe();
    return Promise.resolve({ a, b, close() {} });
  },
};

export const TCP: PairFactory = {
  name: "TCP",
  async make() {
    const listener = listenTcp({ hostname: "127.0.0.1", port: 0 });
    const [a, b] = await Promise.all([dialTcp(listener.addr), listener.accept()]);
    listener.close();
    return { a, b, close() {} };
  },
};

export const TLS: PairFactory = {
  name: "TLS",
  async make() {
    const certs = await testCerts();
    const listener = listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: certs.cert,
      key: certs.key,
    });
    const accepted = listener.accept().then(async (conn) => {
      await tlsHandshake(conn);
      return conn;
    });
    const [a, b] = await Promise.all([
      dialTls(listener.addr, { caCerts: [certs.caCert] }),
      accepted,
    ]);
    listener.close();
    return { a, b, close() {} };
  },
};
