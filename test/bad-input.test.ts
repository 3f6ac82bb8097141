// Malformed and hostile requests, sent as raw HTTP (node:http and node:http2,
// not the generated client) to a generated Connect server. Every case checks
// the HTTP status and the Connect error code, and then that the server still
// answers a normal call.

import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  rawRequest,
  type RawRequestInit,
  type RawResponse,
} from "./support/raw-http.ts";
import { createElizaServiceHandler } from "./gen/eliza/v1/eliza.ElizaService.ts";
import {
  SayRequestSchema,
  SayResponseSchema,
} from "./gen/eliza/v1/eliza_pb.ts";
import {
  createGreetServiceClient,
  createGreetServiceHandler,
  nodeHandler,
} from "./gen/unary/v1/unary.GreetService.ts";
import {
  GreetRequestSchema,
  GreetResponseSchema,
  Mood,
} from "./gen/unary/v1/unary_pb.ts";

const readMaxBytes = 1024;
const greetPath = "/fixtures.unary.v1.GreetService/Greet";
const sayPath = "/connectrpc.eliza.v1.ElizaService/Say";

// ---------------------------------------------------------------------------
// Process-level failures: none may happen while this file runs.

const processFailures: unknown[] = [];
const onFailure = (reason: unknown) => {
  processFailures.push(reason);
};

// ---------------------------------------------------------------------------
// The server under test, on HTTP/1.1 and HTTP/2 (h2c).

/** Requests whose response has not closed yet, to wait for the server to finish with an aborted one. */
let open = 0;
let seen = 0;
/** Aborts seen by implementations, by sentence. */
const implementationAborts: string[] = [];
/** Implementations at work, waiting for their signal, by sentence. */
const implementationsWaiting: string[] = [];

const handler = nodeHandler(
  createGreetServiceHandler(
    {
      greet: (request) => ({ greeting: `Hello, ${request.name}!`, request }),
      echo: (request) => ({ data: request.data }),
      fail() {
        throw new Error("not used");
      },
    },
    { readMaxBytes },
  ),
  createElizaServiceHandler(
    {
      async say(request, context) {
        if (request.sentence.startsWith("hang")) {
          // Waits for the client to go away.
          implementationsWaiting.push(request.sentence);
          await new Promise<void>((resolve) => {
            context.signal.addEventListener("abort", () => resolve(), {
              once: true,
            });
          });
          implementationAborts.push(request.sentence);
          return { sentence: "too late" };
        }
        return { sentence: `You said: ${request.sentence}` };
      },
    },
    { readMaxBytes },
  ),
);

const listener = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => {
  open++;
  seen++;
  res.once("close", () => open--);
  handler(req, res);
};

let server1: http.Server;
let server2: http2.Http2Server;
const serverSessions = new Set<http2.ServerHttp2Session>();
let url1 = "";
let url2 = "";
let clientSession: http2.ClientHttp2Session;

beforeAll(async () => {
  process.on("unhandledRejection", onFailure);
  process.on("uncaughtException", onFailure);
  server1 = http.createServer(listener);
  server2 = http2.createServer(listener);
  server2.on("session", (session) => {
    serverSessions.add(session);
    session.once("close", () => serverSessions.delete(session));
  });
  await Promise.all([
    new Promise<void>((resolve) => server1.listen(0, "127.0.0.1", resolve)),
    new Promise<void>((resolve) => server2.listen(0, "127.0.0.1", resolve)),
  ]);
  url1 = `http://127.0.0.1:${(server1.address() as AddressInfo).port}`;
  url2 = `http://127.0.0.1:${(server2.address() as AddressInfo).port}`;
  clientSession = http2.connect(url2);
});

afterAll(async () => {
  clientSession?.close();
  await Promise.all([
    new Promise<void>((resolve) => {
      if (server1 === undefined) return resolve();
      server1.close(() => resolve());
      server1.closeAllConnections();
    }),
    new Promise<void>((resolve) => {
      if (server2 === undefined) return resolve();
      server2.close(() => resolve());
      for (const session of serverSessions) session.destroy();
    }),
  ]);
  process.off("unhandledRejection", onFailure);
  process.off("uncaughtException", onFailure);
  expect(processFailures).toEqual([]);
});

// ---------------------------------------------------------------------------
// Raw HTTP.

interface RawRequest extends RawRequestInit {
  readonly method: string;
  readonly path: string;
}

const sendHttp1 = (request: RawRequest): Promise<RawResponse> =>
  rawRequest("1.1", url1 + request.path, request);

