// A lost connection is the transport's failure, not the caller's: every
// protocol, over the http2 and fetch transports, reports a server that went
// away (before or during its response) and a refused connection as
// unavailable, which retry policies retry, never as canceled, which they do
// not; and says what failed.

import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo, Server, Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  Code,
  ConnectError,
  createElizaServiceClient,
  isConnectError,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import { elizaProtocols } from "./support/protocols.ts";

type Protocol = "connect" | "grpc" | "grpc-web";
type Transport = "http2" | "fetch";

const contentTypes: Record<Protocol, string> = {
  connect: "application/proto",
  grpc: "application/grpc+proto",
  "grpc-web": "application/grpc-web+proto",
};

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

async function listen(server: Server): Promise<string> {
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => sockets.add(socket));
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve()),
  );
  closers.push(() => {
    server.close();
    for (const socket of sockets) socket.destroy();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/**
 * A server that drops the connection of every call: at once, or after the
 * response headers and the first bytes of its body.
 */
async function dropping(
  transport: Transport,
  protocol: Protocol,
  when: "before" | "during",
): Promise<string> {
  const headers = { "content-type": contentTypes[protocol] };
  const partialBody = new Uint8Array([0, 0, 0]);
  if (transport === "http2") {
    const server = http2.createServer();
    server.on("session", (session) => session.on("error", () => {}));
    server.on("stream", (stream) => {
      stream.on("error", () => {});
      const socket = stream.session!.socket;
      if (when === "before") {
        socket.destroy();
        return;
      }
      stream.respond({ ":status": 200, ...headers });
      stream.write(partialBody, () => socket.destroy());
    });
    return listen(server);
  }
  const server = http.createServer((req, res) => {
    if (when === "before") {
      req.socket.destroy();
      return;
    }
    res.writeHead(200, headers);
    res.write(partialBody, () => req.socket.destroy());
  });
  return listen(server);
}

/** A URL on which nothing listens: a port just freed. */
async function refusing(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve()),
  );
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

async function sayError(
  url: string,
  protocol: Protocol,
  transport: Transport,
): Promise<ConnectError> {
  const client = createElizaServiceClient(url, {
    protocol: elizaProtocols[protocol],
    transport,
  });
  try {
    await client.say({ sentence: "hi" });
  } catch (e) {
    expect(isConnectError(e), String(e)).toBe(true);
    return e as ConnectError;
  }
  throw new Error("the call succeeded");
}

const combinations: [Protocol, Transport][] = [
  ["connect", "http2"],
  ["grpc", "http2"],
  ["grpc-web", "http2"],
  ["connect", "fetch"],
  ["grpc-web", "fetch"],
];

describe.each(combinations)("%s over %s", (protocol, transport) => {
  it("a server that drops the connection before it answers → unavailable", async () => {
    const url = await dropping(transport, protocol, "before");
    const error = await sayError(url, protocol, transport);
    expect(error.code).toBe(Code.Unavailable);
  });

  it("a server that drops the connection mid-response → unavailable", async () => {
    const url = await dropping(transport, protocol, "during");
    const error = await sayError(url, protocol, transport);
    expect(error.code).toBe(Code.Unavailable);
  });

  it("a refused connection → unavailable, saying so and where, with the original error as cause", async () => {
    const url = await refusing();
    const error = await sayError(url, protocol, transport);
    expect(error.code).toBe(Code.Unavailable);
    expect(error.rawMessage).toContain("ECONNREFUSED");
    expect(error.rawMessage).toContain(url.slice("http://".length));
    expect(error.cause).toBeInstanceOf(Error);
  });
});
