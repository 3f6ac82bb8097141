import { create, toBinary } from "@bufbuild/protobuf";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import {
  afterAll,
  afterEach,
  beforeAll,
  describe,
  expect,
  it,
  vi,
} from "vitest";
import { clientNeverAborted, createClientConfig } from "../client/config.ts";
import { createConnectUnaryCaller } from "../client/connect.ts";
import { createConnectStreamCaller } from "../client/connect-stream.ts";
import { createGrpcWebStreamCaller } from "../client/grpc-web.ts";
import type { HttpRequest } from "../client/http-client.ts";
import { bodyFromWebStream } from "../core/body.ts";
import { Code } from "../core/code.ts";
import {
  envelopeEncode,
  envelopeFlagEndStream,
  envelopeFlagTrailers,
} from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import type { MethodInfo, MethodKind } from "../core/method.ts";
import { createFetchHttpClient, fetchHttpClient } from "./fetch-client.ts";

function bytes(...values: number[]): Uint8Array<ArrayBuffer> {
  return new Uint8Array(values);
}

function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function collect(source: AsyncIterable<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const chunk of source) out.push(...chunk);
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

function request(init: Partial<HttpRequest> = {}): HttpRequest {
  return {
    url: "http://127.0.0.1:1/test.v1.TestService/Echo",
    method: "POST",
    header: new Headers({ "content-type": "application/proto" }),
    body: bytes(1, 2, 3),
    signal: new AbortController().signal,
    ...init,
  };
}

/** A fetch that records what it was asked and answers with `response`. */
function stubFetch(response: () => Response = () => new Response(bytes(9))) {
  const calls: { url: string; init: RequestInit & { duplex?: string } }[] = [];
  const fetchFn = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return response();
  }) as typeof fetch;
  return { fetchFn, calls };
}

