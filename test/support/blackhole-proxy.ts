// A TCP proxy on 127.0.0.1 that can stop forwarding bytes in both
// directions while keeping both connections open: a load balancer that died
// without closing anything, the case HTTP/2 keepalive exists for.

import * as net from "node:net";
import type { AddressInfo } from "node:net";

export interface BlackholeProxy {
  /** `http://127.0.0.1:<port>` of the proxy. */
  readonly url: string;
  /** Connections accepted so far. */
  readonly connections: () => number;
  /** Drops every byte from now on, in both directions, on every connection. */
  readonly blackhole: () => void;
  /** Forwards again; connections that were black-holed stay so. */
  readonly forward: () => void;
  readonly close: () => void;
}

/** A proxy to `127.0.0.1:<targetPort>`. */
export async function blackholeProxy(
  targetPort: number,
): Promise<BlackholeProxy> {
  const sockets = new Set<net.Socket>();
  // Connections accepted while forwarding that were later black-holed.
  const dead = new Set<net.Socket>();
  let forwarding = true;
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    const upstream = net.connect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        sockets.delete(s);
        // A dead proxy does not pass on a close either.
        if (dead.has(s)) return;
        client.destroy();
        upstream.destroy();
      });
    }
    const pipe = (from: net.Socket, to: net.Socket) =>
      from.on("data", (chunk: Buffer) => {
        if (forwarding && !dead.has(from)) to.write(chunk);
      });
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve()),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => accepted,
    blackhole: () => {
      forwarding = false;
      for (const s of sockets) dead.add(s);
    },
    forward: () => {
      forwarding = true;
    },
    close: () => {
      server.close();
      for (const s of sockets) s.destroy();
      for (const s of dead) s.destroy();
    },
  };
}
