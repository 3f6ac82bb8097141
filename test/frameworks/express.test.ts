// Express 5 in front of a generated service (`app.use(eliza.node)`), behind
// the body parsers apps commonly mount for every route: the service uses
// what a parser read, and says what is wrong when no parser left a body.
import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Code,
  createElizaServiceClient,
  grpcWebProtocol,
  isConnectError,
  jsonCodec,
  type NodeClientOptions,
} from "../gen/eliza/v1/eliza.ElizaService.ts";
import { eliza, elizaPath } from "./eliza.ts";

async function listen(
  app: express.Express,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = app.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function client(url: string, options: NodeClientOptions = {}) {
  return createElizaServiceClient(url, options);
}

describe("behind express.json()", () => {
  let server: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    const app = express();
    app.use(express.json());
    app.post("/other", (request, response) => {
      response.json({ parsed: request.body as unknown });
    });
    app.use(eliza.node);
    server = await listen(app);
  });
  afterAll(() => server.close());

  it("serves a Connect JSON call of the generated client", async () => {
    const response = await client(server.url, { codec: jsonCodec() }).say({
      sentence: "hi",
    });
    expect(response.sentence).toBe("You said: hi");
  });

  it("serves a gzipped Connect JSON call (the parser inflated it)", async () => {
    const response = await client(server.url, {
      codec: jsonCodec(),
      sendCompression: "gzip",
      compressMinBytes: 0,
    }).say({ sentence: "hi, compressed" });
    expect(response.sentence).toBe("You said: hi, compressed");
  });

  it("serves a Connect JSON POST made with fetch", async () => {
    const response = await fetch(`${server.url}${elizaPath}/Say`, {
      method: "POST",
      headers: { "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({ sentence: "plain fetch" }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      sentence: "You said: plain fetch",
    });
  });

  it("serves binary calls, which the parser leaves unread", async () => {
    const response = await client(server.url).say({ sentence: "binary" });
    expect(response.sentence).toBe("You said: binary");
    const sentences: string[] = [];
    for await (const message of client(server.url, {
      codec: jsonCodec(),
    }).introduce({ name: "Ada" })) {
      sentences.push(message.sentence);
    }
    expect(sentences).toEqual(["Ada 1", "Ada 2", "Ada 3"]);
  });

  it("hands OPTIONS requests to the service", async () => {
    const response = await fetch(`${server.url}${elizaPath}/Say`, {
      method: "OPTIONS",
      headers: {
        origin: "https://example.com",
        "access-control-request-method": "POST",
      },
    });
    // The service's answer: without a cors option, it serves no preflights.
    expect(response.status).toBe(405);
    expect(response.headers.get("allow")).toBe("GET, POST");
  });

  it("still parses JSON for the app's own routes", async () => {
    const response = await fetch(`${server.url}/other`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ a: 1 }),
    });
    expect(await response.json()).toEqual({ parsed: { a: 1 } });
  });
});

describe("behind express.raw({ type: '*/*' })", () => {
  let server: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    const app = express();
    app.use(express.raw({ type: "*/*" }));
    app.use(eliza.node);
    server = await listen(app);
  });
  afterAll(() => server.close());

  it("serves a binary Connect call", async () => {
    const response = await client(server.url).say({ sentence: "raw" });
    expect(response.sentence).toBe("You said: raw");
  });

  it("serves a gRPC-Web call and a gRPC-Web stream", async () => {
    const grpcWeb = client(server.url, { protocol: grpcWebProtocol });
    expect((await grpcWeb.say({ sentence: "web" })).sentence).toBe(
      "You said: web",
    );
    const sentences: string[] = [];
    for await (const message of grpcWeb.introduce({ name: "Bo" })) {
      sentences.push(message.sentence);
    }
    expect(sentences).toEqual(["Bo 1", "Bo 2", "Bo 3"]);
  });

  it("sends the implementation's errors as they are", async () => {
    const error = await client(server.url)
      .say({ sentence: "fail" })
      .catch((e: unknown) => e);
    expect(isConnectError(error) && error.code).toBe(Code.PermissionDenied);
  });
});

describe("behind express.text()", () => {
  let server: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    const app = express();
    app.use(express.text({ type: "application/json" }));
    app.use(eliza.node);
    server = await listen(app);
  });
  afterAll(() => server.close());

  it("serves a Connect JSON call from the parsed string", async () => {
    const response = await client(server.url, { codec: jsonCodec() }).say({
      sentence: "text ✓",
    });
    expect(response.sentence).toBe("You said: text ✓");
  });
});

describe("behind middleware that read the body and kept nothing", () => {
  let server: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    const app = express();
    app.use((request, _response, next) => {
      request.resume();
      request.once("end", () => next());
    });
    app.use(eliza.node);
    server = await listen(app);
  });
  afterAll(() => server.close());

  it("fails with internal, naming the cause and the fix", async () => {
    const error = await client(server.url)
      .say({ sentence: "lost" })
      .catch((e: unknown) => e);
    expect(isConnectError(error)).toBe(true);
    if (!isConnectError(error)) return;
    expect(error.code).toBe(Code.Internal);
    expect(error.message).toContain("read before this handler");
    expect(error.message).toContain("mount the service before it");
  });

  it("fails a stream the same way", async () => {
    const error = await (async () => {
      for await (const _ of client(server.url, {
        protocol: grpcWebProtocol,
      }).introduce({ name: "lost" })) {
        // No message is expected.
      }
    })().catch((e: unknown) => e);
    expect(isConnectError(error) && error.code).toBe(Code.Internal);
  });
});