describe("fetchHttpClient with a stubbed fetch", () => {
  it("sends a whole body as it is, with the request's method, headers and signal, refusing redirects", async () => {
    const { fetchFn, calls } = stubFetch();
    const sent = request();
    await createFetchHttpClient(fetchFn)(sent);
    expect(calls).toHaveLength(1);
    const { url, init } = calls[0]!;
    expect(url).toBe(sent.url);
    expect(init.method).toBe("POST");
    expect(init.headers).toBe(sent.header);
    expect(init.signal).toBe(sent.signal);
    expect(init.redirect).toBe("error");
    expect(init.body).toBe(sent.body);
    expect("duplex" in init).toBe(false);
  });

  it("gives fetch no signal for a unary call nothing can abort (the shared clientNeverAborted), so that fetch keeps no listener on it", async () => {
    const { fetchFn, calls } = stubFetch();
    await createFetchHttpClient(fetchFn)(
      request({ signal: clientNeverAborted }),
    );
    expect(calls[0]!.init.signal).toBeNull();
  });

  it("sends no body for a request without one", async () => {
    const { fetchFn, calls } = stubFetch();
    await createFetchHttpClient(fetchFn)(
      request({ method: "GET", body: undefined }),
    );
    expect(calls[0]!.init.method).toBe("GET");
    expect(calls[0]!.init.body).toBeUndefined();
    expect("duplex" in calls[0]!.init).toBe(false);
  });

  it("sends a streaming body as a half-duplex web stream of the same chunks", async () => {
    const { fetchFn, calls } = stubFetch();
    let pulled = 0;
    const body = (async function* () {
      for (const chunk of [bytes(1), bytes(2, 3)]) {
        pulled++;
        yield chunk;
      }
    })();
    await createFetchHttpClient(fetchFn)(request({ body }));
    const init = calls[0]!.init;
    expect(init.duplex).toBe("half");
    expect(init.body).toBeInstanceOf(ReadableStream);
    // Nothing is pulled before fetch reads the stream.
    expect(pulled).toBe(0);
    const reader = (init.body as ReadableStream<Uint8Array>).getReader();
    const chunks: Uint8Array[] = [];
    for (;;) {
      const result = await reader.read();
      if (result.done) break;
      chunks.push(result.value);
    }
    expect(chunks).toEqual([bytes(1), bytes(2, 3)]);
  });

  it("without toWebStream, still sends whole bodies", async () => {
    const { fetchFn, calls } = stubFetch();
    const response = await fetchHttpClient(fetchFn)(request());
    expect(calls[0]!.init.body).toEqual(bytes(1, 2, 3));
    expect(await collect(response.body)).toEqual([9]);
  });

  it("answers with the status, the headers, the body, empty trailers, and the body already decoded", async () => {
    const headers = new Headers({ "content-type": "application/proto" });
    const { fetchFn } = stubFetch(
      () => new Response(bytes(4, 5, 6), { status: 418, headers }),
    );
    const response = await createFetchHttpClient(fetchFn)(request());
    expect(response.status).toBe(418);
    expect(response.header.get("content-type")).toBe("application/proto");
    expect(response.contentDecoded).toBe(true);
    expect(await collect(response.body)).toEqual([4, 5, 6]);
    expect([...response.trailer]).toEqual([]);
  });

  it("answers a response without a body with an empty body", async () => {
    const { fetchFn } = stubFetch(() => new Response(null, { status: 204 }));
    const response = await createFetchHttpClient(fetchFn)(request());
    expect(response.status).toBe(204);
    expect(await collect(response.body)).toEqual([]);
  });

  it("turns a body cut off into Unavailable, saying what failed", async () => {
    const terminated = new TypeError("terminated", {
      cause: new Error("other side closed"),
    });
    let pulls = 0;
    const { fetchFn } = stubFetch(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull(controller) {
              if (pulls++ === 0) {
                controller.enqueue(bytes(1));
              } else {
                controller.error(terminated);
              }
            },
          }),
        ),
    );
    const response = await createFetchHttpClient(fetchFn)(request());
    const received: number[] = [];
    const error = await rejection(
      (async () => {
        for await (const chunk of response.body) received.push(...chunk);
      })(),
    );
    expect(received).toEqual([1]);
    expect(error).toBeInstanceOf(ConnectError);
    expect(error).toMatchObject({
      code: Code.Unavailable,
      rawMessage: "terminated: other side closed",
      cause: terminated,
    });
  });

  it("leaves a failure of fetch to send a whole body to the caller, as it is", async () => {
    const failure = new TypeError("fetch failed");
    const fetchFn = (() => Promise.reject(failure)) as typeof fetch;
    await expect(createFetchHttpClient(fetchFn)(request())).rejects.toBe(
      failure,
    );
  });

  it("fails a streaming body fetch refuses as unavailable, saying that a browser streams request bodies only over HTTP/2, with fetch's error as cause", async () => {
    // What Chromium does with a streaming upload over HTTP/1.1.
    const failure = new TypeError("Failed to fetch");
    const fetchFn = ((_url: string, init: RequestInit) =>
      init.body instanceof ReadableStream
        ? Promise.reject(failure)
        : Promise.resolve(new Response(bytes(9)))) as typeof fetch;
    const client = createFetchHttpClient(fetchFn);
    // A whole body goes through.
    await client(request());
    const error = await rejection(
      client(request({ body: (async function* () {})() })),
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect(error).toMatchObject({
      code: Code.Unavailable,
      rawMessage:
        "Failed to fetch (client- and bidi-streaming calls from a browser need HTTP/2: fetch streams a request body only over HTTP/2)",
      cause: failure,
    });
  });

  it("keeps what fetch says of a streaming body it could not send, causes included", async () => {
    const failure = new TypeError("fetch failed", {
      cause: new Error("connect ECONNREFUSED 127.0.0.1:1"),
    });
    const fetchFn = (() => Promise.reject(failure)) as typeof fetch;
    const error = await rejection(
      createFetchHttpClient(fetchFn)(
        request({ body: (async function* () {})() }),
      ),
    );
    expect((error as ConnectError).rawMessage).toMatch(
      /^fetch failed: connect ECONNREFUSED 127\.0\.0\.1:1 \(client- and bidi-streaming calls from a browser need HTTP\/2/,
    );
    expect((error as ConnectError).cause).toBe(failure);
  });

  it("leaves an abort, and a ConnectError of the fetch's own, of a streaming body as they are", async () => {
    const controller = new AbortController();
    controller.abort();
    const abort = new DOMException("aborted", "AbortError");
    const mine = new ConnectError("mine", Code.PermissionDenied);
    for (const [failure, signal] of [
      [abort, new AbortController().signal],
      [new TypeError("Failed to fetch"), controller.signal],
      [mine, new AbortController().signal],
      ["a string", new AbortController().signal],
    ] as const) {
      const fetchFn = (() => Promise.reject(failure)) as typeof fetch;
      const error = await rejection(
        createFetchHttpClient(fetchFn)(
          request({ body: (async function* () {})(), signal }),
        ),
      );
      expect(error).toBe(failure);
    }
  });

  it("uses the global fetch of the time it is created by default", async () => {
    const { fetchFn, calls } = stubFetch();
    vi.stubGlobal("fetch", fetchFn);
    let client;
    try {
      client = createFetchHttpClient();
    } finally {
      vi.unstubAllGlobals();
    }
    await client(request());
    expect(calls).toHaveLength(1);
  });
});

