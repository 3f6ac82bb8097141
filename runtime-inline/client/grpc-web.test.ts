import { create, isMessage, toBinary, type Message } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { gunzipSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { createClientConfig, type ClientOptions } from "./config.ts";
import {
  createGrpcWebStreamCaller,
  createGrpcWebUnaryCaller,
} from "./grpc-web.ts";
import { Code } from "../core/code.ts";
import { jsonCodec } from "../core/codec.ts";
import { compressionGzip } from "../node/compression.ts";
import {
  envelopeEncode,
  envelopeFlagCompressed,
  envelopeFlagTrailers,
} from "../core/envelope.ts";
import { grpcWebEncodeTrailers } from "../protocol/grpc-web.ts";
import type { HttpClient, HttpRequest } from "./http-client.ts";
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
const serverStream: MethodInfo = {
  ...unary,
  name: "ServerStream",
  path: "/test.v1.TestService/ServerStream",
  kind: "server_streaming",
};

const proto = (value: string) =>
  toBinary(StringValueSchema, create(StringValueSchema, { value }));
const data = (value: string) => envelopeEncode(0, proto(value));
/** The trailers envelope that ends a gRPC-Web body. */
const trailers = (init: Record<string, string>) =>
  envelopeEncode(
    envelopeFlagTrailers,
    grpcWebEncodeTrailers(new Headers(init)),
  );
const ok = trailers({ "grpc-status": "0" });

interface Recorded {
  request: HttpRequest;
  body: Uint8Array;
}

function stub(
  chunks: readonly Uint8Array[],
  header: HeadersInit = { "content-type": "application/grpc-web+proto" },
  status = 200,
) {
  const requests: Recorded[] = [];
  const httpClient: HttpClient = async (request) => {
    const parts: Uint8Array[] = [];
    const body = request.body;
    if (body instanceof Uint8Array) parts.push(body);
    else if (body !== undefined) for await (const c of body) parts.push(c);
    requests.push({ request, body: new Uint8Array(Buffer.concat(parts)) });
    return {
      status,
      header: new Headers(header),
      body: (async function* () {
        yield* chunks;
      })(),
      // gRPC-Web never reads HTTP trailers: these must be ignored.
      trailer: new Headers({ "grpc-status": "13" }),
      contentDecoded: false,
    };
  };
  return { httpClient, requests };
}

const config = (httpClient: HttpClient, options: ClientOptions = {}) =>
  createClientConfig("http://example.test", options, httpClient, {});

function valueOf(m: Message): string {
  if (!isMessage(m, StringValueSchema)) throw new Error("not a StringValue");
  return m.value;
}

describe("createGrpcWebUnaryCaller", () => {
  it("POSTs one envelope with gRPC-Web's headers", async () => {
    const { httpClient, requests } = stub([data("pong"), ok]);
    const call = createGrpcWebUnaryCaller(
      config(httpClient, { compressions: [compressionGzip] }),
    );
    const response = await call(unary, { value: "ping" }, { timeoutMs: 1500 });
    expect(valueOf(response.message)).toBe("pong");
    const [{ request, body }] = requests as [Recorded];
    expect(request.url).toBe("http://example.test/test.v1.TestService/Unary");
    expect(request.method).toBe("POST");
    expect(request.header.get("content-type")).toBe(
      "application/grpc-web+proto",
    );
    expect(request.header.get("x-grpc-web")).toBe("1");
    expect(request.header.has("te")).toBe(false);
    expect(request.header.get("grpc-accept-encoding")).toBe("gzip");
    expect(request.header.get("grpc-timeout")).toBe("1500m");
    expect(request.header.has("grpc-encoding")).toBe(false);
    expect(body).toEqual(data("ping"));
  });

  it("compresses the request envelope and names its compression", async () => {
    const { httpClient, requests } = stub([data(""), ok]);
    const call = createGrpcWebUnaryCaller(
      config(httpClient, {
        compressions: [compressionGzip],
        sendCompression: "gzip",
        compressMinBytes: 0,
      }),
    );
    await call(unary, { value: "ping" }, {});
    const { request, body } = requests[0]!;
    expect(request.header.get("grpc-encoding")).toBe("gzip");
    expect(body[0]).toBe(envelopeFlagCompressed);
    expect(new Uint8Array(gunzipSync(body.subarray(5)))).toEqual(proto("ping"));
  });

  it("sends and expects JSON with the JSON codec", async () => {
    const { httpClient, requests } = stub(
      [envelopeEncode(0, new TextEncoder().encode('"pong"')), ok],
      { "content-type": "application/grpc-web+json" },
    );
    const call = createGrpcWebUnaryCaller(
      config(httpClient, { codec: jsonCodec() }),
    );
    expect(valueOf((await call(unary, { value: "ping" }, {})).message)).toBe(
      "pong",
    );
    const { request, body } = requests[0]!;
    expect(request.header.get("content-type")).toBe(
      "application/grpc-web+json",
    );
    expect(new TextDecoder().decode(body.subarray(5))).toBe('"ping"');
  });

  it("reads the trailers from the body's last envelope, not from HTTP trailers", async () => {
    const { httpClient } = stub([
      data("pong"),
      trailers({ "grpc-status": "0", "x-trailer": "t" }),
    ]);
    let trailer: Headers | undefined;
    const response = await createGrpcWebUnaryCaller(config(httpClient))(
      unary,
      {},
      { onTrailer: (t) => (trailer = t) },
    );
    expect(trailer?.get("x-trailer")).toBe("t");
    expect(response.trailer.get("x-trailer")).toBe("t");
  });

  it("maps the status in the body's trailers to the error's code and message", async () => {
    const { httpClient } = stub([
      trailers({
        "grpc-status": String(Code.NotFound),
        "grpc-message": "no%20such%20thing",
        "x-trailer": "t",
      }),
    ]);
    const error = await failure(
      createGrpcWebUnaryCaller(config(httpClient))(unary, {}, {}),
    );
    expect(error.code).toBe(Code.NotFound);
    expect(error.rawMessage).toBe("no such thing");
    expect(error.metadata.get("x-trailer")).toBe("t");
  });

  it("takes a trailers-only response's status from its headers", async () => {
    const { httpClient } = stub([], {
      "content-type": "application/grpc-web+proto",
      "grpc-status": String(Code.PermissionDenied),
      "grpc-message": "denied",
    });
    const error = await failure(
      createGrpcWebUnaryCaller(config(httpClient))(unary, {}, {}),
    );
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.rawMessage).toBe("denied");
  });

  it("fails with internal when the body ends without trailers", async () => {
    const { httpClient } = stub([data("pong")]);
    const error = await failure(
      createGrpcWebUnaryCaller(config(httpClient))(unary, {}, {}),
    );
    expect(error.code).toBe(Code.Internal);
  });

  it("fails with internal on data after the trailers", async () => {
    const { httpClient } = stub([data("pong"), ok, data("late")]);
    const error = await failure(
      createGrpcWebUnaryCaller(config(httpClient))(unary, {}, {}),
    );
    expect(error.code).toBe(Code.Internal);
  });

  it("fails with unimplemented when a successful response has no message", async () => {
    const { httpClient } = stub([ok]);
    const error = await failure(
      createGrpcWebUnaryCaller(config(httpClient))(unary, {}, {}),
    );
    expect(error.code).toBe(Code.Unimplemented);
  });

  it("maps an HTTP error status to its code", async () => {
    const { httpClient } = stub([], { "content-type": "text/plain" }, 429);
    const error = await failure(
      createGrpcWebUnaryCaller(config(httpClient))(unary, {}, {}),
    );
    expect(error.code).toBe(Code.Unavailable);
  });

  it("fails a response that is no gRPC-Web with unknown, and one of another codec with internal", async () => {
    const html = stub([], { "content-type": "text/html" });
    expect(
      (
        await failure(
          createGrpcWebUnaryCaller(config(html.httpClient))(unary, {}, {}),
        )
      ).code,
    ).toBe(Code.Unknown);
    const json = stub([], { "content-type": "application/grpc-web+json" });
    expect(
      (
        await failure(
          createGrpcWebUnaryCaller(config(json.httpClient))(unary, {}, {}),
        )
      ).code,
    ).toBe(Code.Internal);
  });

  it("decompresses a compressed response envelope", async () => {
    const { httpClient } = stub(
      [
        envelopeEncode(
          envelopeFlagCompressed,
          new Uint8Array(gzipSync(proto("zipped"))),
        ),
        ok,
      ],
      { "content-type": "application/grpc-web+proto", "grpc-encoding": "gzip" },
    );
    const call = createGrpcWebUnaryCaller(
      config(httpClient, { compressions: [compressionGzip] }),
    );
    expect(valueOf((await call(unary, {}, {})).message)).toBe("zipped");
  });

  it("fails with resource_exhausted on a message beyond readMaxBytes", async () => {
    const { httpClient } = stub([data("x".repeat(100)), ok]);
    const error = await failure(
      createGrpcWebUnaryCaller(config(httpClient, { readMaxBytes: 50 }))(
        unary,
        {},
        {},
      ),
    );
    expect(error.code).toBe(Code.ResourceExhausted);
  });
});

