import { testServiceDesc } from "../../test/support/server.ts";
import { create, toBinary } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import { compressionGzip } from "../node/compression.ts";
import { envelopeEncode } from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import type {
  HandlerContext,
  MethodHandler,
  ServerRequest,
  ServerResponse,
} from "./handler.ts";
import type { MethodInfo } from "../core/method.ts";
import { grpcWebServer } from "./grpc-web.ts";
import { grpcServeStream, grpcServer } from "./grpc.ts";
import { createServiceHandler } from "./router.ts";

function method(name: string, kind: MethodInfo["kind"]): MethodInfo {
  return {
    service: "test.v1.TestService",
    name,
    path: `/test.v1.TestService/${name}`,
    kind,
    input: StringValueSchema,
    output: StringValueSchema,
    noSideEffects: false,
  };
}

// Sets a response header, then fails before its first message.
function failing(context: HandlerContext): never {
  context.responseHeaders.set("x-custom-header", "set before the error");
  context.responseTrailers.set("x-custom-trailer", "trailer");
  throw new ConnectError("refused", Code.FailedPrecondition);
}

const methods: MethodHandler[] = [
  {
    method: method("Unary", "unary"),
    unary: (_request, context) => failing(context),
  },
  {
    method: method("ServerStream", "server_streaming"),
    stream: async function* (_requests, context) {
      failing(context);
    },
  },
  {
    method: method("NoHeaders", "server_streaming"),
    stream: async function* () {
      throw new ConnectError("refused", Code.FailedPrecondition);
    },
  },
];

const service = createServiceHandler(
  testServiceDesc,
  methods,
  {},
  {
    compressions: [compressionGzip],
    protocols: [grpcServer(grpcServeStream), grpcWebServer(grpcServeStream)],
  },
);

function request(path: string, contentType: string): ServerRequest {
  const body = envelopeEncode(
    0,
    toBinary(StringValueSchema, create(StringValueSchema, { value: "hi" })),
  );
  const header = new Headers({ "content-type": contentType });
  return {
    method: "POST",
    path,
    search: "",
    url: `http://127.0.0.1${path}`,
    header: (name) => header.get(name),
    headers: () => header,
    body: (async function* () {
      yield body;
    })(),
    signal: new AbortController().signal,
    httpVersion: "2",
  };
}

async function serve(
  path: string,
  contentType: string,
): Promise<ServerResponse> {
  const response = await service.handle(request(path, contentType));
  if (response === undefined) throw new Error(`no handler for ${path}`);
  return response;
}

describe("gRPC server, a call that fails before its first message", () => {
  for (const name of ["Unary", "ServerStream"]) {
    it(`${name}: sends the implementation's headers as headers, the status as trailers`, async () => {
      // grpc-go reports no response headers for a trailers-only response.
      const response = await serve(
        `/test.v1.TestService/${name}`,
        "application/grpc",
      );
      expect(response.status).toBe(200);
      expect(response.header.get("x-custom-header")).toBe(
        "set before the error",
      );
      expect(response.header.has("grpc-status")).toBe(false);
      expect(response.body).toBeUndefined();
      const trailer = response.trailer;
      expect(trailer?.get("grpc-status")).toBe(String(Code.FailedPrecondition));
      expect(trailer?.get("grpc-message")).toBe("refused");
      expect(trailer?.get("x-custom-trailer")).toBe("trailer");
      expect(trailer?.has("x-custom-header")).toBe(false);
    });
  }

  it("without response headers: one trailers-only response", async () => {
    const response = await serve(
      "/test.v1.TestService/NoHeaders",
      "application/grpc",
    );
    expect(response.trailer).toBeUndefined();
    expect(response.body).toBeUndefined();
    expect(response.header.get("grpc-status")).toBe(
      String(Code.FailedPrecondition),
    );
    expect(response.header.get("content-type")).toBe("application/grpc+proto");
  });

  it("gRPC-Web: the headers in the headers, the status as the only envelope", async () => {
    const response = await serve(
      "/test.v1.TestService/ServerStream",
      "application/grpc-web",
    );
    expect(response.header.get("x-custom-header")).toBe("set before the error");
    expect(response.header.has("grpc-status")).toBe(false);
    expect(response.trailer).toBeUndefined();
    const body = response.body;
    if (!(body instanceof Uint8Array)) throw new Error("expected a whole body");
    expect(body[0]).toBe(0x80);
    const text = new TextDecoder().decode(body.subarray(5));
    expect(text).toContain(`grpc-status: ${Code.FailedPrecondition}`);
    expect(text).toContain("x-custom-trailer: trailer");
  });
});
