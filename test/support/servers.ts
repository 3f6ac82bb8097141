import * as http from "node:http";
import * as http2 from "node:http2";
import * as https from "node:https";
import type { AddressInfo, Server, Socket } from "node:net";
import { testCertificate } from "./tls.ts";

/** A request listener that works on every Node server kind (a generated `handler.node` is one). */
export type NodeListener = (
  request: http.IncomingMessage | http2.Http2ServerRequest,
  response: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** A `"stream"` listener of a node:http2 server (a generated `handler.http2Stream` is one). */
export type StreamListener = (
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  flags: number,
  rawHeaders: string[],
) => void;

export type ServerKind = "http" | "https" | "h2c" | "h2";

export interface StartedServer {
  /** The server's root URL, without a trailing slash: `http://127.0.0.1:1234`. */
  readonly url: string;
  /** Stops listening and destroys every open connection (and so every HTTP/2 session). */
  close(): Promise<void>;
}

/**
 * Starts a server of the given kind on 127.0.0.1, port 0. "https" is
 * node:https; "h2" is node:http2 over TLS with `allowHTTP1: true`, so it
 * takes HTTP/1.1 clients too.
 */
export async function startServer(
  kind: ServerKind,
  listener: NodeListener,
): Promise<StartedServer> {
  let server: Server;
  switch (kind) {
    case "http":
      server = http.createServer(listener);
      break;
    case "https":
      server = https.createServer(testCertificate(), listener);
      break;
    case "h2c":
      server = http2.createServer(listener);
      break;
    case "h2":
      server = http2.createSecureServer(
        { ...testCertificate(), allowHTTP1: true },
        listener,
      );
      break;
  }
  return listenTracked(server, kind === "https" || kind === "h2");
}

/**
 * Starts an h2c server on 127.0.0.1, port 0, that serves HTTP/2 streams with
 * a `"stream"` listener, without Node's compatibility layer.
 */
export async function startStreamServer(
  listener: StreamListener,
): Promise<StartedServer> {
  return listenTracked(http2.createServer().on("stream", listener), false);
}

async function listenTracked(
  server: Server,
  secure: boolean,
): Promise<StartedServer> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const scheme = secure ? "https" : "http";
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
      }),
  };
}
