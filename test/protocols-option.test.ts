// The `protocols=` and `json=` plugin options, end to end: files generated
// with a subset of the protocols serve and speak exactly that subset. Their
// clients default to the first protocol (and a gRPC-first Node client to
// HTTP/2), they export no protocol value for the protocols they were not
// generated with (and clients refuse names, and values lacking their
// callers), and their servers answer 415 to requests in those protocols
// while serving the others on the same port. Files generated with json=false
// do the same for JSON: no jsonCodec export, and 415 to JSON requests.

import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import * as http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type * as Eliza from "./gen/eliza/v1/eliza.ElizaService.ts";
import * as Greet from "./gen/unary/v1/unary.GreetService.ts";
import { bufGenerate, repoRoot } from "./support/generate.ts";
import { protocolValues } from "./support/protocols.ts";
import { startServer, type StartedServer } from "./support/servers.ts";

const work = mkdtempSync(join(tmpdir(), "cs-protocols-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Generates the fixtures with `options` and loads the Eliza service file. */
async function generateEliza(options: string): Promise<typeof Eliza> {
  const out = join(work, options.replaceAll(/\W/g, "_"));
  bufGenerate(out, `import_extension=ts,${options}`);
  writeFileSync(join(out, "package.json"), JSON.stringify({ type: "module" }));
  symlinkSync(join(repoRoot, "node_modules"), join(out, "node_modules"));
  // The generated file has the API of test/gen's, minus the left-out protocols.
  return (await import(
    pathToFileURL(join(out, "eliza/v1/eliza.ElizaService.ts")).href
  )) as typeof Eliza;
}

const implementation: Partial<Eliza.ElizaServiceImplementation> = {
  say: (request, context) => ({
    sentence: `${context.protocol}: ${request.sentence}`,
  }),
  async *introduce(request, context) {
    yield { sentence: `${context.protocol}: hi ${request.name}` };
    yield { sentence: "bye" };
  },
};

/** A raw unary request in the given Content-Type over h2c: the HTTP status and content type. */
function rawH2c(
  url: string,
  contentType: string,
): Promise<{ status: number; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": "/connectrpc.eliza.v1.ElizaService/Say",
      "content-type": contentType,
      te: "trailers",
    });
    stream.end(new Uint8Array([0, 0, 0, 0, 0]));
    stream.on("response", (headers) => {
      resolve({
        status: Number(headers[":status"]),
        contentType: headers["content-type"],
      });
      stream.close();
      session.close();
    });
    stream.on("error", reject);
  });
}

describe("protocols=grpc", () => {
  let eliza: typeof Eliza;
  let server: StartedServer;
  beforeAll(async () => {
    eliza = await generateEliza("protocols=grpc");
    server = await startServer(
      "h2c",
      eliza.createElizaServiceHandler(implementation).node,
    );
  });
  afterAll(() => server.close());

  it("the client speaks gRPC over HTTP/2 by default", async () => {
    const client = eliza.createElizaServiceClient(server.url);
    expect(await client.say({ sentence: "x" })).toMatchObject({
      sentence: "grpc: x",
    });
    const sentences: string[] = [];
    for await (const m of client.introduce({ name: "n" })) {
      sentences.push(m.sentence);
    }
    expect(sentences).toEqual(["grpc: hi n", "bye"]);
  });

  it("the file exports no value for the protocols it was not generated with", () => {
    expect("grpcProtocol" in eliza).toBe(true);
    expect("connectProtocol" in eliza).toBe(false);
    expect("grpcWebProtocol" in eliza).toBe(false);
  });

  it("the client refuses a protocol name, as older generated code took", () => {
    for (const name of ["connect", "grpc", "grpc-web"]) {
      // As a JavaScript caller, or one that casts, could pass it.
      const protocol = name as unknown as Eliza.ClientProtocol;
      expect(() =>
        eliza.createElizaServiceClient(server.url, { protocol }),
      ).toThrow(
        `protocol must be a protocol value that a generated file exports (connectProtocol, grpcProtocol or grpcWebProtocol), not "${name}"`,
      );
    }
  });

  it("the client refuses the protocol value of a file without streaming methods", () => {
    // GreetService's file has unary methods only: its grpcProtocol carries
    // no streaming callers, which ElizaService's client needs.
    expect(() =>
      eliza.createElizaServiceClient(server.url, {
        protocol: Greet.grpcProtocol,
        transport: "http2",
      }),
    ).toThrow(
      'protocol "grpc" has no streaming calls: it comes from a file without such methods; pass the value exported by this service\'s file',
    );
  });

  it("the server answers Connect and gRPC-Web requests with 415, and keeps serving gRPC", async () => {
    for (const contentType of [
      "application/proto",
      "application/connect+proto",
      "application/grpc-web+proto",
    ]) {
      expect(await rawH2c(server.url, contentType), contentType).toEqual({
        status: 415,
        contentType: undefined,
      });
    }
    const client = eliza.createElizaServiceClient(server.url);
    expect((await client.say({ sentence: "y" })).sentence).toBe("grpc: y");
  });

  it("a gRPC-only Node client refuses the fetch transport", () => {
    expect(() =>
      eliza.createElizaServiceClient(server.url, { transport: "fetch" }),
    ).toThrow(
      'gRPC needs HTTP/2 trailers, which fetch cannot read: use transport "http2", or grpcWebProtocol',
    );
  });
});

