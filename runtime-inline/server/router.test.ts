import { describe, expect, it } from "vitest";
import {
  bodyBytes,
  envelopes,
  serverRequest,
  stringValue,
  testMethod,
  testServiceDesc,
} from "../../test/support/server.ts";
import { envelopeEncode } from "../core/envelope.ts";
import { compressionGzip } from "../node/compression.ts";
import { connectServer } from "./connect.ts";
import { grpcWebServer } from "./grpc-web.ts";
import { grpcServer } from "./grpc.ts";
import type { MethodHandler, ServerResponse } from "./handler.ts";
import type { ServerProtocol } from "./protocol.ts";
import { createServiceHandler } from "./router.ts";

const servicePath = "/test.v1.TestService/";

const methods: (MethodHandler | undefined)[] = [
  { method: testMethod("Unary"), unary: () => ({ value: "u" }) },
  {
    method: testMethod("Stream", "server_streaming"),
    stream: async function* () {
      yield { value: "s" };
    },
  },
  // A method the implementation left out.
  undefined,
];

/** A protocol that answers with a status naming what the router asked of it. */
function recording(
  name: ServerProtocol["name"],
  contentType: string,
  withStream = true,
): ServerProtocol & { calls: string[] } {
  const calls: string[] = [];
  const answer = (what: string): Promise<ServerResponse> => {
    calls.push(what);
    return Promise.resolve({ status: 299, header: new Headers() });
  };
  return {
    name,
    accepts: (type) => type === contentType,
    contentTypes: contentType,
    unary: (handler) => answer(`unary ${handler.method.name}`),
    stream: withStream
      ? (handler) => answer(`stream ${handler.method.name}`)
      : undefined,
    unimplemented: (request) => answer(`unimplemented ${request.path}`),
    calls,
  };
}

function handle(
  protocols: readonly ServerProtocol[],
  path: string,
  contentType?: string,
) {
  return createServiceHandler(
    testServiceDesc,
    methods,
    {},
    { compressions: [], protocols },
  ).handle(
    serverRequest({
      path,
      ...(contentType === undefined
        ? {}
        : { headers: { "content-type": contentType } }),
    }),
  );
}

describe("createServiceHandler", () => {
  it("hands a request to the protocol that accepts its content type", async () => {
    const a = recording("connect", "application/a");
    const b = recording("grpc", "application/b");
    await handle([a, b], `${servicePath}Unary`, "application/b");
    await handle([a, b], `${servicePath}Stream`, "application/a");
    expect(a.calls).toEqual(["stream Stream"]);
    expect(b.calls).toEqual(["unary Unary"]);
  });

  it("leaves other services' paths alone", async () => {
    const a = recording("connect", "application/a");
    expect(
      await handle([a], "/other.v1.Service/Unary", "application/a"),
    ).toBeUndefined();
    expect(a.calls).toEqual([]);
  });

  it("answers 415 naming every protocol's content types when none accepts", async () => {
    const a = recording("connect", "application/a");
    const b = recording("grpc", "application/b");
    const response = await handle([a, b], `${servicePath}Unary`, "text/xml");
    expect(response?.status).toBe(415);
    expect(response?.header.get("accept-post")).toBe(
      "application/a, application/b",
    );
    expect([...a.calls, ...b.calls]).toEqual([]);
  });

  it("lets the protocol answer an unknown or unimplemented method, or a stream it cannot serve", async () => {
    const unaryOnly = recording("connect", "application/a", false);
    await handle([unaryOnly], `${servicePath}Nope`, "application/a");
    await handle([unaryOnly], `${servicePath}Stream`, "application/a");
    expect(unaryOnly.calls).toEqual([
      `unimplemented ${servicePath}Nope`,
      `unimplemented ${servicePath}Stream`,
    ]);
  });
});

