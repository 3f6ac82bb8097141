import { describe, expect, it } from "vitest";
import { createClientConfig } from "./config.ts";
import { createConnectUnaryCaller } from "./connect.ts";
import { createConnectStreamCaller } from "./connect-stream.ts";
import { createGrpcStreamCaller, createGrpcUnaryCaller } from "./grpc.ts";
import {
  createGrpcWebStreamCaller,
  createGrpcWebUnaryCaller,
} from "./grpc-web.ts";
import { clientProtocol, type ClientProtocol } from "./protocol.ts";
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

describe("clientProtocol", () => {
  it("picks the first protocol by default", () => {
    expect(clientProtocol(undefined, protocols)).toBe(protocols[0]);
  });

  it("picks the one asked for", () => {
    expect(clientProtocol("grpc-web", protocols)).toBe(protocols[2]);
  });

  it("names the protocols the file has when asked for another", () => {
    expect(() => clientProtocol("grpc", [protocols[0], protocols[2]])).toThrow(
      'protocol "grpc" is not available: this client was generated with connect, grpc-web (plugin option "protocols")',
    );
  });

  it("keeps the factories of the protocols it is given", () => {
    // A unary-only file: no stream factory, and the result has none either.
    const picked = clientProtocol(undefined, [
      { name: "grpc", unary: createGrpcUnaryCaller },
    ]);
    expect(picked.unary).toBe(createGrpcUnaryCaller);
    expect("stream" in picked).toBe(false);
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
