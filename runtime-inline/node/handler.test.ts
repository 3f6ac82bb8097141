import { testServiceDesc } from "../../test/support/server.ts";
import { once } from "node:events";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { StringValueSchema } from "@bufbuild/protobuf/wkt";
import {
  connectRawH2,
  h2FlagEndStream,
  h2FrameData,
  h2FrameHeaders,
  h2FrameRstStream,
  type H2Frame,
} from "../../test/support/h2-raw.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compressionGzip } from "../node/compression.ts";
import { envelopeEncode } from "../core/envelope.ts";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import type { MethodHandler } from "../server/handler.ts";
import {
  fastifyPlugin,
  withNodeHandler,
  type FastifyInstanceLike,
  type NodeServiceHandler,
} from "./handler.ts";
import type { MethodInfo } from "../core/method.ts";
import { createServiceHandler } from "../server/router.ts";
import { connectServer } from "../server/connect.ts";
import { connectHandleStream } from "../server/connect-stream.ts";
import { grpcWebServer } from "../server/grpc-web.ts";
import { grpcServeStream, grpcServer } from "../server/grpc.ts";

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

// UntilCanceled's hooks, set by the test that calls it.
let untilCanceled = {
  started: () => {},
  /** Settles when the implementation is to read its signal. */
  readSignal: Promise.resolve(),
  aborted: (_reason: unknown) => {},
};

const methods: MethodHandler[] = [
  {
    method: method("Unary", "unary"),
    unary: (request) => request,
  },
  {
    // Returns once its signal aborts, which it reads when told to.
    method: method("UntilCanceled", "unary"),
    unary: async (request, context) => {
      const hooks = untilCanceled;
      hooks.started();
      await hooks.readSignal;
      const signal = context.signal;
      if (!signal.aborted) await once(signal, "abort");
      hooks.aborted(signal.reason);
      return request;
    },
  },
  {
    method: method("ServerStream", "server_streaming"),
    stream: async function* (requests) {
      for await (const request of requests) yield request;
    },
  },
  {
    // Answers after the first request, leaving the rest of the upload unread
    // (and the body paused) without ending the iteration.
    method: method("FirstOnly", "client_streaming"),
    stream: async function* (requests) {
      const first = await requests[Symbol.asyncIterator]().next();
      if (first.done === true) throw new Error("expected a request");
      yield first.value;
    },
  },
  {
    // Fails after its response headers, before any message, while the
    // client's upload is still open.
    method: method("BidiFail", "bidi_streaming"),
    stream: async function* (_requests, context) {
      context.responseHeaders.set("x-custom-header", "before the error");
      throw new ConnectError("bidi failed", Code.Aborted);
    },
  },
];

const readMaxBytes = 1024;

const service: NodeServiceHandler = withNodeHandler(
  createServiceHandler(
    testServiceDesc,
    methods,
    { readMaxBytes },
    {
      compressions: [compressionGzip],
      protocols: [
        connectServer({ stream: connectHandleStream }),
        grpcServer(grpcServeStream),
        grpcWebServer(grpcServeStream),
      ],
    },
  ),
);

type Entry = "node" | "http2Stream";
const servers = new Map<Entry, http2.Http2Server>();
const urls = new Map<Entry, string>();

// Settles when the last stream a server received has closed, per entry point.
const lastStreamClosed = new Map<Entry, Promise<void>>();

