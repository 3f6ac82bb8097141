import { create, isMessage, toBinary, type Message } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import { gunzipSync, gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { createClientConfig, type ClientOptions } from "./config.ts";
import { createConnectStreamCaller } from "./connect-stream.ts";
import { Code } from "../core/code.ts";
import { jsonCodec } from "../core/codec.ts";
import { compressionGzip } from "../node/compression.ts";
import {
  envelopeEncode,
  envelopeFlagCompressed,
  envelopeFlagEndStream,
} from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import type { HttpClient, HttpRequest } from "./http-client.ts";
import type { MethodInfo } from "../core/method.ts";
import { failure } from "../../test/support/failure.ts";

const method: MethodInfo = {
  service: "test.v1.TestService",
  name: "Bidi",
  path: "/test.v1.TestService/Bidi",
  kind: "bidi_streaming",
  input: StringValueSchema,
  output: StringValueSchema,
  noSideEffects: false,
};

const proto = (value: string) =>
  toBinary(StringValueSchema, create(StringValueSchema, { value }));
const data = (value: string) => envelopeEncode(0, proto(value));
const end = (json: unknown) =>
  envelopeEncode(
    envelopeFlagEndStream,
    new TextEncoder().encode(JSON.stringify(json)),
  );

/** Splits a request body into its envelopes. */
function envelopes(bytes: Uint8Array): { flags: number; data: Uint8Array }[] {
  const list = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let offset = 0; offset < bytes.byteLength;) {
    const length = view.getUint32(offset + 1);
    list.push({
      flags: bytes[offset]!,
      data: bytes.subarray(offset + 5, offset + 5 + length),
    });
    offset += 5 + length;
  }
  return list;
}

interface Recorded {
  request: HttpRequest;
  body: Uint8Array;
}

/**
 * An HttpClient that reads the whole request body, records it, and answers
 * with `chunks` as the body (each a chunk as the transport would hand it).
 */
function stub(
  chunks: readonly Uint8Array[],
  header: HeadersInit = { "content-type": "application/connect+proto" },
  status = 200,
) {
  const requests: Recorded[] = [];
  let responseReturned = false;
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
        try {
          yield* chunks;
        } finally {
          responseReturned = true;
        }
      })(),
      trailer: new Headers(),
      contentDecoded: false,
    };
  };
  return { httpClient, requests, released: () => responseReturned };
}

function caller(
  httpClient: HttpClient,
  options: ClientOptions = {},
  features: Parameters<typeof createClientConfig>[3] = {},
) {
  return createConnectStreamCaller(
    createClientConfig("http://example.test", options, httpClient, features),
  );
}

function valueOf(m: Message): string {
  if (!isMessage(m, StringValueSchema)) throw new Error("not a StringValue");
  return m.value;
}

async function read(messages: AsyncIterable<Message>): Promise<string[]> {
  const values: string[] = [];
  for await (const m of messages) values.push(valueOf(m));
  return values;
}