describe("createServiceHandler with the real protocols", () => {
  const all = [connectServer(), grpcServer(), grpcWebServer()];
  const service = (protocols: readonly ServerProtocol[]) =>
    createServiceHandler(
      testServiceDesc,
      methods,
      {},
      { compressions: [compressionGzip], protocols },
    );
  const body = [envelopeEncode(0, stringValue("x"))];

  it("routes by content type: gRPC-Web, gRPC, else Connect", async () => {
    const web = await service(all).handle(
      serverRequest({
        path: `${servicePath}Unary`,
        headers: { "content-type": "application/grpc-web+proto" },
        body,
      }),
    );
    expect(web?.header.get("content-type")).toBe("application/grpc-web+proto");
    const frames = envelopes(await bodyBytes(web!));
    expect(frames.map((f) => f.flags)).toEqual([0, 0x80]);

    // gRPC over HTTP/1.1 is gRPC's to refuse, with its own status.
    const grpc = await service(all).handle(
      serverRequest({
        path: `${servicePath}Unary`,
        headers: { "content-type": "application/grpc" },
        body,
      }),
    );
    expect(grpc?.header.get("grpc-status")).toBe("12");

    const connect = await service(all).handle(
      serverRequest({
        path: `${servicePath}Unary`,
        headers: { "content-type": "application/proto" },
        body: [stringValue("x")],
      }),
    );
    expect(connect?.status).toBe(200);
    expect(connect?.header.get("content-type")).toBe("application/proto");
  });

  it("answers Connect's unknown methods with 404 and gRPC's with unimplemented", async () => {
    const connect = await service(all).handle(
      serverRequest({
        path: `${servicePath}Nope`,
        headers: { "content-type": "application/proto" },
      }),
    );
    expect(connect?.status).toBe(404);
    const grpcWeb = await service(all).handle(
      serverRequest({
        path: `${servicePath}Nope`,
        headers: { "content-type": "application/grpc-web" },
      }),
    );
    expect(grpcWeb?.status).toBe(200);
    const trailer = new TextDecoder().decode(
      envelopes(await bodyBytes(grpcWeb!))[0]!.data,
    );
    expect(trailer).toContain("grpc-status: 12");
  });

  it("answers 415 for a protocol the file does not serve", async () => {
    const response = await service([connectServer()]).handle(
      serverRequest({
        path: `${servicePath}Unary`,
        headers: { "content-type": "application/grpc" },
      }),
    );
    expect(response?.status).toBe(415);
    expect(response?.header.get("accept-post")).toBe(
      "application/proto, application/json",
    );
    const grpcOnly = await service([grpcServer()]).handle(
      serverRequest({
        path: `${servicePath}Unary`,
        headers: { "content-type": "application/json" },
      }),
    );
    expect(grpcOnly?.status).toBe(415);
    expect(grpcOnly?.header.get("accept-post")).toBe("application/grpc");
  });
});

describe("createServiceHandler with cors", () => {
  const page = "https://app.example.com";
  const service = createServiceHandler(
    testServiceDesc,
    methods,
    { cors: { allowedOrigins: [page] } },
    {
      compressions: [compressionGzip],
      protocols: [connectServer(), grpcServer(), grpcWebServer()],
    },
  );

  it("answers preflights for every path of the service, whatever the method", async () => {
    for (const path of [`${servicePath}Unary`, `${servicePath}Nope`]) {
      const response = await service.handle(
        serverRequest({
          method: "OPTIONS",
          path,
          headers: {
            origin: page,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-grpc-web",
          },
        }),
      );
      expect(response?.status).toBe(204);
      expect(response?.header.get("access-control-allow-origin")).toBe(page);
      expect(response?.body).toBeUndefined();
    }
    const other = await service.handle(
      serverRequest({
        method: "OPTIONS",
        path: "/other.v1.Service/Unary",
        headers: { origin: page, "access-control-request-method": "POST" },
      }),
    );
    expect(other).toBeUndefined();
  });

  it("adds the CORS headers to successes, errors and trailers-only responses of every protocol", async () => {
    const cases: [string, Record<string, string>, number][] = [
      // Connect success, Connect 404, gRPC-Web error in the body, gRPC
      // trailers-only (refused over HTTP/1.1), 415.
      [`${servicePath}Unary`, { "content-type": "application/proto" }, 200],
      [`${servicePath}Nope`, { "content-type": "application/proto" }, 404],
      [`${servicePath}Nope`, { "content-type": "application/grpc-web" }, 200],
      [`${servicePath}Unary`, { "content-type": "application/grpc" }, 200],
      [`${servicePath}Unary`, { "content-type": "text/plain" }, 415],
    ];
    for (const [path, headers, status] of cases) {
      const response = await service.handle(
        serverRequest({
          path,
          headers: { ...headers, origin: page },
          body: [stringValue("x")],
        }),
      );
      expect(response?.status, `${path} ${headers["content-type"]}`).toBe(
        status,
      );
      expect(response?.header.get("access-control-allow-origin")).toBe(page);
      expect(response?.header.get("access-control-expose-headers")).toContain(
        "Grpc-Status",
      );
    }
  });

  it("leaves the response of a request without an Origin as it was, but for Vary", async () => {
    const response = await service.handle(
      serverRequest({
        path: `${servicePath}Unary`,
        headers: { "content-type": "application/proto" },
        body: [stringValue("x")],
      }),
    );
    expect(response?.status).toBe(200);
    expect(response?.header.get("access-control-allow-origin")).toBeNull();
    expect(response?.header.get("vary")).toBe("Origin");
  });

  it("lets a plain OPTIONS request through to the protocol", async () => {
    const response = await service.handle(
      serverRequest({
        method: "OPTIONS",
        path: `${servicePath}Unary`,
        headers: { origin: page },
      }),
    );
    expect(response?.status).toBe(405);
  });
});
