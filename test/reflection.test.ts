// Server reflection end to end: the files the reflection=true option adds
// (test/gen-ops), served beside Eliza and health with one line, and used by
// buf curl without --schema (over gRPC, Connect and gRPC-Web, v1 and
// v1alpha) and by the reflection client generated in the same file.
import { execFile } from "node:child_process";
import {
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createElizaServiceHandler } from "./gen-ops/eliza/v1/eliza.ElizaService.ts";
import { createHealthServer } from "./gen-ops/grpc/health/v1/health.Health.ts";
import type { ServerReflectionRequest } from "./gen-ops/grpc/reflection/v1/reflection_pb.ts";
import {
  Code,
  connectProtocol,
  createReflectionHandlers,
  createServerReflectionClient,
  grpcProtocol,
  http2StreamHandler,
  nodeHandler,
  type Interceptor,
} from "./gen-ops/grpc/reflection/v1/reflection.ServerReflection.ts";
import { bufGenerate, repoRoot } from "./support/generate.ts";
import {
  startServer,
  startStreamServer,
  type StartedServer,
} from "./support/servers.ts";
import { strictOptions } from "./support/strict.ts";

const bufBin = join(
  dirname(fileURLToPath(import.meta.url)),
  "../node_modules/.bin/buf",
);

const elizaPath = "/connectrpc.eliza.v1.ElizaService/";

/** The reflection services each reflection call reached, in order. */
const reflected: string[] = [];
const record: Interceptor = (next) => (request) => {
  reflected.push(request.service);
  return next(request);
};

const eliza = createElizaServiceHandler({
  say: (request) => ({ sentence: `You said: ${request.sentence}` }),
});
const health = createHealthServer([eliza]);
const reflection = createReflectionHandlers([eliza, health], {
  interceptors: [record],
});

let h2c: StartedServer;
// Without Node's compatibility layer: the handlers' list flattened there too.
let streams: StartedServer;

beforeAll(async () => {
  h2c = await startServer("h2c", nodeHandler(eliza, health, reflection));
  streams = await startStreamServer(
    http2StreamHandler(eliza, health, reflection),
  );
});

afterAll(async () => {
  await h2c.close();
  await streams.close();
});