describe("createConnectStreamCaller, the request", () => {
  it("POSTs the messages in envelopes with Connect's streaming headers", async () => {
    const { httpClient, requests } = stub([end({})]);
    const response = await caller(httpClient, {
      compressions: [compressionGzip],
    })(method, [{ value: "a" }, { value: "b" }], { timeoutMs: 2000 });
    expect(await read(response.message)).toEqual([]);
    const [{ request, body }] = requests as [Recorded];
    expect(request.url).toBe("http://example.test/test.v1.TestService/Bidi");
    expect(request.method).toBe("POST");
    expect(request.header.get("content-type")).toBe(
      "application/connect+proto",
    );
    expect(request.header.get("connect-protocol-version")).toBe("1");
    expect(request.header.get("connect-accept-encoding")).toBe("gzip");
    expect(request.header.get("connect-timeout-ms")).toBe("2000");
    expect(request.header.has("connect-content-encoding")).toBe(false);
    expect(envelopes(body)).toEqual([
      { flags: 0, data: proto("a") },
      { flags: 0, data: proto("b") },
    ]);
  });

  it("compresses request messages at or above compressMinBytes, flagged per envelope", async () => {
    const { httpClient, requests } = stub([end({})]);
    const response = await caller(httpClient, {
      compressions: [compressionGzip],
      sendCompression: "gzip",
      compressMinBytes: 10,
    })(method, [{ value: "s" }, { value: "long enough to compress" }], {});
    await read(response.message);
    const { request, body } = requests[0]!;
    expect(request.header.get("connect-content-encoding")).toBe("gzip");
    const [small, large] = envelopes(body) as [
      { flags: number; data: Uint8Array },
      { flags: number; data: Uint8Array },
    ];
    expect(small).toEqual({ flags: 0, data: proto("s") });
    expect(large.flags).toBe(envelopeFlagCompressed);
    expect(new Uint8Array(gunzipSync(large.data))).toEqual(
      proto("long enough to compress"),
    );
  });

  it("uses the JSON content type and encodes messages as JSON with the JSON codec", async () => {
    const { httpClient, requests } = stub(
      [envelopeEncode(0, new TextEncoder().encode('"pong"')), end({})],
      { "content-type": "application/connect+json" },
    );
    const response = await caller(httpClient, { codec: jsonCodec() }, {})(
      method,
      [{ value: "ping" }],
      {},
    );
    expect(await read(response.message)).toEqual(["pong"]);
    const { request, body } = requests[0]!;
    expect(request.header.get("content-type")).toBe("application/connect+json");
    expect(new TextDecoder().decode(envelopes(body)[0]!.data)).toBe('"ping"');
  });
});

describe("createConnectStreamCaller, the response", () => {
  it("yields the messages, however the chunks split them, then the end-of-stream trailers", async () => {
    const whole = new Uint8Array(
      Buffer.concat([
        data("one"),
        data("two"),
        end({ metadata: { "x-trailer": ["t1", "t2"] } }),
      ]),
    );
    // Split inside the first envelope's header and inside the second's payload.
    const { httpClient } = stub([
      whole.subarray(0, 3),
      whole.subarray(3, 14),
      whole.subarray(14),
    ]);
    let trailer: Headers | undefined;
    const response = await caller(httpClient)(method, [], {
      onTrailer: (t) => (trailer = t),
    });
    expect(await read(response.message)).toEqual(["one", "two"]);
    expect(trailer?.get("x-trailer")).toBe("t1, t2");
    expect(response.trailer.get("x-trailer")).toBe("t1, t2");
  });

  it("decompresses compressed response envelopes", async () => {
    const { httpClient } = stub(
      [
        envelopeEncode(
          envelopeFlagCompressed,
          new Uint8Array(gzipSync(proto("zipped"))),
        ),
        end({}),
      ],
      {
        "content-type": "application/connect+proto",
        "connect-content-encoding": "gzip",
      },
    );
    const response = await caller(httpClient, {
      compressions: [compressionGzip],
    })(method, [], {});
    expect(await read(response.message)).toEqual(["zipped"]);
  });

  it("throws the end-of-stream error after the messages before it, with headers and trailers as metadata", async () => {
    const { httpClient } = stub(
      [
        data("one"),
        end({
          error: { code: "resource_exhausted", message: "too many" },
          metadata: { "x-trailer": ["t"] },
        }),
      ],
      { "content-type": "application/connect+proto", "x-header": "h" },
    );
    const response = await caller(httpClient)(method, [], {});
    const received: string[] = [];
    const error = await failure(
      (async () => {
        for await (const m of response.message) {
          received.push(valueOf(m));
        }
      })(),
    );
    expect(received).toEqual(["one"]);
    expect(error.code).toBe(Code.ResourceExhausted);
    expect(error.rawMessage).toBe("too many");
    expect(error.metadata.get("x-header")).toBe("h");
    expect(error.metadata.get("x-trailer")).toBe("t");
  });

  it("fails with internal when the end-of-stream message is missing", async () => {
    const { httpClient } = stub([data("one")]);
    const response = await caller(httpClient)(method, [], {});
    const error = await failure(read(response.message));
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toMatch(/missing end-of-stream/);
  });

  it("fails with internal on data after the end-of-stream message", async () => {
    const { httpClient } = stub([end({}), data("late")]);
    const response = await caller(httpClient)(method, [], {});
    const error = await failure(read(response.message));
    expect(error.code).toBe(Code.Internal);
  });

  it("fails with internal on an end-of-stream message that is no JSON object", async () => {
    const { httpClient } = stub([
      envelopeEncode(envelopeFlagEndStream, new TextEncoder().encode("[]")),
    ]);
    const response = await caller(httpClient)(method, [], {});
    expect((await failure(read(response.message))).code).toBe(Code.Internal);
  });

  it("fails with internal on a body cut inside an envelope", async () => {
    const { httpClient } = stub([data("one").subarray(0, 4)]);
    const response = await caller(httpClient)(method, [], {});
    expect((await failure(read(response.message))).code).toBe(Code.Internal);
  });

  it("fails with resource_exhausted on a message beyond readMaxBytes", async () => {
    const { httpClient } = stub([data("x".repeat(100)), end({})]);
    const response = await caller(httpClient, { readMaxBytes: 50 })(
      method,
      [],
      {},
    );
    expect((await failure(read(response.message))).code).toBe(
      Code.ResourceExhausted,
    );
  });

  it("maps a non-200 response's JSON error body to its code", async () => {
    const { httpClient } = stub(
      [new TextEncoder().encode(JSON.stringify({ code: "unauthenticated" }))],
      { "content-type": "application/json" },
      401,
    );
    const error = await failure(caller(httpClient)(method, [], {}));
    expect(error.code).toBe(Code.Unauthenticated);
  });

  it("fails a response of another codec with internal, and one that is no Connect stream with unknown", async () => {
    const json = stub([end({})], {
      "content-type": "application/connect+json",
    });
    expect((await failure(caller(json.httpClient)(method, [], {}))).code).toBe(
      Code.Internal,
    );
    const unary = stub([end({})], { "content-type": "application/proto" });
    expect((await failure(caller(unary.httpClient)(method, [], {}))).code).toBe(
      Code.Unknown,
    );
  });

  it("fails with internal on a response compression it does not know", async () => {
    const { httpClient } = stub([end({})], {
      "content-type": "application/connect+proto",
      "connect-content-encoding": "lz4",
    });
    expect((await failure(caller(httpClient)(method, [], {}))).code).toBe(
      Code.Internal,
    );
  });
});

