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
import { compressionGzip } from "../node/compression.ts";
import { envelopeEncode } from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import type { HttpClient } from "./http-client.ts";
import type { MethodInfo } from "../core/method.ts";
import { failure } from "../../test/support/failure.ts";

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

/**
 * An HttpClient that answers every call with `chunks` as its body, then a
 * body that never ends when `hang` is set; `released` settles when the
 * caller let go of the body (its iteration was stopped).
 */
function fakeHttpClient(
  contentType: string,
  chunks: readonly Uint8Array[],
  options: { hang?: boolean; trailer?: HeadersInit } = {},
): { httpClient: HttpClient; released: Promise<void>; sent: Headers[] } {
  let markReleased!: () => void;
  const released = new Promise<void>((resolve) => (markReleased = resolve));
  const sent: Headers[] = [];
  const httpClient: HttpClient = async (request) => {
    sent.push(request.header);
    async function* body(): AsyncGenerator<Uint8Array> {
      try {
        yield* chunks;
        if (options.hang === true) await new Promise<never>(() => {});
      } finally {
        markReleased();
      }
    }
    return {
      status: 200,
      header: new Headers({ "content-type": contentType }),
      body: body(),
      trailer: new Headers(options.trailer ?? { "grpc-status": "0" }),
      contentDecoded: false,
    };
  };
  return { httpClient, released, sent };
}

const webTrailer = (text: string) =>
  envelopeEncode(0x80, new TextEncoder().encode(text));

const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));

describe("a unary call's response body, read whole", () => {
  it("gRPC: a message in 1-byte chunks, its header split, and the status from the HTTP trailers", async () => {
    const body = message("hello");
    const { httpClient } = fakeHttpClient(
      "application/grpc+proto",
      Array.from(body, (b) => new Uint8Array([b])),
      { trailer: { "grpc-status": "0", "x-trailer": "t" } },
    );
    const call = createGrpcUnaryCaller(
      createClientConfig("http://x", {}, httpClient, {}),
    );
    const response = await call(unary, { value: "hi" }, undefined);
    expect(response.message).toMatchObject({ value: "hello" });
    expect(response.trailer.get("x-trailer")).toBe("t");
  });

  it("gRPC-Web: the message and the trailer envelope in one chunk; the status is the envelope's, not the HTTP trailers'", async () => {
    const { httpClient } = fakeHttpClient(
      "application/grpc-web+proto",
      [concat(message("hello"), webTrailer("grpc-status: 0\r\nx-t: w\r\n"))],
      { trailer: { "grpc-status": "13" } },
    );
    const call = createGrpcWebUnaryCaller(
      createClientConfig("http://x", {}, httpClient, {}),
    );
    const response = await call(unary, { value: "hi" }, undefined);
    expect(response.message).toMatchObject({ value: "hello" });
    expect(response.trailer.get("x-t")).toBe("w");
    expect(response.trailer.get("grpc-status")).toBe("0");
  });

  it("gRPC-Web: an error status in the trailer envelope wins over the message", async () => {
    const { httpClient } = fakeHttpClient("application/grpc-web+proto", [
      message("hello"),
      webTrailer("grpc-status: 5\r\ngrpc-message: gone\r\n"),
    ]);
    const call = createGrpcWebUnaryCaller(
      createClientConfig("http://x", {}, httpClient, {}),
    );
    const error = await failure(call(unary, { value: "hi" }, undefined));
    expect(error.code).toBe(Code.NotFound);
    expect(error.rawMessage).toBe("gone");
  });

  it("fails at once at a header declaring more than readMaxBytes, without waiting for its payload", async () => {
    const { httpClient, released } = fakeHttpClient(
      "application/grpc+proto",
      [new Uint8Array([0, 0, 0, 0, 65])],
      { hang: true },
    );
    const call = createGrpcUnaryCaller(
      createClientConfig("http://x", { readMaxBytes: 64 }, httpClient, {}),
    );
    const error = await failure(call(unary, { value: "hi" }, undefined));
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toMatch(/receive limit of 64 bytes/);
    await released;
  });

  it("takes a message of exactly readMaxBytes", async () => {
    const body = message("x".repeat(62));
    expect(body.byteLength - 5).toBe(64);
    const { httpClient } = fakeHttpClient("application/grpc+proto", [body]);
    const call = createGrpcUnaryCaller(
      createClientConfig("http://x", { readMaxBytes: 64 }, httpClient, {}),
    );
    const response = await call(unary, { value: "hi" }, undefined);
    expect(response.message).toMatchObject({ value: "x".repeat(62) });
  });

  it("gRPC-Web: fails at once at data after the trailer envelope", async () => {
    const { httpClient, released } = fakeHttpClient(
      "application/grpc-web+proto",
      [message("one"), webTrailer("grpc-status: 0\r\n"), message("late")],
      { hang: true },
    );
    const call = createGrpcWebUnaryCaller(
      createClientConfig("http://x", {}, httpClient, {}),
    );
    const error = await failure(call(unary, { value: "hi" }, undefined));
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toMatch(/data after the trailers/);
    await released;
  });

  it("gRPC: a trailer envelope's flag is no trailers, but an unexpected flag", async () => {
    const { httpClient } = fakeHttpClient("application/grpc+proto", [
      message("one"),
      webTrailer("grpc-status: 0\r\n"),
    ]);
    const call = createGrpcUnaryCaller(
      createClientConfig("http://x", {}, httpClient, {}),
    );
    const error = await failure(call(unary, { value: "hi" }, undefined));
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toMatch(/unexpected envelope flags 128/);
  });

  it("sends the protocol's headers on every call, over the caller's, each call its own copy", async () => {
    const { httpClient, sent } = fakeHttpClient("application/grpc+proto", [
      message("one"),
    ]);
    const call = createGrpcUnaryCaller(
      createClientConfig(
        "http://x",
        { headers: { "content-type": "text/plain", "x-user": "u" } },
        httpClient,
        { compressions: [compressionGzip] },
      ),
    );
    await call(unary, { value: "hi" }, undefined);
    await call(unary, { value: "hi" }, undefined);
    expect(sent).toHaveLength(2);
    expect(sent[0]).not.toBe(sent[1]);
    expect(Object.fromEntries(sent[1]!)).toEqual({
      "content-type": "application/grpc+proto",
      te: "trailers",
      "grpc-accept-encoding": "gzip",
      "x-user": "u",
    });
  });
});