beforeAll(async () => {
  for (const entry of ["node", "http2Stream"] as const) {
    const server =
      entry === "node"
        ? http2.createServer(service.node)
        : http2.createServer().on("stream", service.http2Stream);
    server.on("stream", (stream: http2.ServerHttp2Stream) => {
      lastStreamClosed.set(
        entry,
        new Promise((resolve) => stream.once("close", resolve)),
      );
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve),
    );
    servers.set(entry, server);
    urls.set(
      entry,
      `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    );
  }
});

afterAll(async () => {
  for (const server of servers.values()) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/**
 * Sends one request on stream 1 that declares `declared` bytes but uploads
 * only `sent`, never ending the upload, and returns the server's frames on
 * stream 1 until the server resets it, ends it with trailers (a HEADERS
 * frame, or an empty DATA frame; nothing more comes after them while the
 * upload is open), or closes the connection.
 */
async function framesOfRefusedUpload(
  url: string,
  path: string,
  contentType: string,
  sent: Uint8Array,
  declared: number,
): Promise<H2Frame[]> {
  const { hostname, port } = new URL(url);
  const connection = await connectRawH2(Number(port));
  try {
    connection.open(1, {
      ":method": "POST",
      ":scheme": "http",
      ":authority": `${hostname}:${port}`,
      ":path": path,
      "content-type": contentType,
      "content-length": String(declared),
      "connect-protocol-version": "1",
    });
    connection.data(1, sent);
    return await connection.frames(1, (frame) => {
      // Node sends empty trailers as an empty DATA frame.
      const trailers =
        frame.type === h2FrameHeaders ||
        (frame.type === h2FrameData && frame.payload.byteLength === 0);
      return (
        frame.type === h2FrameRstStream ||
        (trailers && (frame.flags & h2FlagEndStream) !== 0)
      );
    });
  } finally {
    connection.close();
  }
}

function frameName(f: H2Frame): string {
  const end = f.flags & h2FlagEndStream ? "+END_STREAM" : "";
  switch (f.type) {
    case h2FrameHeaders:
      return `HEADERS${end}`;
    case h2FrameData:
      return `DATA${f.payload.byteLength === 0 ? "(empty)" : ""}${end}`;
    case h2FrameRstStream:
      return `RST_STREAM(${f.payload.readUInt32BE(0)})`;
    default:
      return `type ${f.type}`;
  }
}

describe("a request refused while its upload goes on, over HTTP/2", () => {
  const cases = [
    ["Connect unary", "Unary", "application/proto", 0],
    ["Connect server stream", "ServerStream", "application/connect+proto", 5],
    ["gRPC-Web unary", "Unary", "application/grpc-web+proto", 5],
    ["gRPC-Web server stream", "ServerStream", "application/grpc-web+proto", 5],
  ] as const;
  for (const entry of ["node", "http2Stream"] as const) {
    for (const [name, rpc, contentType, prefix] of cases) {
      it(`${entry}, ${name}: the last DATA frame ends the response, then RST_STREAM(NO_ERROR)`, async () => {
        // Connect unary bodies are the message; the others are envelopes.
        const whole =
          prefix === 0
            ? new Uint8Array(readMaxBytes * 4).fill(0x61)
            : envelopeEncode(0, new Uint8Array(readMaxBytes * 4).fill(0x61));
        const frames = await framesOfRefusedUpload(
          urls.get(entry)!,
          `/test.v1.TestService/${rpc}`,
          contentType,
          whole.subarray(0, readMaxBytes + 512),
          whole.byteLength,
        );
        const types = frames.map(frameName);
        // A client that reads the refusal in the DATA frame must not see
        // the stream still open: it may stop uploading short of its
        // Content-Length, which nghttp2 answers with PROTOCOL_ERROR.
        expect(types).toEqual(["HEADERS", "DATA+END_STREAM", "RST_STREAM(0)"]);
        const body = Buffer.concat(
          frames.filter((f) => f.type === h2FrameData).map((f) => f.payload),
        ).toString("latin1");
        expect(body).toMatch(/resource_exhausted|grpc-status: 8/);
      });
    }
  }
});

describe("a gRPC call that fails while its upload goes on, over HTTP/2", () => {
  for (const entry of ["node", "http2Stream"] as const) {
    it(`${entry}: headers, then the status in trailers, never a reset before them`, async () => {
      const frames = await framesOfRefusedUpload(
        urls.get(entry)!,
        "/test.v1.TestService/BidiFail",
        "application/grpc",
        envelopeEncode(0, new Uint8Array([0x0a, 0x01, 0x61])),
        // No Content-Length is declared for a stream in practice; a large
        // one keeps the upload open here.
        1 << 20,
      );
      expect(frames.map(frameName)).toEqual(["HEADERS", "HEADERS+END_STREAM"]);
    });
  }
});

describe("a call answered before the upload ends, over HTTP/2", () => {
  for (const entry of ["node", "http2Stream"] as const) {
    it(`${entry}: the client gets the answer and the server frees the stream`, async () => {
      const session = http2.connect(urls.get(entry)!);
      session.on("error", () => {});
      try {
        const stream = session.request({
          ":method": "POST",
          ":path": "/test.v1.TestService/FirstOnly",
          "content-type": "application/connect+proto",
        });
        stream.on("error", () => {});
        const message = envelopeEncode(0, new Uint8Array([0x0a, 0x01, 0x61]));
        // More than the stream's flow-control window, so that the server's
        // body pauses with data left unread; the upload never ends.
        for (let i = 0; i < 16; i++) {
          stream.write(Buffer.concat([message, new Uint8Array(64 * 1024)]));
        }
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        await once(stream, "end");
        // A message (flags 0) and the end-of-stream envelope (flags 2).
        expect(Buffer.concat(chunks)[0]).toBe(0);
        await new Promise<void>((resolve) =>
          stream.closed ? resolve() : stream.once("close", () => resolve()),
        );
        expect(stream.rstCode).toBe(http2.constants.NGHTTP2_NO_ERROR);
        // Node keeps a stream closed with NO_ERROR until its request body
        // has been read: the server must read what it left unread, or this
        // never settles.
        await lastStreamClosed.get(entry);
      } finally {
        session.close();
      }
    });
  }
});

describe("a unary implementation's signal, when the client resets the stream", () => {
  for (const entry of ["node", "http2Stream"] as const) {
    for (const late of [false, true]) {
      it(`${entry}: aborts with Canceled, read ${late ? "after" : "before"} the reset`, async () => {
        let started!: () => void;
        let readSignal!: () => void;
        let aborted!: (reason: unknown) => void;
        const hasStarted = new Promise<void>((resolve) => (started = resolve));
        const reason = new Promise<unknown>((resolve) => (aborted = resolve));
        untilCanceled = {
          started,
          readSignal: late
            ? new Promise<void>((resolve) => (readSignal = resolve))
            : Promise.resolve(),
          aborted,
        };
        const session = http2.connect(urls.get(entry)!);
        session.on("error", () => {});
        try {
          const stream = session.request({
            ":method": "POST",
            ":path": "/test.v1.TestService/UntilCanceled",
            "content-type": "application/proto",
          });
          stream.on("error", () => {});
          stream.end(new Uint8Array([0x0a, 0x01, 0x61]));
          await hasStarted;
          stream.close(http2.constants.NGHTTP2_CANCEL);
          if (late) {
            await lastStreamClosed.get(entry);
            readSignal();
          }
          const error = await reason;
          expect(error).toBeInstanceOf(ConnectError);
          expect((error as ConnectError).code).toBe(Code.Canceled);
        } finally {
          session.close();
        }
      });
    }
  }
});

describe("fastifyPlugin", () => {
  type Route = Parameters<FastifyInstanceLike["route"]>[0];
  it("takes the services' paths, with request bodies left unread", async () => {
    const steps: string[] = [];
    const routes: Route[] = [];
    const app: FastifyInstanceLike = {
      removeAllContentTypeParsers: () => steps.push("remove parsers"),
      addContentTypeParser(contentType, parser) {
        steps.push(`parser ${contentType}`);
        // The parser reads nothing: it answers at once, with no body.
        parser({}, {}, (error, body) => steps.push(`parsed ${error} ${body}`));
      },
      route: (route) => routes.push(route),
    };
    const other = { ...service, path: "/test.v1.OtherService/" };
    const third = { ...service, path: "/test.v1.ThirdService/" };
    // Lists too, as a factory serving several paths returns.
    await fastifyPlugin(service, [other, third])(app);
    expect(steps).toEqual([
      "remove parsers",
      "parser *",
      "parsed null undefined",
    ]);
    expect(routes.map(({ method, url }) => ({ method, url }))).toEqual([
      { method: ["POST", "GET", "OPTIONS"], url: "/test.v1.TestService/*" },
      { method: ["POST", "GET", "OPTIONS"], url: "/test.v1.OtherService/*" },
      { method: ["POST", "GET", "OPTIONS"], url: "/test.v1.ThirdService/*" },
    ]);
  });

  it("hands the raw request and response over, with the reply's headers", async () => {
    const routes: Route[] = [];
    await service.fastify({
      removeAllContentTypeParsers() {},
      addContentTypeParser() {},
      route: (route) => routes.push(route),
    });
    const server = http2.createServer((request, response) => {
      routes[0]!.handler(
        { raw: request },
        {
          raw: response,
          getHeaders: () => ({
            "x-hook": "set by a hook",
            "x-none": undefined,
          }),
          hijack() {},
        },
      );
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve),
    );
    const session = http2.connect(
      `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    );
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": "/test.v1.TestService/Unary",
        "content-type": "application/proto",
      });
      // An empty StringValue.
      stream.end();
      const [headers] = (await once(stream, "response")) as [
        http2.IncomingHttpHeaders,
      ];
      expect(headers[":status"]).toBe(200);
      expect(headers["x-hook"]).toBe("set by a hook");
      expect(headers["content-type"]).toBe("application/proto");
      stream.resume();
      await once(stream, "end");
    } finally {
      session.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