describe("protocols=grpc-web,connect", () => {
  let eliza: typeof Eliza;
  let h1: StartedServer;
  let h2: StartedServer;
  beforeAll(async () => {
    eliza = await generateEliza("protocols=grpc-web,connect");
    const handler = eliza.createElizaServiceHandler(implementation);
    h1 = await startServer("http", handler.node);
    h2 = await startServer("h2c", handler.node);
  });
  afterAll(async () => {
    await h1.close();
    await h2.close();
  });

  it("the client defaults to the first protocol, gRPC-Web, over fetch", async () => {
    const client = eliza.createElizaServiceClient(h1.url);
    expect((await client.say({ sentence: "x" })).sentence).toBe("grpc-web: x");
  });

  it("the client speaks Connect when asked", async () => {
    const client = eliza.createElizaServiceClient(h1.url, {
      protocol: eliza.connectProtocol,
    });
    expect((await client.say({ sentence: "x" })).sentence).toBe("connect: x");
  });

  it("the file exports no gRPC value, and the client refuses the name", () => {
    expect("grpcProtocol" in eliza).toBe(false);
    expect("connectProtocol" in eliza).toBe(true);
    expect("grpcWebProtocol" in eliza).toBe(true);
    const protocol = "grpc" as unknown as Eliza.ClientProtocol;
    expect(() =>
      eliza.createElizaServiceClient(h2.url, { protocol, transport: "http2" }),
    ).toThrow(
      'protocol must be a protocol value that a generated file exports (connectProtocol, grpcProtocol or grpcWebProtocol), not "grpc"',
    );
  });

  it("the server answers gRPC with 415 and serves both others on the same port", async () => {
    expect(await rawH2c(h2.url, "application/grpc")).toEqual({
      status: 415,
      contentType: undefined,
    });
    for (const protocol of ["connect", "grpc-web"] as const) {
      const client = eliza.createElizaServiceClient(h2.url, {
        protocol: protocolValues(eliza)[protocol],
        transport: "http2",
      });
      expect((await client.say({ sentence: "z" })).sentence).toBe(
        `${protocol}: z`,
      );
    }
  });
});

describe("json=false", () => {
  let eliza: typeof Eliza;
  let server: StartedServer;
  beforeAll(async () => {
    eliza = await generateEliza("json=false");
    server = await startServer(
      "h2c",
      eliza.createElizaServiceHandler(implementation).node,
    );
  });
  afterAll(() => server.close());

  it("serves binary protobuf over every protocol", async () => {
    for (const protocol of ["connect", "grpc", "grpc-web"] as const) {
      const client = eliza.createElizaServiceClient(server.url, {
        protocol: protocolValues(eliza)[protocol],
        transport: "http2",
      });
      expect((await client.say({ sentence: "b" })).sentence).toBe(
        `${protocol}: b`,
      );
    }
  });

  it("answers JSON requests of every protocol with 415, naming the binary content type", async () => {
    for (const [contentType, accepted] of [
      ["application/json", "application/proto"],
      ["application/grpc+json", "application/grpc+proto"],
      ["application/grpc-web+json", "application/grpc-web+proto"],
    ]) {
      const session = http2.connect(server.url);
      const headers = await new Promise<http2.IncomingHttpHeaders>(
        (resolve, reject) => {
          const stream = session.request({
            ":method": "POST",
            ":path": "/connectrpc.eliza.v1.ElizaService/Say",
            "content-type": contentType!,
          });
          stream.on("response", resolve);
          stream.on("error", reject);
          stream.end("{}");
        },
      );
      session.close();
      expect(headers[":status"], contentType).toBe(415);
      expect(headers["accept-post"], contentType).toBe(accepted);
    }
  });

  it("the file exports no JSON codec: its clients speak binary only", () => {
    expect("jsonCodec" in eliza).toBe(false);
    expect("createElizaServiceClient" in eliza).toBe(true);
  });
});
