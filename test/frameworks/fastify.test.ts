// Fastify 5 serving a generated service through its plugin
// (`app.register(eliza.fastify)`), over HTTP/1.1 and HTTP/2 (h2c), next to
// the app's own routes, whose JSON bodies Fastify still parses. tsc checks
// here that a real FastifyInstance takes the plugin (the generated file
// types it structurally, without depending on fastify).
import Fastify from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Code,
  createElizaServiceClient,
  fastifyPlugin,
  grpcProtocol,
  grpcWebProtocol,
  isConnectError,
  jsonCodec,
  type FastifyInstanceLike,
  type NodeClientOptions,
} from "../gen/eliza/v1/eliza.ElizaService.ts";
import { createGreetServiceHandler } from "../gen/unary/v1/unary.GreetService.ts";
import { eliza, elizaPath, rawRequest } from "./eliza.ts";

const greet = createGreetServiceHandler({
  greet: (request) => ({ greeting: `Hello, ${request.name}` }),
});

describe.each([
  ["1.1", false],
  ["2", true],
] as const)("over HTTP/%s", (version, http2) => {
  let url = "";
  let close: () => Promise<void> = async () => {};
  const options: NodeClientOptions =
    version === "2" ? { transport: "http2" } : {};
  beforeAll(async () => {
    if (http2) {
      const app = Fastify({ http2: true }) satisfies FastifyInstanceLike;
      // The app's own hooks and routes, around the services' plugin.
      app.addHook("onRequest", async (_request, reply) => {
        reply.header("x-hook", "from an onRequest hook");
      });
      app.post("/echo", async (request) => ({ parsed: request.body }));
      // Both ways of registering: one service, or several in one plugin.
      await app.register(fastifyPlugin(eliza, greet));
      url = await app.listen({ port: 0, host: "127.0.0.1" });
      close = () => app.close();
    } else {
      const app = Fastify() satisfies FastifyInstanceLike;
      app.addHook("onRequest", async (_request, reply) => {
        reply.header("x-hook", "from an onRequest hook");
      });
      app.post("/echo", async (request) => ({ parsed: request.body }));
      await app.register(eliza.fastify);
      await app.register(greet.fastify);
      url = await app.listen({ port: 0, host: "127.0.0.1" });
      close = () => app.close();
    }
  });
  afterAll(() => close());

  it("serves a unary call, binary and JSON, with the hooks' headers", async () => {
    let header = new Headers();
    const binary = await createElizaServiceClient(url, options).say(
      { sentence: "binary" },
      { onHeader: (h) => (header = h) },
    );
    expect(binary.sentence).toBe("You said: binary");
    expect(header.get("x-hook")).toBe("from an onRequest hook");
    const json = await createElizaServiceClient(url, {
      ...options,
      codec: jsonCodec(),
    }).say({ sentence: "json" });
    expect(json.sentence).toBe("You said: json");
  });

  it("serves a server stream", async () => {
    const sentences: string[] = [];
    for await (const message of createElizaServiceClient(
      url,
      options,
    ).introduce({ name: "Ada" })) {
      sentences.push(message.sentence);
    }
    expect(sentences).toEqual(["Ada 1", "Ada 2", "Ada 3"]);
  });

  it("serves gRPC-Web (and gRPC over HTTP/2)", async () => {
    const web = createElizaServiceClient(url, {
      ...options,
      protocol: grpcWebProtocol,
    });
    expect((await web.say({ sentence: "web" })).sentence).toBe("You said: web");
    if (http2) {
      const grpc = createElizaServiceClient(url, {
        ...options,
        protocol: grpcProtocol,
      });
      expect((await grpc.say({ sentence: "grpc" })).sentence).toBe(
        "You said: grpc",
      );
      const error = await grpc
        .say({ sentence: "fail" })
        .catch((e: unknown) => e);
      expect(isConnectError(error) && error.code).toBe(Code.PermissionDenied);
    }
  });

  it("serves a Connect GET", async () => {
    const response = await createElizaServiceClient(url, {
      ...options,
      useHttpGet: true,
    }).say({ sentence: "get" });
    expect(response.sentence).toBe("You said: get");
  });

  it("answers an unknown method as Connect's unimplemented", async () => {
    const response = await rawRequest(version, `${url}${elizaPath}/Nope`, {
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(response.status).toBe(404);
    expect(JSON.parse(response.body.toString())).toMatchObject({
      code: "unimplemented",
    });
  });

  it("hands OPTIONS requests to the service", async () => {
    const response = await rawRequest(version, `${url}${elizaPath}/Say`, {
      method: "OPTIONS",
      headers: {
        origin: "https://example.com",
        "access-control-request-method": "POST",
      },
    });
    // The service's answer (without a cors option, it serves no
    // preflights), not Fastify's own "Route OPTIONS:… not found".
    expect(response.status).toBe(405);
    expect(response.headers["allow"]).toBe("GET, POST");
  });

  it("leaves JSON parsing on for the app's other routes", async () => {
    const response = await rawRequest(version, `${url}/echo`, {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ a: [1, 2] }),
    });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body.toString())).toEqual({
      parsed: { a: [1, 2] },
    });
  });

  it("serves a second service registered alongside", async () => {
    const response = await rawRequest(
      version,
      `${url}/fixtures.unary.v1.GreetService/Greet`,
      {
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "Ada" }),
      },
    );
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body.toString())).toMatchObject({
      greeting: "Hello, Ada",
    });
  });
});
