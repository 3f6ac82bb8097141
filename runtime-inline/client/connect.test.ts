import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { gunzipSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { createClientConfig, type ClientOptions } from "./config.ts";
import { connectGetRequest, createConnectUnaryCaller } from "./connect.ts";
import { Code } from "../core/code.ts";
import { jsonCodec } from "../core/codec.ts";
import { compressionGzip } from "../node/compression.ts";
import type { HttpClient, HttpRequest, HttpResponse } from "./http-client.ts";
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
const getMethod: MethodInfo = { ...unary, noSideEffects: true };

const proto = (value: string) =>
  toBinary(StringValueSchema, create(StringValueSchema, { value }));

async function collect(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return new Uint8Array(Buffer.concat(chunks));
}

interface Reply {
  readonly status?: number;
  readonly header?: HeadersInit;
  readonly body?: Uint8Array | string;
  readonly contentDecoded?: boolean;
}

/**
 * An HttpClient that records each request, its body read to bytes, and
 * answers with `reply`.
 */
function stub(reply: Reply | ((request: HttpRequest) => Reply)) {
  const requests: { request: HttpRequest; body: Uint8Array | undefined }[] = [];
  const httpClient: HttpClient = async (request) => {
    const body = request.body;
    requests.push({
      request,
      body:
        body === undefined || body instanceof Uint8Array
          ? body
          : await collect(body),
    });
    const r = typeof reply === "function" ? reply(request) : reply;
    const data =
      typeof r.body === "string"
        ? new TextEncoder().encode(r.body)
        : (r.body ?? new Uint8Array());
    const response: HttpResponse = {
      status: r.status ?? 200,
      header: new Headers(r.header ?? { "content-type": "application/proto" }),
      body: (async function* () {
        yield data;
      })(),
      trailer: new Headers(),
      contentDecoded: r.contentDecoded ?? false,
    };
    return response;
  };
  return { httpClient, requests };
}

function caller(
  httpClient: HttpClient,
  options: ClientOptions = {},
  features: Parameters<typeof createClientConfig>[3] = {},
) {
  return createConnectUnaryCaller(
    createClientConfig("http://example.test/", options, httpClient, features),
  );
}

describe("createConnectUnaryCaller, the request", () => {
  it("POSTs the binary message to the method's path with Connect's headers", async () => {
    const { httpClient, requests } = stub({ body: proto("pong") });
    const response = await caller(httpClient)(unary, { value: "ping" }, {});
    expect(response.message).toEqual(
      create(StringValueSchema, { value: "pong" }),
    );
    const [{ request, body }] = requests as [(typeof requests)[0]];
    expect(request.url).toBe("http://example.test/test.v1.TestService/Unary");
    expect(request.method).toBe("POST");
    expect(request.header.get("content-type")).toBe("application/proto");
    expect(request.header.get("connect-protocol-version")).toBe("1");
    expect(request.header.has("content-encoding")).toBe(false);
    expect(request.header.has("connect-timeout-ms")).toBe(false);
    expect(body).toEqual(proto("ping"));
  });

  it("adds its headers to a copy of those an interceptor passes on, which it may share between calls", async () => {
    const { httpClient, requests } = stub({ body: proto("pong") });
    const shared = new Headers({ "x-shared": "1" });
    const call = caller(httpClient, {
      interceptors: [
        (next) => (request) => next({ ...request, header: shared }),
      ],
    });
    await call(unary, {}, {});
    await call(unary, {}, {});
    expect([...shared]).toEqual([["x-shared", "1"]]);
    for (const { request } of requests) {
      expect(request.header).not.toBe(shared);
      expect(request.header.get("x-shared")).toBe("1");
      expect(request.header.get("content-type")).toBe("application/proto");
    }
  });

  it("sends and expects JSON with the JSON codec", async () => {
    const { httpClient, requests } = stub({
      header: { "content-type": "application/json" },
      body: '"pong"',
    });
    const response = await caller(httpClient, { codec: jsonCodec() }, {})(
      unary,
      { value: "ping" },
      {},
    );
    expect(response.message).toEqual(
      create(StringValueSchema, { value: "pong" }),
    );
    const [{ request, body }] = requests as [(typeof requests)[0]];
    expect(request.header.get("content-type")).toBe("application/json");
    expect(new TextDecoder().decode(body)).toBe(
      toJsonString(
        StringValueSchema,
        create(StringValueSchema, { value: "ping" }),
      ),
    );
  });

  it("sends the timeout as connect-timeout-ms, whole milliseconds rounded up", async () => {
    const { httpClient, requests } = stub({ body: proto("") });
    await caller(httpClient)(unary, {}, { timeoutMs: 1500.2 });
    expect(requests[0]!.request.header.get("connect-timeout-ms")).toBe("1501");
  });

  it("merges the client's and the call's headers, the call's winning", async () => {
    const { httpClient, requests } = stub({ body: proto("") });
    await caller(httpClient, { headers: { "x-a": "client", "x-b": "client" } })(
      unary,
      {},
      { headers: { "x-b": "call" } },
    );
    const header = requests[0]!.request.header;
    expect(header.get("x-a")).toBe("client");
    expect(header.get("x-b")).toBe("call");
  });

  it("compresses requests at or above compressMinBytes and offers its compressions", async () => {
    const { httpClient, requests } = stub({ body: proto("") });
    const call = caller(httpClient, {
      compressions: [compressionGzip],
      sendCompression: "gzip",
      compressMinBytes: 10,
    });
    await call(unary, { value: "short" }, {});
    await call(unary, { value: "long enough to compress" }, {});
    const [small, large] = requests as [
      (typeof requests)[0],
      (typeof requests)[0],
    ];
    expect(small.request.header.get("accept-encoding")).toBe("gzip");
    expect(small.request.header.has("content-encoding")).toBe(false);
    expect(small.body).toEqual(proto("short"));
    expect(large.request.header.get("content-encoding")).toBe("gzip");
    expect(new Uint8Array(gunzipSync(large.body!))).toEqual(
      proto("long enough to compress"),
    );
  });

  it("refuses a send compression it does not have, before sending", async () => {
    const { httpClient, requests } = stub({ body: proto("") });
    const error = await failure(
      caller(httpClient)(unary, {}, { sendCompression: "br" }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(requests).toHaveLength(0);
  });

  it("refuses a negative timeout, before sending", async () => {
    const { httpClient, requests } = stub({ body: proto("") });
    const error = await failure(
      caller(httpClient)(unary, {}, { timeoutMs: -1 }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(requests).toHaveLength(0);
  });
});

describe("createConnectUnaryCaller, GET", () => {
  it("GETs NO_SIDE_EFFECTS methods with the message in the query when useHttpGet is set", async () => {
    const { httpClient, requests } = stub({ body: proto("pong") });
    await caller(httpClient, { useHttpGet: true }, { get: connectGetRequest })(
      getMethod,
      { value: "ping" },
      {},
    );
    const [{ request, body }] = requests as [(typeof requests)[0]];
    expect(request.method).toBe("GET");
    expect(body).toBeUndefined();
    const url = new URL(request.url);
    expect(url.pathname).toBe("/test.v1.TestService/Unary");
    expect([...url.searchParams.keys()]).toEqual([
      "connect",
      "base64",
      "encoding",
      "message",
    ]);
    expect(url.searchParams.get("connect")).toBe("v1");
    expect(url.searchParams.get("encoding")).toBe("proto");
    expect(
      new Uint8Array(
        Buffer.from(url.searchParams.get("message")!, "base64url"),
      ),
    ).toEqual(proto("ping"));
    expect(request.header.has("content-type")).toBe(false);
    expect(request.header.has("connect-protocol-version")).toBe(false);
  });

  it("puts JSON in the query as text", async () => {
    const { httpClient, requests } = stub({
      header: { "content-type": "application/json" },
      body: '"pong"',
    });
    await caller(
      httpClient,
      { useHttpGet: true, codec: jsonCodec() },
      { get: connectGetRequest },
    )(getMethod, { value: "a b&c" }, {});
    const url = new URL(requests[0]!.request.url);
    expect(url.searchParams.has("base64")).toBe(false);
    expect(url.searchParams.get("encoding")).toBe("json");
    expect(url.searchParams.get("message")).toBe('"a b&c"');
  });

  it("names a request compression in the query", async () => {
    const { httpClient, requests } = stub({ body: proto("") });
    await caller(
      httpClient,
      {
        useHttpGet: true,
        compressions: [compressionGzip],
        sendCompression: "gzip",
        compressMinBytes: 0,
      },
      { get: connectGetRequest },
    )(getMethod, { value: "ping" }, {});
    const url = new URL(requests[0]!.request.url);
    expect(url.searchParams.get("compression")).toBe("gzip");
    const message = Buffer.from(url.searchParams.get("message")!, "base64url");
    expect(new Uint8Array(gunzipSync(message))).toEqual(proto("ping"));
  });

  it("POSTs methods with side effects, and everything when the file has no GET", async () => {
    const { httpClient, requests } = stub({ body: proto("") });
    await caller(httpClient, { useHttpGet: true }, { get: connectGetRequest })(
      unary,
      {},
      {},
    );
    await caller(httpClient, { useHttpGet: true })(getMethod, {}, {});
    expect(requests.map((r) => r.request.method)).toEqual(["POST", "POST"]);
  });
});

describe("createConnectUnaryCaller, the response", () => {
  it("splits trailer- headers off as trailers and reports both", async () => {
    const { httpClient } = stub({
      header: {
        "content-type": "application/proto",
        "x-header": "h",
        "trailer-x-trailer": "t",
      },
      body: proto(""),
    });
    let header: Headers | undefined;
    let trailer: Headers | undefined;
    const response = await caller(httpClient)(
      unary,
      {},
      { onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) },
    );
    expect(header?.get("x-header")).toBe("h");
    expect(header?.has("trailer-x-trailer")).toBe(false);
    expect(trailer?.get("x-trailer")).toBe("t");
    expect(response.trailer.get("x-trailer")).toBe("t");
  });

  it("splits the same whichever of headers and trailers is read first, and gives the same objects on every read", async () => {
    const { httpClient } = stub({
      header: {
        "content-type": "application/proto",
        "x-header": "h",
        "trailer-x-trailer": "t",
      },
      body: proto(""),
    });
    const trailerFirst = await caller(httpClient)(unary, {}, {});
    expect([...trailerFirst.trailer]).toEqual([["x-trailer", "t"]]);
    expect(trailerFirst.header.has("trailer-x-trailer")).toBe(false);
    expect(trailerFirst.header.get("x-header")).toBe("h");
    const headerFirst = await caller(httpClient)(unary, {}, {});
    expect(headerFirst.header.get("x-header")).toBe("h");
    expect(headerFirst.header.has("trailer-x-trailer")).toBe(false);
    expect(headerFirst.trailer.get("x-trailer")).toBe("t");
    expect(headerFirst.header).toBe(headerFirst.header);
    expect(headerFirst.trailer).toBe(headerFirst.trailer);
  });

  it("gives interceptors a response they can spread, headers and trailers included", async () => {
    const { httpClient } = stub({
      header: {
        "content-type": "application/proto",
        "x-header": "h",
        "trailer-x-trailer": "t",
      },
      body: proto("pong"),
    });
    const response = await caller(httpClient, {
      interceptors: [
        (next) => async (request) => ({ ...(await next(request)) }),
      ],
    })(unary, {}, {});
    expect(response.header.get("x-header")).toBe("h");
    expect(response.trailer.get("x-trailer")).toBe("t");
    expect(response.message).toEqual(
      create(StringValueSchema, { value: "pong" }),
    );
  });

  it("reports the transport's headers as they are, and empty trailers of the call's own, when there are no trailer- headers", async () => {
    const { httpClient } = stub({ body: proto("") });
    const first = await caller(httpClient)(unary, {}, {});
    const second = await caller(httpClient)(unary, {}, {});
    expect([...first.header]).toEqual([["content-type", "application/proto"]]);
    expect([...first.trailer]).toEqual([]);
    first.trailer.set("x-mine", "1");
    expect(second.trailer.has("x-mine")).toBe(false);
  });

  it("decompresses a response in a compression it offered", async () => {
    const { httpClient } = stub({
      header: {
        "content-type": "application/proto",
        "content-encoding": "gzip",
      },
      body: new Uint8Array(gzipSync(proto("zipped"))),
    });
    const response = await caller(httpClient, {
      compressions: [compressionGzip],
    })(unary, {}, {});
    expect(response.message).toEqual(
      create(StringValueSchema, { value: "zipped" }),
    );
  });

  it("takes a body the HTTP client decoded as it is", async () => {
    const { httpClient } = stub({
      header: {
        "content-type": "application/proto",
        "content-encoding": "gzip",
      },
      body: proto("decoded"),
      contentDecoded: true,
    });
    const response = await caller(httpClient)(unary, {}, {});
    expect(response.message).toEqual(
      create(StringValueSchema, { value: "decoded" }),
    );
  });

  it("fails with internal on a compression it does not know", async () => {
    const { httpClient } = stub({
      header: {
        "content-type": "application/proto",
        "content-encoding": "lz4",
      },
      body: proto(""),
    });
    const error = await failure(caller(httpClient)(unary, {}, {}));
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toMatch(/lz4/);
  });

  it("maps a Connect error body to its code, message and metadata", async () => {
    const { httpClient } = stub({
      status: 404,
      header: {
        "content-type": "application/json",
        "x-header": "h",
        "trailer-x-trailer": "t",
      },
      body: JSON.stringify({ code: "permission_denied", message: "no" }),
    });
    const error = await failure(caller(httpClient)(unary, {}, {}));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.rawMessage).toBe("no");
    expect(error.metadata.get("x-header")).toBe("h");
    expect(error.metadata.get("x-trailer")).toBe("t");
  });

  it("infers the code from the HTTP status of a body that is no Connect error", async () => {
    const { httpClient } = stub({
      status: 503,
      header: { "content-type": "text/html" },
      body: "<html>busy</html>",
    });
    const error = await failure(caller(httpClient)(unary, {}, {}));
    expect(error.code).toBe(Code.Unavailable);
  });

  it("fails a response of another codec with internal, and one that is no Connect response with unknown", async () => {
    const json = stub({
      header: { "content-type": "application/json" },
      body: '""',
    });
    expect((await failure(caller(json.httpClient)(unary, {}, {}))).code).toBe(
      Code.Internal,
    );
    const html = stub({ header: { "content-type": "text/html" }, body: "" });
    expect((await failure(caller(html.httpClient)(unary, {}, {}))).code).toBe(
      Code.Unknown,
    );
  });

  it("fails with resource_exhausted on a body beyond readMaxBytes", async () => {
    const { httpClient } = stub({ body: proto("x".repeat(100)) });
    const error = await failure(
      caller(httpClient, { readMaxBytes: 50 })(unary, {}, {}),
    );
    expect(error.code).toBe(Code.ResourceExhausted);
  });

  it("fails with resource_exhausted when a compressed body inflates beyond readMaxBytes", async () => {
    const { httpClient } = stub({
      header: {
        "content-type": "application/proto",
        "content-encoding": "gzip",
      },
      body: new Uint8Array(gzipSync(proto("x".repeat(1000)))),
    });
    const error = await failure(
      caller(httpClient, {
        compressions: [compressionGzip],
        readMaxBytes: 100,
      })(unary, {}, {}),
    );
    expect(error.code).toBe(Code.ResourceExhausted);
  });

  it("fails with unavailable when the HTTP client throws", async () => {
    const error = await failure(
      caller(() => Promise.reject(new TypeError("fetch failed")))(
        unary,
        {},
        {},
      ),
    );
    expect(error.code).toBe(Code.Unavailable);
  });
});

describe("createConnectUnaryCaller, cancellation", () => {
  it("passes an aborted signal to the HTTP client and fails with canceled", async () => {
    let seen: AbortSignal | undefined;
    const httpClient: HttpClient = (request) => {
      seen = request.signal;
      return new Promise((_, reject) =>
        request.signal.addEventListener("abort", () =>
          reject(request.signal.reason),
        ),
      );
    };
    const controller = new AbortController();
    const pending = caller(httpClient)(
      unary,
      {},
      { signal: controller.signal },
    );
    controller.abort();
    const error = await failure(pending);
    expect(error.code).toBe(Code.Canceled);
    expect(seen?.aborted).toBe(true);
  });

  it("fails with deadline_exceeded when the timeout fires first", async () => {
    const httpClient: HttpClient = (request) =>
      new Promise((_, reject) =>
        request.signal.addEventListener("abort", () =>
          reject(request.signal.reason),
        ),
      );
    const error = await failure(
      caller(httpClient)(unary, {}, { timeoutMs: 1 }),
    );
    expect(error.code).toBe(Code.DeadlineExceeded);
  });
});