describe("the request of each kind of call, as fetch gets it", () => {
  const methodOf = (kind: MethodKind): MethodInfo => ({
    service: "test.v1.TestService",
    name: kind,
    path: `/test.v1.TestService/${kind}`,
    kind,
    input: StringValueSchema,
    output: StringValueSchema,
    noSideEffects: false,
  });
  const envelope = (value: string) =>
    envelopeEncode(
      0,
      toBinary(StringValueSchema, create(StringValueSchema, { value })),
    );

  /** A fetch that records each init and answers each protocol's way, with no messages. */
  function answering(protocol: "connect" | "grpc-web") {
    const [flags, end, contentType] =
      protocol === "connect"
        ? [envelopeFlagEndStream, "{}", "application/connect+proto"]
        : [
            envelopeFlagTrailers,
            "grpc-status: 0\r\n",
            "application/grpc-web+proto",
          ];
    const body = envelopeEncode(flags, new TextEncoder().encode(end));
    return stubFetch(
      () =>
        // The DOM typings take only ArrayBuffer-backed views; this is one.
        new Response(body as Uint8Array<ArrayBuffer>, {
          headers: { "content-type": contentType },
        }),
    );
  }

  for (const protocol of ["connect", "grpc-web"] as const) {
    const streamCaller =
      protocol === "connect"
        ? createConnectStreamCaller
        : createGrpcWebStreamCaller;

    it(`${protocol}: server streaming sends its request as a whole body, not half duplex`, async () => {
      const { fetchFn, calls } = answering(protocol);
      const call = streamCaller(
        createClientConfig(
          "http://127.0.0.1:1",
          {},
          createFetchHttpClient(fetchFn),
          {},
        ),
      );
      const response = await call(
        methodOf("server_streaming"),
        [{ value: "hi" }],
        {},
      );
      for await (const _ of response.message);
      const init = calls[0]!.init;
      expect(init.body).toBeInstanceOf(Uint8Array);
      expect(init.body).toEqual(envelope("hi"));
      expect("duplex" in init).toBe(false);
    });

    for (const kind of ["client_streaming", "bidi_streaming"] as const) {
      it(`${protocol}: ${kind} streams its requests, half duplex`, async () => {
        const { fetchFn, calls } = answering(protocol);
        const call = streamCaller(
          createClientConfig(
            "http://127.0.0.1:1",
            {},
            createFetchHttpClient(fetchFn),
            {},
          ),
        );
        const response = await call(methodOf(kind), [{ value: "hi" }], {});
        const init = calls[0]!.init;
        expect(init.body).toBeInstanceOf(ReadableStream);
        expect(init.duplex).toBe("half");
        const sent = await collect(
          bodyFromWebStream(init.body as ReadableStream<Uint8Array>),
        );
        expect(sent).toEqual([...envelope("hi")]);
        for await (const _ of response.message);
      });
    }
  }

  it("connect: unary sends a whole body, not half duplex", async () => {
    const { fetchFn, calls } = stubFetch(
      () =>
        new Response(
          toBinary(StringValueSchema, create(StringValueSchema, {})),
          { headers: { "content-type": "application/proto" } },
        ),
    );
    const call = createConnectUnaryCaller(
      createClientConfig(
        "http://127.0.0.1:1",
        {},
        createFetchHttpClient(fetchFn),
        {},
      ),
    );
    await call(methodOf("unary"), { value: "hi" }, {});
    const init = calls[0]!.init;
    expect(init.body).toBeInstanceOf(Uint8Array);
    expect("duplex" in init).toBe(false);
  });

  it("a file without client- or bidi-streaming methods sends every call through fetchHttpClient, without streaming", async () => {
    const { fetchFn, calls } = answering("connect");
    const call = createConnectStreamCaller(
      createClientConfig(
        "http://127.0.0.1:1",
        {},
        fetchHttpClient(fetchFn),
        {},
      ),
    );
    const response = await call(
      methodOf("server_streaming"),
      [{ value: "hi" }],
      {},
    );
    for await (const _ of response.message);
    expect(calls[0]!.init.body).toEqual(envelope("hi"));
  });
});