describe("createConnectStreamCaller, cancellation", () => {
  it("leaving the messages early aborts the request's signal and releases the body", async () => {
    const { httpClient, requests, released } = stub([
      data("one"),
      data("two"),
      end({}),
    ]);
    const response = await caller(httpClient)(method, [], {});
    for await (const _ of response.message) break;
    expect(requests[0]!.request.signal.aborted).toBe(true);
    expect(released()).toBe(true);
  });

  it("a caller's abort while reading fails the next read with canceled", async () => {
    const { httpClient } = stub([data("one"), data("two"), end({})]);
    const controller = new AbortController();
    const response = await caller(httpClient)(method, [], {
      signal: controller.signal,
    });
    const received: string[] = [];
    const error = await failure(
      (async () => {
        for await (const m of response.message) {
          received.push(valueOf(m));
          controller.abort();
        }
      })(),
    );
    expect(received).toEqual(["one"]);
    expect(error.code).toBe(Code.Canceled);
  });

  it("a request iterable that throws fails the call with its error, not the transport's", async () => {
    const httpClient: HttpClient = async (request) => {
      // As a transport: the body's failure is a failure to send.
      try {
        for await (const _ of request.body as AsyncIterable<Uint8Array>);
      } catch {
        throw new TypeError("fetch failed");
      }
      throw new Error("unreachable");
    };
    const error = await failure(
      caller(httpClient)(
        method,
        (async function* () {
          yield { value: "one" };
          throw new ConnectError("no more", Code.DataLoss);
        })(),
        {},
      ),
    );
    expect(error.code).toBe(Code.DataLoss);
    expect(error.rawMessage).toBe("no more");
  });
});
