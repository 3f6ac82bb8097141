import type * as http2 from "node:http2";
import type { AddressInfo } from "node:net";

/**
 * Starts `server` (h2c) on 127.0.0.1, port 0, for tests that drive
 * node:http2 by hand. Session and stream errors (a client that resets or
 * goes away) are expected there, so they are ignored rather than thrown.
 * `close` stops listening and destroys the sessions still open.
 */
export async function listenH2c(server: http2.Http2Server): Promise<{
  readonly port: number;
  readonly url: string;
  close(): void;
}> {
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("error", () => {});
    session.on("close", () => sessions.delete(session));
  });
  server.on("stream", (stream) => stream.on("error", () => {}));
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve()),
  );
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close() {
      server.close();
      for (const session of sessions) session.destroy();
    },
  };
}