const sendHttp2 = (request: RawRequest): Promise<RawResponse> =>
  rawRequest("2", url2 + request.path, {
    ...request,
    session: clientSession,
    resetAfterResponseOk: true,
  });

function errorCode(response: RawResponse): unknown {
  expect(response.headers["content-type"]).toBe("application/json");
  return (
    JSON.parse(response.body.toString("utf8")) as Record<string, unknown>
  )["code"];
}

const encoder = new TextEncoder();
const text = (s: string) => encoder.encode(s);
const protoHeaders = {
  "content-type": "application/proto",
  "connect-protocol-version": "1",
};
const jsonHeaders = {
  "content-type": "application/json",
  "connect-protocol-version": "1",
};

const validGreet = toBinary(
  GreetRequestSchema,
  create(GreetRequestSchema, {
    name: "a name long enough to be cut in the middle",
    age: 7n,
    nicknames: ["x", "y"],
    mood: Mood.HAPPY,
  }),
);

function expectDecodeFails(bytes: Uint8Array): void {
  expect(() => fromBinary(GreetRequestSchema, bytes)).toThrow();
}

/**
 * How long waitUntil waits before it gives up with a message naming what it
 * waited for: a guard against a hang, never a measure of speed, so long
 * enough for a machine at a load of 10.
 */
const hangMs = 20_000;

