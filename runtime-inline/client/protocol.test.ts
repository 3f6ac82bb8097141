import { describe, expect, it } from "vitest";
import { createClientConfig, type ClientProtocol } from "./config.ts";
import { createConnectUnaryCaller } from "./connect.ts";
import { createConnectStreamCaller } from "./connect-stream.ts";
import { createGrpcStreamCaller, createGrpcUnaryCaller } from "./grpc.ts";
import {
  createGrpcWebStreamCaller,
  createGrpcWebUnaryCaller,
} from "./grpc-web.ts";
import { clientProtocolCaller } from "./protocol.ts";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import type { HttpClient } from "./http-client.ts";
import type { MethodInfo } from "../core/method.ts";

/** Every protocol with both factories, as a file with both kinds of methods has them. */
const protocols = [
  {
    name: "connect",
    unary: createConnectUnaryCaller,
    stream: createConnectStreamCaller,
  },
  {
    name: "grpc",
    unary: createGrpcUnaryCaller,
    stream: createGrpcStreamCaller,
  },
  {
    name: "grpc-web",
    unary: createGrpcWebUnaryCaller,
    stream: createGrpcWebStreamCaller,
  },
] as const satisfies readonly ClientProtocol[];

const unary: MethodInfo = {
  service: "test.v1.TestService",
  name: "Unary",
  path: "/test.v1.TestService/Unary",
  kind: "unary",
  input: StringValueSchema,
  output: StringValueSchema,
  noSideEffects: false,
};
const stream: MethodInfo = { ...unary, kind: "bidi_streaming" };

/** An HttpClient that records the content type of each request and fails it. */
function recorder() {
  const contentTypes: (string | null)[] = [];
  const httpClient: HttpClient = async (request) => {
    contentTypes.push(request.header.get("content-type"));
    throw new Error("recorded");
  };
  return { httpClient, contentTypes };
}

describe("clientProtocolCaller", () => {
  it("gives the protocol's factory of the kind asked for", () => {
    expect(clientProtocolCaller(protocols[1], "unary")).toBe(
      createGrpcUnaryCaller,
    );
    expect(clientProtocolCaller(protocols[2], "stream")).toBe(
      createGrpcWebStreamCaller,
    );
  });

  it("refuses a protocol value without the kind, as one of a unary-only file is", () => {
    const unaryOnly: ClientProtocol = {
      name: "grpc",
      unary: createGrpcUnaryCaller,
    };
    expect(() => clientProtocolCaller(unaryOnly, "stream")).toThrow(
      'protocol "grpc" has no streaming calls: it comes from a file without such methods; pass the value exported by this service\'s file',
    );
  });

  it("refuses a protocol name, which older generated code took", () => {
    // As a JavaScript caller, or one that casts, could pass it.
    const name = "grpc-web" as unknown as ClientProtocol;
    expect(() => clientProtocolCaller(name, "unary")).toThrow(
      'protocol must be a protocol value that a generated file exports (connectProtocol, grpcProtocol or grpcWebProtocol), not "grpc-web"',
    );
  });
});

describe("the ClientProtocols of Connect, gRPC and gRPC-Web", () => {
  const expected = {
    connect: ["application/proto", "application/connect+proto"],
    grpc: ["application/grpc+proto", "application/grpc+proto"],
    "grpc-web": ["application/grpc-web+proto", "application/grpc-web+proto"],
  };
  for (const protocol of protocols) {
    it(`${protocol.name}: its callers speak ${protocol.name}`, async () => {
      const { httpClient, contentTypes } = recorder();
      const config = createClientConfig("http://a.test", {}, httpClient, {});
      await protocol
        .unary(config)(unary, {}, {})
        .catch(() => {});
      await protocol
        .stream(config)(stream, [], {})
        .catch(() => {});
      expect(contentTypes).toEqual(expected[protocol.name]);
    });
  }
});
