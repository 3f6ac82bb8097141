// CORS on every entry point: preflights answered, and the CORS headers on
// every response a browser may read (successes, Connect errors, gRPC-Web
// errors in the body, gRPC trailers-only responses, streams), over
// node:http, node:http2 (the compatibility `.node` and `.http2Stream`) and
// the fetch handler. The browser's own view is in test/browser.test.ts.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Code,
  ConnectError,
  createElizaServiceHandler,
  corsAllowedHeaders,
  corsExposedHeaders,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import { SayRequestSchema } from "./gen/eliza/v1/eliza_pb.ts";
import { toBinary, create } from "@bufbuild/protobuf";
import { envelopeBytes, rawRequest } from "./support/raw-http.ts";
import {
  startServer,
  startStreamServer,
  type StartedServer,
} from "./support/servers.ts";

const page = "https://app.example.com";

const handler = createElizaServiceHandler(
  {
    say(request) {
      if (request.sentence === "fail") {
        throw new ConnectError("no such sentence", Code.NotFound);
      }
      return { sentence: request.sentence };
    },
    async *introduce(request) {
      yield { sentence: `hi ${request.name}` };
    },
  },
  { cors: { allowedOrigins: [page], exposedHeaders: ["Trailer-Request-Id"] } },
);

interface Answer {
  readonly status: number;
  /** Response headers, and for HTTP/2 the trailers after them. */
  readonly headers: Headers;
  readonly body: Buffer;
}

interface RawCall {
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: Uint8Array;
}

type Send = (request: RawCall) => Promise<Answer>;

function sendRaw(version: "1.1" | "2", url: string): Send {
  return async (request) => {
    const response = await rawRequest(
      version,
      `${url}${request.path}`,
      request,
    );
    const headers = new Headers();
    for (const block of [response.headers, response.trailers]) {
      for (const [name, value] of Object.entries(block)) {
        if (typeof value === "string" && !name.startsWith(":")) {
          headers.set(name, value);
        }
      }
    }
    return { status: response.status, headers, body: response.body };
  };
}

function sendFetch(): Send {
  return async (request) => {
    const response = await handler.fetch(
      new Request(`http://127.0.0.1${request.path}`, {
        method: request.method,
        headers: request.headers,
        // The DOM typings take only ArrayBuffer-backed views; these all are.
        ...(request.body === undefined
          ? {}
          : { body: request.body as Uint8Array<ArrayBuffer> }),
      }),
    );
    return {
      status: response.status,
      headers: response.headers,
      body: Buffer.from(await response.arrayBuffer()),
    };
  };
}

const servers: StartedServer[] = [];
const entryPoints: [string, () => Promise<Send>, boolean][] = [
  [
    ".node on node:http",
    async () => {
      const server = await startServer("http", handler.node);
      servers.push(server);
      return sendRaw("1.1", server.url);
    },
    false,
  ],
  [
    ".node on node:http2 (h2c)",
    async () => {
      const server = await startServer("h2c", handler.node);
      servers.push(server);
      return sendRaw("2", server.url);
    },
    true,
  ],
  [
    ".http2Stream",
    async () => {
      const server = await startStreamServer(handler.http2Stream);
      servers.push(server);
      return sendRaw("2", server.url);
    },
    true,
  ],
  [".fetch", async () => sendFetch(), false],
];

afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()));
});

const say = "/connectrpc.eliza.v1.ElizaService/Say";
const sayRequest = (sentence: string) =>
  toBinary(SayRequestSchema, create(SayRequestSchema, { sentence }));

function expectCors(answer: Answer): void {
  expect(answer.headers.get("access-control-allow-origin")).toBe(page);
  expect(answer.headers.get("access-control-expose-headers")).toBe(
    [...corsExposedHeaders, "Trailer-Request-Id"].join(", "),
  );
}

describe.each(entryPoints)("cors on %s", (_name, start) => {
  let send: Send;
  beforeAll(async () => {
    send = await start();
  });

  it("answers a preflight with what the browser needs", async () => {
    const answer = await send({
      method: "OPTIONS",
      path: say,
      headers: {
        origin: page,
        "access-control-request-method": "POST",
        "access-control-request-headers":
          "content-type,connect-protocol-version",
      },
    });
    expect(answer.status).toBe(204);
    expect(answer.headers.get("access-control-allow-origin")).toBe(page);
    expect(answer.headers.get("access-control-allow-methods")).toBe(
      "POST, GET",
    );
    expect(answer.headers.get("access-control-allow-headers")).toBe(
      corsAllowedHeaders.join(", "),
    );
    expect(answer.headers.get("access-control-max-age")).toBe("7200");
    expect(answer.body.length).toBe(0);
  });

  it("refuses a preflight from an origin it does not know, and keeps serving", async () => {
    const answer = await send({
      method: "OPTIONS",
      path: say,
      headers: {
        origin: "https://evil.test",
        "access-control-request-method": "POST",
      },
    });
    expect(answer.headers.get("access-control-allow-origin")).toBeNull();
    const call = await send({
      method: "POST",
      path: say,
      headers: { origin: page, "content-type": "application/proto" },
      body: sayRequest("hello"),
    });
    expect(call.status).toBe(200);
  });

  it("puts the headers on a Connect success and a Connect error", async () => {
    const ok = await send({
      method: "POST",
      path: say,
      headers: { origin: page, "content-type": "application/proto" },
      body: sayRequest("hello"),
    });
    expect(ok.status).toBe(200);
    expectCors(ok);
    const error = await send({
      method: "POST",
      path: say,
      headers: { origin: page, "content-type": "application/json" },
      body: new TextEncoder().encode(JSON.stringify({ sentence: "fail" })),
    });
    expect(error.status).toBe(404);
    expect(JSON.parse(error.body.toString())).toMatchObject({
      code: "not_found",
    });
    expectCors(error);
  });

  it("puts the headers on a gRPC-Web error sent in the body, and a stream", async () => {
    const error = await send({
      method: "POST",
      path: say,
      headers: {
        origin: page,
        "content-type": "application/grpc-web+proto",
        "x-grpc-web": "1",
      },
      body: envelopeBytes(sayRequest("fail")),
    });
    expect(error.status).toBe(200);
    expect(error.body.toString()).toContain("grpc-status: 5");
    expectCors(error);
    const stream = await send({
      method: "POST",
      path: "/connectrpc.eliza.v1.ElizaService/Introduce",
      headers: { origin: page, "content-type": "application/connect+json" },
      body: envelopeBytes(
        new TextEncoder().encode(JSON.stringify({ name: "x" })),
      ),
    });
    expect(stream.status).toBe(200);
    expect(stream.body.toString()).toContain("hi x");
    expectCors(stream);
  });
});

// Only HTTP/2 carries gRPC: over HTTP/1.1 the call is refused before it starts.
describe.each(entryPoints.filter(([, , http2]) => http2))(
  "cors on %s",
  (_name, start) => {
    let send: Send;
    beforeAll(async () => {
      send = await start();
    });

    it("puts the headers on a gRPC trailers-only response", async () => {
      const answer = await send({
        method: "POST",
        path: say,
        headers: {
          origin: page,
          "content-type": "application/grpc",
          te: "trailers",
        },
        body: envelopeBytes(sayRequest("fail")),
      });
      expect(answer.headers.get("grpc-status")).toBe("5");
      expect(answer.body.length).toBe(0);
      expectCors(answer);
    });
  },
);