async function waitUntil(
  condition: () => boolean,
  what: string,
): Promise<void> {
  const deadline = Date.now() + hangMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// ---------------------------------------------------------------------------

describe.each([
  ["HTTP/1.1", sendHttp1, "fetch"],
  ["HTTP/2", sendHttp2, "http2"],
] as const)("%s", (_, send, transport) => {
  /** A normal call on the same server: it must still serve. */
  async function expectServing(): Promise<void> {
    const url = transport === "fetch" ? url1 : url2;
    const client = createGreetServiceClient(url, { transport });
    expect((await client.greet({ name: "still here" })).greeting).toBe(
      "Hello, still here!",
    );
    const raw = await send({
      method: "POST",
      path: greetPath,
      headers: protoHeaders,
      body: [validGreet],
    });
    expect(raw.status).toBe(200);
    expect(fromBinary(GreetResponseSchema, raw.body).greeting).toBe(
      "Hello, a name long enough to be cut in the middle!",
    );
  }

  async function expectError(
    request: RawRequest,
    status: number,
    code: string,
  ): Promise<RawResponse> {
    const response = await send(request);
    const what = `${request.method} ${request.path} ${JSON.stringify(request.headers ?? {})}`;
    expect(response.status, what).toBe(status);
    expect(errorCode(response), what).toBe(code);
    await expectServing();
    return response;
  }

  describe("bodies", () => {
    it("a truncated binary message → 400 invalid_argument", async () => {
      const truncated = validGreet.subarray(0, 20);
      expectDecodeFails(truncated);
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: protoHeaders,
          body: [truncated],
        },
        400,
        "invalid_argument",
      );
    });

    it("invalid JSON → 400 invalid_argument", async () => {
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: jsonHeaders,
          body: [text('{"name": ')],
        },
        400,
        "invalid_argument",
      );
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: jsonHeaders,
          body: [text("not json")],
        },
        400,
        "invalid_argument",
      );
    });

    it("JSON of the wrong shape → 400 invalid_argument", async () => {
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: jsonHeaders,
          body: [text('{"name": 5}')],
        },
        400,
        "invalid_argument",
      );
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: jsonHeaders,
          body: [text('{"noSuchField": 1}')],
        },
        400,
        "invalid_argument",
      );
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: jsonHeaders,
          body: [text("[1, 2]")],
        },
        400,
        "invalid_argument",
      );
    });

    it("JSON that is not UTF-8 → 400 invalid_argument", async () => {
      const bytes = new Uint8Array([
        0x7b, 0x22, 0x6e, 0x61, 0x6d, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22,
        0x7d,
      ]);
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: jsonHeaders,
          body: [bytes],
        },
        400,
        "invalid_argument",
      );
    });

    it("random bytes and wrong wire types → 400 invalid_argument", async () => {
      const cases = [
        new Uint8Array([
          0x9b, 0x3c, 0x71, 0xe2, 0x05, 0xaa, 0x10, 0xc7, 0x44, 0x8e,
        ]),
        new Uint8Array(12).fill(0xff),
        // Field 1 with wire type 7, which does not exist.
        new Uint8Array([0x0f, 0x01, 0x02]),
        // Field number 0.
        new Uint8Array([0x00, 0x01]),
        // Field 6 (a message) sent as fixed32.
        new Uint8Array([0x35, 0x01, 0x02, 0x03, 0x04]),
      ];
      for (const bytes of cases) {
        expectDecodeFails(bytes);
        await expectError(
          {
            method: "POST",
            path: greetPath,
            headers: protoHeaders,
            body: [bytes],
          },
          400,
          "invalid_argument",
        );
      }
    });
  });

  describe("compression", () => {
    it('an unknown Content-Encoding ("snappy") → 501 unimplemented', async () => {
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: { ...protoHeaders, "content-encoding": "snappy" },
          body: [validGreet],
        },
        501,
        "unimplemented",
      );
    });

    it("gzip Content-Encoding on a body that is not gzip → 400 invalid_argument", async () => {
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: { ...protoHeaders, "content-encoding": "gzip" },
          body: [validGreet],
        },
        400,
        "invalid_argument",
      );
    });

    it("a truncated gzip body → 400 invalid_argument", async () => {
      const gz = gzipSync(validGreet);
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: { ...protoHeaders, "content-encoding": "gzip" },
          body: [gz.subarray(0, gz.length - 6)],
        },
        400,
        "invalid_argument",
      );
    });

    it("valid gzip is accepted", async () => {
      const response = await send({
        method: "POST",
        path: greetPath,
        headers: { ...protoHeaders, "content-encoding": "gzip" },
        body: [gzipSync(validGreet)],
      });
      expect(response.status).toBe(200);
      expect(
        fromBinary(GreetResponseSchema, response.body).request?.nicknames,
      ).toEqual(["x", "y"]);
    });
  });

  describe("size limit", () => {
    const big = toBinary(
      GreetRequestSchema,
      create(GreetRequestSchema, { name: "n".repeat(readMaxBytes * 4) }),
    );

    it("an oversized message with Content-Length → 429 resource_exhausted", async () => {
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: {
            ...protoHeaders,
            "content-length": String(big.byteLength),
          },
          body: [big],
        },
        429,
        "resource_exhausted",
      );
    });

    it("an oversized message without Content-Length → 429 resource_exhausted", async () => {
      const chunks = [
        big.subarray(0, 700),
        big.subarray(700, 1400),
        big.subarray(1400),
      ];
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: protoHeaders,
          body: chunks,
        },
        429,
        "resource_exhausted",
      );
    });

    it("a small gzip body that inflates past the limit → 429 resource_exhausted", async () => {
      const bomb = gzipSync(big);
      expect(bomb.byteLength).toBeLessThan(readMaxBytes);
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: { ...protoHeaders, "content-encoding": "gzip" },
          body: [bomb],
        },
        429,
        "resource_exhausted",
      );
    });

    it("an oversized JSON message → 429 resource_exhausted", async () => {
      const json = text(JSON.stringify({ name: "n".repeat(readMaxBytes * 2) }));
      await expectError(
        { method: "POST", path: greetPath, headers: jsonHeaders, body: [json] },
        429,
        "resource_exhausted",
      );
    });

    it("an oversized GET message → 429 resource_exhausted", async () => {
      const message = Buffer.from(
        toBinary(
          SayRequestSchema,
          create(SayRequestSchema, { sentence: "s".repeat(readMaxBytes * 2) }),
        ),
      ).toString("base64url");
      await expectError(
        {
          method: "GET",
          path: `${sayPath}?encoding=proto&base64=1&message=${message}`,
        },
        429,
        "resource_exhausted",
      );
    });
  });

  describe("GET", () => {
    // Only over HTTP/1.1 (the fetch transport's servers here): HTTP/2
    // frames the body itself, and neither header is needed there.
    if (transport === "fetch")
      it("unary responses, good and bad, declare their length, not chunked", async () => {
        const ok = await send({
          method: "POST",
          path: greetPath,
          headers: protoHeaders,
          body: [validGreet],
        });
        const failed = await send({
          method: "POST",
          path: greetPath,
          headers: protoHeaders,
          body: [Uint8Array.of(0xff)],
        });
        expect(failed.status).toBe(400);
        for (const response of [ok, failed]) {
          expect(response.headers["transfer-encoding"]).toBeUndefined();
          expect(response.headers["content-length"]).toBe(
            String(response.body.byteLength),
          );
        }
      });

    it("a valid GET works", async () => {
      const message = Buffer.from(
        toBinary(
          SayRequestSchema,
          create(SayRequestSchema, { sentence: "hi" }),
        ),
      ).toString("base64url");
      const response = await send({
        method: "GET",
        path: `${sayPath}?connect=v1&encoding=proto&base64=1&message=${message}`,
      });
      expect(response.status).toBe(200);
      expect(response.headers["content-type"]).toBe("application/proto");
      expect(fromBinary(SayResponseSchema, response.body).sentence).toBe(
        "You said: hi",
      );
      const json = await send({
        method: "GET",
        path: `${sayPath}?encoding=json&message=${encodeURIComponent('{"sentence":"a+b c"}')}`,
      });
      expect(json.status).toBe(200);
      expect(JSON.parse(json.body.toString("utf8"))).toEqual({
        sentence: "You said: a+b c",
      });
    });

    it("bad base64 → 400 invalid_argument", async () => {
      for (const message of [
        "%%%",
        "ab!c",
        "a*b$",
        "abcde",
        "ab=c",
        "YQ%3D%3D%3D",
      ]) {
        await expectError(
          {
            method: "GET",
            path: `${sayPath}?encoding=proto&base64=1&message=${message}`,
          },
          400,
          "invalid_argument",
        );
      }
    });

    it("base64 that decodes to a bad message → 400 invalid_argument", async () => {
      await expectError(
        {
          method: "GET",
          path: `${sayPath}?encoding=proto&base64=1&message=${Buffer.from([0x0f, 1, 2]).toString("base64url")}`,
        },
        400,
        "invalid_argument",
      );
      await expectError(
        {
          method: "GET",
          path: `${sayPath}?encoding=json&message=${encodeURIComponent("{bad")}`,
        },
        400,
        "invalid_argument",
      );
    });

    it("a bad connect query parameter → 400 invalid_argument", async () => {
      await expectError(
        {
          method: "GET",
          path: `${sayPath}?connect=v2&encoding=json&message=%7B%7D`,
        },
        400,
        "invalid_argument",
      );
    });

    it("an unknown GET compression → 501 unimplemented", async () => {
      await expectError(
        {
          method: "GET",
          path: `${sayPath}?encoding=proto&base64=1&compression=snappy&message=`,
        },
        501,
        "unimplemented",
      );
    });

    it("encoding=xml → 415", async () => {
      for (const query of [
        "?encoding=xml&message=%3Ca%2F%3E",
        "?message=%7B%7D",
      ]) {
        const response = await send({ method: "GET", path: sayPath + query });
        expect(response.status).toBe(415);
        await expectServing();
      }
    });

    it("GET on a method that is not NO_SIDE_EFFECTS → 405", async () => {
      const response = await send({
        method: "GET",
        path: `${greetPath}?encoding=json&message=%7B%7D`,
      });
      expect(response.status).toBe(405);
      expect(response.headers["allow"]).toBe("POST");
      await expectServing();
    });
  });

  describe("methods, content types and headers", () => {
    it("PUT → 405", async () => {
      for (const path of [greetPath, sayPath]) {
        const response = await send({
          method: "PUT",
          path,
          headers: jsonHeaders,
          body: [text("{}")],
        });
        expect(response.status).toBe(405);
        expect(response.headers["allow"]).toBe(
          path === sayPath ? "GET, POST" : "POST",
        );
      }
      await expectServing();
    });

    it("unsupported content types → 415", async () => {
      for (const contentType of [
        "text/plain",
        // gRPC and gRPC-Web are served (test/grpc-server.test.ts); the
        // base64 "text" form of gRPC-Web is not.
        "application/grpc-web-text",
        "application/connect+proto",
        "application/protobuf",
        "application/jsonx",
      ]) {
        const response = await send({
          method: "POST",
          path: greetPath,
          headers: { "content-type": contentType },
          body: [validGreet],
        });
        expect(response.status, contentType).toBe(415);
        expect(response.headers["accept-post"]).toBe(
          "application/json, application/proto",
        );
      }
      const missing = await send({
        method: "POST",
        path: greetPath,
        body: [validGreet],
      });
      expect(missing.status).toBe(415);
      await expectServing();
    });

    it("content types with parameters and in other cases are accepted", async () => {
      for (const contentType of [
        "application/proto; charset=utf-8",
        "Application/Proto",
      ]) {
        const response = await send({
          method: "POST",
          path: greetPath,
          headers: { "content-type": contentType },
          body: [validGreet],
        });
        expect(response.status, contentType).toBe(200);
      }
    });

    it("a malformed Connect-Timeout-Ms → 400 invalid_argument", async () => {
      for (const timeout of [
        "abc",
        "-1",
        "12345678901",
        "1.5",
        "1e3",
        "1 0",
        "0x10",
        "+5",
      ]) {
        await expectError(
          {
            method: "POST",
            path: greetPath,
            headers: { ...protoHeaders, "connect-timeout-ms": timeout },
            body: [validGreet],
          },
          400,
          "invalid_argument",
        );
      }
    });

    it("Connect-Timeout-Ms on a GET is checked too", async () => {
      await expectError(
        {
          method: "GET",
          path: `${sayPath}?encoding=json&message=%7B%7D`,
          headers: { "connect-timeout-ms": "soon" },
        },
        400,
        "invalid_argument",
      );
    });

    it("connect-protocol-version: 2 → 400 invalid_argument", async () => {
      await expectError(
        {
          method: "POST",
          path: greetPath,
          headers: { ...protoHeaders, "connect-protocol-version": "2" },
          body: [validGreet],
        },
        400,
        "invalid_argument",
      );
    });

    it("an unknown method under the service path → 404 unimplemented", async () => {
      for (const path of [
        "/fixtures.unary.v1.GreetService/Nope",
        "/fixtures.unary.v1.GreetService/",
        "/fixtures.unary.v1.GreetService/Greet/extra",
        // Streaming methods are not generated.
        "/connectrpc.eliza.v1.ElizaService/Converse",
      ]) {
        await expectError(
          { method: "POST", path, headers: protoHeaders, body: [validGreet] },
          404,
          "unimplemented",
        );
      }
    });

    it("an unknown service → 404 unimplemented", async () => {
      await expectError(
        {
          method: "POST",
          path: "/no.such.Service/Method",
          headers: protoHeaders,
          body: [validGreet],
        },
        404,
        "unimplemented",
      );
    });
  });

  describe("disconnects", () => {
    it("a client that sends headers and then disconnects mid-body does not hurt the server", async () => {
      const before = seen;
      if (transport === "fetch") {
        const { port } = server1.address() as AddressInfo;
        const req = http.request({
          host: "127.0.0.1",
          port,
          method: "POST",
          path: greetPath,
          headers: { ...protoHeaders, "content-length": "500" },
          agent: false,
        });
        req.on("error", () => {});
        req.flushHeaders();
        req.write(validGreet.subarray(0, 10));
        await waitUntil(() => seen > before, "the server to see the request");
        req.destroy();
      } else {
        // A session of its own, whose socket is destroyed.
        const session = http2.connect(url2);
        session.on("error", () => {});
        const stream = session.request({
          ":method": "POST",
          ":path": greetPath,
          ...protoHeaders,
          "content-length": "500",
        });
        stream.on("error", () => {});
        stream.write(validGreet.subarray(0, 10));
        await waitUntil(() => seen > before, "the server to see the request");
        session.socket.destroy();
        // And a stream cancelled mid-body on the shared session.
        const before2 = seen;
        const cancelled = clientSession.request({
          ":method": "POST",
          ":path": greetPath,
          ...protoHeaders,
        });
        cancelled.on("error", () => {});
        cancelled.write(validGreet.subarray(0, 10));
        await waitUntil(
          () => seen > before2,
          "the server to see the second request",
        );
        cancelled.close(http2.constants.NGHTTP2_CANCEL);
      }
      await waitUntil(
        () => open === 0,
        "the server to finish the aborted requests",
      );
      await expectServing();
    });

    it("a client that disconnects while the implementation runs aborts its signal", async () => {
      const sentence = `hang ${transport}`;
      const body = toBinary(
        SayRequestSchema,
        create(SayRequestSchema, { sentence }),
      );
      if (transport === "fetch") {
        const { port } = server1.address() as AddressInfo;
        const req = http.request({
          host: "127.0.0.1",
          port,
          method: "POST",
          path: sayPath,
          headers: protoHeaders,
          agent: false,
        });
        req.on("error", () => {});
        req.end(body);
        // Gone once the implementation is at work, not after some time.
        await waitUntil(
          () => implementationsWaiting.includes(sentence),
          "the implementation to start",
        );
        req.destroy();
      } else {
        const stream = clientSession.request({
          ":method": "POST",
          ":path": sayPath,
          ...protoHeaders,
        });
        stream.on("error", () => {});
        stream.end(body);
        // Gone once the implementation is at work, not after some time.
        await waitUntil(
          () => implementationsWaiting.includes(sentence),
          "the implementation to start",
        );
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
      await waitUntil(
        () => implementationAborts.includes(sentence),
        "the implementation's signal to abort",
      );
      await waitUntil(
        () => open === 0,
        "the server to finish the aborted request",
      );
      await expectServing();
    });
  });
});