function bufCurl(
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // Asynchronous: the servers run in this process and must keep answering.
    execFile(bufBin, ["curl", ...args], (error, stdout, stderr) => {
      const code =
        error === null ? 0 : typeof error.code === "number" ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe("buf curl without --schema", () => {
  it.each([
    {
      name: "gRPC",
      flags: ["--protocol", "grpc", "--http2-prior-knowledge"],
      url: () => h2c.url,
    },
    // buf curl's default; it reflects over h2c whatever the protocol, as
    // the stream is bidi: reflection needs an HTTP/2 server.
    { name: "Connect", flags: [], url: () => h2c.url },
    {
      name: "gRPC-Web",
      flags: ["--protocol", "grpcweb"],
      url: () => h2c.url,
    },
  ])("calls Eliza over $name, its schema from reflection v1", async (o) => {
    reflected.length = 0;
    const result = await bufCurl([
      ...o.flags,
      "--data",
      JSON.stringify({ sentence: "hi ✓" }),
      `${o.url()}${elizaPath}Say`,
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ sentence: "You said: hi ✓" });
    expect(reflected).toContain("grpc.reflection.v1.ServerReflection");
    expect(reflected).not.toContain("grpc.reflection.v1alpha.ServerReflection");
  });

  it.each([
    { name: "nodeHandler", url: () => h2c.url },
    { name: "http2StreamHandler", url: () => streams.url },
  ])(
    "lists the services through $name: those given, and reflection's two",
    async (o) => {
      const result = await bufCurl([
        "--http2-prior-knowledge",
        "--list-services",
        o.url(),
      ]);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      expect(result.stdout.trim().split("\n")).toEqual([
        "connectrpc.eliza.v1.ElizaService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]);
    },
  );

  it("lists the methods of every service, v1alpha's described too", async () => {
    const result = await bufCurl([
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "--list-methods",
      h2c.url,
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const methods = result.stdout.trim().split("\n");
    expect(methods).toEqual(
      expect.arrayContaining([
        "connectrpc.eliza.v1.ElizaService/Converse",
        "connectrpc.eliza.v1.ElizaService/Introduce",
        "connectrpc.eliza.v1.ElizaService/Pontificate",
        "connectrpc.eliza.v1.ElizaService/Say",
        "grpc.health.v1.Health/Check",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      ]),
    );
  });

  it("works over v1alpha (--reflect-protocol grpc-v1alpha)", async () => {
    reflected.length = 0;
    const result = await bufCurl([
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "--reflect-protocol",
      "grpc-v1alpha",
      "--data",
      JSON.stringify({ sentence: "old" }),
      `${h2c.url}${elizaPath}Say`,
    ]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ sentence: "You said: old" });
    expect(reflected.length).toBeGreaterThan(0);
    expect(new Set(reflected)).toEqual(
      new Set(["grpc.reflection.v1alpha.ServerReflection"]),
    );
  });
});

describe("the generated reflection client", () => {
  it.each(["connect", "grpc"] as const)(
    "asks over %s: NOT_FOUND for an unknown file, and the stream goes on",
    async (protocol) => {
      const client = createServerReflectionClient(h2c.url, {
        protocol: { connect: connectProtocol, grpc: grpcProtocol }[protocol],
        transport: "http2",
      });
      const requests: ServerReflectionRequest["messageRequest"][] = [
        { case: "fileByFilename", value: "nope.proto" },
        {
          case: "fileContainingSymbol",
          value: "connectrpc.eliza.v1.ElizaService.Say",
        },
        { case: "listServices", value: "" },
      ];
      const answers = [];
      for await (const answer of client.serverReflectionInfo(
        requests.map((messageRequest) => ({ host: "h", messageRequest })),
      )) {
        answers.push(answer);
      }
      expect(answers.map((a) => a.messageResponse.case)).toEqual([
        "errorResponse",
        "fileDescriptorResponse",
        "listServicesResponse",
      ]);
      const [notFound, file, list] = answers.map((a) => a.messageResponse);
      expect(notFound?.case === "errorResponse" && notFound.value).toEqual(
        expect.objectContaining({
          errorCode: Code.NotFound,
          errorMessage: "file not found: nope.proto",
        }),
      );
      expect(answers[0]!.validHost).toBe("h");
      expect(answers[0]!.originalRequest?.messageRequest).toEqual(requests[0]);
      const files =
        file?.case === "fileDescriptorResponse"
          ? file.value.fileDescriptorProto.map(
              (bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name,
            )
          : [];
      expect(files).toEqual(["eliza/v1/eliza.proto"]);
      expect(
        list?.case === "listServicesResponse" &&
          list.value.service.map((s) => s.name),
      ).toEqual([
        "connectrpc.eliza.v1.ElizaService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
      ]);
    },
  );
});

describe("the reflection API with other options", () => {
  const work = mkdtempSync(join(tmpdir(), "cs-reflection-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const reflectionFile = "grpc/reflection/v1/reflection.ServerReflection.ts";

  function generate(name: string, options: string): string {
    const out = join(work, name);
    bufGenerate(out, options, join(repoRoot, "examples"));
    writeFileSync(join(out, "package.json"), '{ "type": "module" }');
    symlinkSync(join(repoRoot, "node_modules"), join(out, "node_modules"));
    return out;
  }

  it("typechecks for the web, with proto names, a shared runtime and no JSON", () => {
    const out = generate(
      "web",
      "reflection=true,platform=web,naming=proto,runtime=shared,json=false,import_extension=ts",
    );
    const text = readFileSync(join(out, reflectionFile), "utf8");
    expect(text).toContain("export function createReflectionHandlers(");
    expect(text).toContain(
      "{ ServerReflectionInfo: reflection.serverReflectionInfo }",
    );
    expect(text).toContain("): readonly FetchServiceHandler[] {");
    const program = ts.createProgram([join(out, reflectionFile)], {
      ...strictOptions,
      allowImportingTsExtensions: true,
    });
    expect(
      ts
        .getPreEmitDiagnostics(program)
        .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")),
    ).toEqual([]);
  });

  it("is left out of a client-only file", () => {
    const out = generate("client", "reflection=true,server=false");
    expect(readFileSync(join(out, reflectionFile), "utf8")).not.toContain(
      "createReflectionHandlers",
    );
  });
});