describe("createGrpcWebStreamCaller", () => {
  it("yields every message, then reports the body's trailers", async () => {
    const { httpClient, requests } = stub([
      data("one"),
      data("two"),
      trailers({ "grpc-status": "0", "x-trailer": "t" }),
    ]);
    const response = await createGrpcWebStreamCaller(config(httpClient))(
      serverStream,
      [{ value: "request" }],
      {},
    );
    const values: string[] = [];
    for await (const m of response.message) values.push(valueOf(m));
    expect(values).toEqual(["one", "two"]);
    expect(response.trailer.get("x-trailer")).toBe("t");
    expect(requests[0]!.body).toEqual(data("request"));
    expect(requests[0]!.request.header.get("x-grpc-web")).toBe("1");
  });

  it("throws the error status after the messages before it", async () => {
    const { httpClient } = stub([
      data("one"),
      trailers({ "grpc-status": String(Code.Aborted), "grpc-message": "stop" }),
    ]);
    const response = await createGrpcWebStreamCaller(config(httpClient))(
      serverStream,
      [],
      {},
    );
    const values: string[] = [];
    const error = await failure(
      (async () => {
        for await (const m of response.message) values.push(valueOf(m));
      })(),
    );
    expect(values).toEqual(["one"]);
    expect(error.code).toBe(Code.Aborted);
    expect(error.rawMessage).toBe("stop");
  });

  it("leaving the messages early aborts the request's signal", async () => {
    const { httpClient, requests } = stub([data("one"), data("two"), ok]);
    const response = await createGrpcWebStreamCaller(config(httpClient))(
      serverStream,
      [],
      {},
    );
    for await (const _ of response.message) break;
    expect(requests[0]!.request.signal.aborted).toBe(true);
  });
});
