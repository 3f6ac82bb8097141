import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  createClientConfig,
  type ClientConfig,
  type StreamCaller,
  type UnaryCaller,
} from "./config.ts";
import { createConnectUnaryCaller } from "./connect.ts";
import { createConnectStreamCaller } from "./connect-stream.ts";
import { createGrpcStreamCaller, createGrpcUnaryCaller } from "./grpc.ts";
import {
  createGrpcWebStreamCaller,
  createGrpcWebUnaryCaller,
} from "./grpc-web.ts";
import { Code, codeToString } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import type { HttpClient } from "./http-client.ts";
import type { MethodInfo } from "../core/method.ts";

// A 200 response whose Content-Type is not the one asked for: connect-go's
// rule for every protocol (protocol_connect.go, protocol_grpc.go) is
// Unknown when it is not the protocol's content type at all, Internal when
// it is, with another codec.

const unary: MethodInfo = {
  service: "test.v1.TestService",
  name: "Unary",
  path: "/test.v1.TestService/Unary",
  kind: "unary",
  input: StringValueSchema,
  output: StringValueSchema,
  noSideEffects: false,
};
const serverStream: MethodInfo = {
  ...unary,
  name: "ServerStream",
  kind: "server_streaming",
};

/** A transport whose every response is a 200 with this content type and an empty body. */
function answering(contentType: string): HttpClient {
  return async () => ({
    status: 200,
    header: new Headers({ "content-type": contentType }),
    body: (async function* () {})(),
    trailer: new Headers(),
    contentDecoded: false,
  });
}

type Protocol = "connect" | "grpc" | "grpc-web";

const callers: Record<
  Protocol,
  [
    (config: ClientConfig) => UnaryCaller,
    (config: ClientConfig) => StreamCaller,
  ]
> = {
  connect: [createConnectUnaryCaller, createConnectStreamCaller],
  grpc: [createGrpcUnaryCaller, createGrpcStreamCaller],
  "grpc-web": [createGrpcWebUnaryCaller, createGrpcWebStreamCaller],
};

async function failure(
  protocol: Protocol,
  kind: "unary" | "stream",
  contentType: string,
): Promise<ConnectError> {
  const config = createClientConfig(
    "http://127.0.0.1:1",
    {},
    answering(contentType),
    {},
  );
  const [unaryCaller, streamCaller] = callers[protocol];
  try {
    if (kind === "unary") {
      await unaryCaller(config)(unary, {}, undefined);
    } else {
      const response = await streamCaller(config)(
        serverStream,
        [{}],
        undefined,
      );
      for await (const _ of response.message);
    }
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectError);
    return e as ConnectError;
  }
  throw new Error("the call succeeded");
}

const cases: [Protocol, "unary" | "stream", string, Code][] = [
  ["connect", "unary", "text/html", Code.Unknown],
  ["connect", "unary", "application/json", Code.Internal],
  ["connect", "unary", "application/xml", Code.Internal],
  ["connect", "unary", "application/connect+proto", Code.Internal],
  ["connect", "stream", "text/html", Code.Unknown],
  ["connect", "stream", "application/proto", Code.Unknown],
  ["connect", "stream", "application/connect+json", Code.Internal],
  ["connect", "stream", "application/connect+xml", Code.Internal],
  ["grpc", "unary", "text/html", Code.Unknown],
  ["grpc", "stream", "text/html", Code.Unknown],
  ["grpc", "unary", "application/grpc-web+proto", Code.Unknown],
  ["grpc", "unary", "application/grpc+json", Code.Internal],
  ["grpc", "stream", "application/grpc+xml", Code.Internal],
  ["grpc-web", "unary", "text/html", Code.Unknown],
  ["grpc-web", "stream", "text/html", Code.Unknown],
  ["grpc-web", "unary", "application/grpc+proto", Code.Unknown],
  ["grpc-web", "unary", "application/grpc-web+json", Code.Internal],
  ["grpc-web", "stream", "application/grpc-web+xml", Code.Internal],
];

describe("a 200 response with an unexpected content type to a binary client", () => {
  for (const [protocol, kind, contentType, code] of cases) {
    it(`${protocol} ${kind}, ${contentType} → ${codeToString(code)}`, async () => {
      const error = await failure(protocol, kind, contentType);
      expect(error.code).toBe(code);
      expect(error.rawMessage).toContain(`content type "${contentType}"`);
    });
  }
});
