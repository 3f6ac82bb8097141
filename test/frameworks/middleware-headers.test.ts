// Headers that middleware sets on the response object before calling `.node`
// (CORS, security headers, a session cookie) go out on HTTP/2 as they do on
// HTTP/1.1, on every response shape: a whole body, a gRPC trailers-only
// error, a gRPC-Web error, a stream. Ours win a conflict; cookies and Vary
// add up.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  IntroduceRequestSchema,
  SayRequestSchema,
} from "../gen/eliza/v1/eliza_pb.ts";
import {
  startServer,
  type NodeListener,
  type StartedServer,
} from "../support/servers.ts";
import { eliza, elizaPath, envelope, rawRequest } from "./eliza.ts";

const middleware: NodeListener = (request, response) => {
  response.setHeader("access-control-allow-origin", "https://example.com");
  response.setHeader("x-middleware", ["a", "b"]);
  response.setHeader("set-cookie", "session=1");
  response.setHeader("vary", "Origin");
  // Ours wins: the protocol decides the content type.
  response.setHeader("content-type", "text/html");
  eliza.node(request, response);
};

describe.each([
  ["1.1", "http"],
  ["2", "h2c"],
] as const)("over HTTP/%s", (version, kind) => {
  let server: StartedServer;
  beforeAll(async () => {
    server = await startServer(kind, middleware);
  });
  afterAll(() => server.close());

  function expectMiddlewareHeaders(headers: Record<string, unknown>) {
    expect(headers["access-control-allow-origin"]).toBe("https://example.com");
    expect(headers["x-middleware"]).toBe("a, b");
  }

  it("sends them with a unary response, with both cookies", async () => {
    const response = await rawRequest(
      version,
      `${server.url}${elizaPath}/Say`,
      {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sentence: "hi" }),
      },
    );
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toBe("application/json");
    expectMiddlewareHeaders(response.headers);
    expect(response.headers["set-cookie"]).toEqual(["session=1", "eliza=1"]);
    expect(response.headers["vary"]).toBe("Origin, x-eliza");
    expect(JSON.parse(response.body.toString())).toEqual({
      sentence: "You said: hi",
    });
  });

  it("sends them with a Connect error", async () => {
    const response = await rawRequest(
      version,
      `${server.url}${elizaPath}/Say`,
      {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sentence: "fail" }),
      },
    );
    expect(response.status).toBe(403);
    expectMiddlewareHeaders(response.headers);
    expect(response.headers["set-cookie"]).toEqual(["session=1"]);
  });

  it("sends them with a gRPC-Web error", async () => {
    const response = await rawRequest(
      version,
      `${server.url}${elizaPath}/Say`,
      {
        headers: { "content-type": "application/grpc-web+proto" },
        body: envelope(SayRequestSchema, { sentence: "fail" }),
      },
    );
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toBe("application/grpc-web+proto");
    expectMiddlewareHeaders(response.headers);
    const text =
      response.body.toString("latin1") + JSON.stringify(response.headers);
    expect(text).toContain("grpc-status");
    expect(text).toContain("7");
  });

  it("sends them with a streamed response", async () => {
    const response = await rawRequest(
      version,
      `${server.url}${elizaPath}/Introduce`,
      {
        headers: { "content-type": "application/connect+json" },
        body: new Uint8Array([
          0,
          0,
          0,
          0,
          15,
          ...new TextEncoder().encode('{"name":"Ada"} '),
        ]),
      },
    );
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toBe("application/connect+json");
    expectMiddlewareHeaders(response.headers);
    expect(response.body.toString()).toContain('"sentence":"Ada 3"');
  });
});

describe("gRPC, over HTTP/2", () => {
  let server: StartedServer;
  beforeAll(async () => {
    server = await startServer("h2c", middleware);
  });
  afterAll(() => server.close());

  function expectMiddlewareHeaders(headers: Record<string, unknown>) {
    expect(headers["access-control-allow-origin"]).toBe("https://example.com");
    expect(headers["x-middleware"]).toBe("a, b");
  }

  it("sends them in a gRPC trailers-only response", async () => {
    const response = await rawRequest("2", `${server.url}${elizaPath}/Say`, {
      headers: { "content-type": "application/grpc", te: "trailers" },
      body: envelope(SayRequestSchema, { sentence: "fail" }),
    });
    // One HEADERS frame: the status comes with the middleware's headers.
    expect(response.headers["grpc-status"]).toBe("7");
    expect(response.headers["content-type"]).toMatch(/^application\/grpc/);
    expectMiddlewareHeaders(response.headers);
    expect(response.body.byteLength).toBe(0);
  });

  it("sends them with a gRPC stream", async () => {
    const response = await rawRequest(
      "2",
      `${server.url}${elizaPath}/Introduce`,
      {
        headers: { "content-type": "application/grpc", te: "trailers" },
        body: envelope(IntroduceRequestSchema, { name: "Ada" }),
      },
    );
    expectMiddlewareHeaders(response.headers);
    expect(response.trailers["grpc-status"]).toBe("0");
    expect(response.trailers["x-middleware"]).toBeUndefined();
  });
});
