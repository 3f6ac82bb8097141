import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo, Server, Socket } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { afterEach, describe, expect, it } from "vitest";
import { createClientConfig } from "./config.ts";
import { createFetchHttpClient } from "../web/fetch-client.ts";
import { createGrpcUnaryCaller } from "./grpc.ts";
import { createGrpcWebUnaryCaller } from "./grpc-web.ts";
import { createHttp2HttpClient } from "../node/http2-client.ts";
import { Code } from "../core/code.ts";
import { envelopeEncode } from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import type { HttpClient } from "./http-client.ts";
import type { MethodInfo } from "../core/method.ts";

const unary: MethodInfo = {
  service: "test.v1.TestService",
  name: "Unary",
  path: "/test.v1.TestService/Unary",
  kind: "unary",
  input: StringValueSchema,
  output: StringValueSchema,
  noSideEffects: false,
};

const message = (value: string) =>
  envelopeEncode(
    0,
    toBinary(StringValueSchema, create(StringValueSchema, { value })),
  );

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
 * A server that answers every call with two response messages and then
 * keeps the response open for as long as the client lets it; `closed`
 * settles when the client has given up the response.
 */
async function twoMessagesThenNothing(
  transport: "http2" | "fetch",
  contentType: string,
): Promise<{ url: string; closed: Promise<void> }> {
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  const body = [message("one"), message("two")];
  if (transport === "http2") {
    const server = http2.createServer();
    server.on("stream", (stream) => {
      stream.on("error", () => {});
      stream.once("close", markClosed);
      stream.respond({ ":status": 200, "content-type": contentType });
      for (const chunk of body) stream.write(chunk);
    });
    return { url: await listen(server), closed };
  }
  const server = http.createServer((_req, res) => {
    res.once("close", markClosed);
    res.writeHead(200, { "content-type": contentType });
    for (const chunk of body) res.write(chunk);
  });
  return { url: await listen(server), closed };
}

const cases: [
  string,
  "http2" | "fetch",
  typeof createGrpcUnaryCaller,
  string,
][] = [
  ["gRPC over http2", "http2", createGrpcUnaryCaller, "application/grpc+proto"],
  [
    "gRPC-Web over http2",
    "http2",
    createGrpcWebUnaryCaller,
    "application/grpc-web+proto",
  ],
  [
    "gRPC-Web over fetch",
    "fetch",
    createGrpcWebUnaryCaller,
    "application/grpc-web+proto",
  ],
];

describe("a unary call whose server sends a second message and keeps streaming", () => {
  for (const [name, transport, createCaller, contentType] of cases) {
    it(`${name}: fails at the second message with unimplemented and cancels the response`, async () => {
      const { url, closed } = await twoMessagesThenNothing(
        transport,
        contentType,
      );
      const httpClient: HttpClient =
        transport === "http2"
          ? createHttp2HttpClient()
          : createFetchHttpClient();
      const call = createCaller(createClientConfig(url, {}, httpClient, {}));
      const error = await call(unary, { value: "hi" }, undefined).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.Unimplemented);
      expect((error as ConnectError).rawMessage).toMatch(/more than one/);
      // The client let go of the response: the server sees it end.
      await closed;
    });
  }
});