describe("createFetchHttpClient over a real HTTP server", () => {
  type Route = (req: IncomingMessage, res: ServerResponse) => void;
  const routes = new Map<string, Route>();
  const seen: { method: string; url: string }[] = [];
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ method: req.method!, url: req.url! });
      const route = routes.get(req.url!);
      if (route === undefined) {
        res.writeHead(404).end();
      } else {
        route(req, res);
      }
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve),
    );
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterEach(() => {
    routes.clear();
    seen.length = 0;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  async function readRequest(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  const client = createFetchHttpClient();

  it("makes a unary exchange: method, headers and body there, status, headers and body back", async () => {
    routes.set("/echo", (req, res) => {
      void readRequest(req).then((body) => {
        res.writeHead(200, {
          "content-type": req.headers["content-type"],
          "x-method": req.method,
          "x-length": req.headers["content-length"],
        });
        res.end(body);
      });
    });
    const response = await client(
      request({ url: `${base}/echo`, body: bytes(7, 8, 9) }),
    );
    expect(response.status).toBe(200);
    expect(response.header.get("content-type")).toBe("application/proto");
    expect(response.header.get("x-method")).toBe("POST");
    expect(response.header.get("x-length")).toBe("3");
    expect(await collect(response.body)).toEqual([7, 8, 9]);
  });

  it("uploads a streaming body chunked, every chunk in order", async () => {
    routes.set("/upload", (req, res) => {
      void readRequest(req).then((body) => {
        res.writeHead(200, {
          "x-transfer-encoding": req.headers["transfer-encoding"] ?? "",
        });
        res.end(body);
      });
    });
    const body = (async function* () {
      yield bytes(1);
      yield bytes();
      yield bytes(2, 3);
    })();
    const response = await client(request({ url: `${base}/upload`, body }));
    expect(response.header.get("x-transfer-encoding")).toBe("chunked");
    expect(await collect(response.body)).toEqual([1, 2, 3]);
  });

  it("decodes a gzip-encoded response body", async () => {
    const plain = Buffer.from("hello, compressed world");
    routes.set("/gzip", (_req, res) => {
      res.writeHead(200, { "content-encoding": "gzip" });
      res.end(gzipSync(plain));
    });
    const response = await client(
      request({ url: `${base}/gzip`, method: "GET", body: undefined }),
    );
    expect(response.contentDecoded).toBe(true);
    expect(Buffer.from(await collect(response.body))).toEqual(plain);
  });

  it("does not follow a redirect", async () => {
    routes.set("/moved", (_req, res) => {
      res.writeHead(307, { location: `${base}/echo` }).end();
    });
    routes.set("/echo", (_req, res) => {
      res.writeHead(200).end();
    });
    const error = await rejection(client(request({ url: `${base}/moved` })));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).cause).toMatchObject({
      message: "unexpected redirect",
    });
    expect(seen.map((r) => r.url)).toEqual(["/moved"]);
  });

  it("rejects with the abort when the signal fires while waiting for the response", async () => {
    const arrived = deferred<void>();
    routes.set("/hang", () => {
      arrived.resolve(undefined); // and never answer
    });
    const controller = new AbortController();
    const pending = client(
      request({ url: `${base}/hang`, signal: controller.signal }),
    );
    await arrived.promise;
    controller.abort();
    const error = await rejection(pending);
    expect(error).toMatchObject({ name: "AbortError" });
  });

  it("turns a response cut off by the server into Unavailable", async () => {
    routes.set("/cut", (_req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write(Buffer.from([1, 2]), () => {
        // Mid-body: the chunked encoding never ends.
        res.socket?.destroy();
      });
    });
    const response = await client(request({ url: `${base}/cut` }));
    const received: number[] = [];
    const error = await rejection(
      (async () => {
        for await (const chunk of response.body) received.push(...chunk);
      })(),
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect((error as ConnectError).rawMessage).toMatch(/^terminated/);
    expect(received).toEqual([1, 2]);
  });

  it("stops the download when the reader leaves the loop early", async () => {
    const closed = deferred<boolean>();
    routes.set("/endless", (_req, res) => {
      res.writeHead(200);
      res.write(Buffer.from([1]));
      // Never ended: only the client going away closes it.
      res.on("close", () => closed.resolve(res.writableEnded));
    });
    const response = await client(request({ url: `${base}/endless` }));
    for await (const chunk of response.body) {
      expect(Array.from(chunk)).toEqual([1]);
      break;
    }
    // The response was never ended by the server: the client hung up.
    expect(await closed.promise).toBe(false);
  });
});
