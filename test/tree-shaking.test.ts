import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bufGenerateAsync, repoRoot } from "./support/generate.ts";

/**
 * A web client's protocols and its JSON codec are values the application
 * imports, so that a bundler leaves out those it does not (the bundle
 * sizes in bench/bundle.ts depend on it). Each entry here is what an
 * application writes, bundled as bench/bundle.ts does; the assertions look
 * for code only one protocol or the JSON codec has.
 */
let work: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "cs-tree-shaking-"));
  // The default protocols of platform=web (Connect, gRPC-Web), JSON included.
  await bufGenerateAsync(join(work, "gen"), "server=false,platform=web");
});

afterAll(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

/** Bundles an application that creates a GreetService client with `options`. */
async function bundle(
  imports: readonly string[],
  options: string,
): Promise<{ code: string; inputs: readonly string[] }> {
  const entry = join(work, `entry-${imports.join("-") || "none"}.ts`);
  writeFileSync(
    entry,
    `import { createGreetServiceClient${imports.map((i) => `, ${i}`).join("")} } from "./gen/unary/v1/unary.GreetService.ts";
const client = createGreetServiceClient("https://api.example.test", ${options});
console.log(await client.greet({ name: "a" }));
`,
  );
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    metafile: true,
    logLevel: "silent",
    absWorkingDir: work,
    // The work directory is outside the repository: resolve packages from it.
    nodePaths: [join(repoRoot, "node_modules")],
  });
  // The inputs that put code in the bundle: esbuild lists every module it
  // read in metafile.inputs, tree-shaken ones too.
  const output = Object.values(result.metafile.outputs)[0]!;
  return {
    code: result.outputFiles[0]!.text,
    inputs: Object.entries(output.inputs)
      .filter(([, input]) => input.bytesInOutput > 0)
      .map(([path]) => path),
  };
}

const protobufJson = (inputs: readonly string[]) =>
  inputs.filter((path) =>
    /@bufbuild\/protobuf\/.*\/(to|from)-json\.js$/.test(path),
  );

describe("a web client's bundle", () => {
  it("carries neither gRPC-Web nor JSON when the application imports neither", async () => {
    const { code, inputs } = await bundle([], "{}");
    expect(code).toContain("connect-protocol-version");
    expect(code).not.toContain("application/grpc-web");
    // Nor gRPC's top-level values (its timeout header), which a bundler
    // keeps when their initializers look effectful.
    expect(code).not.toContain("grpc-timeout");
    expect(protobufJson(inputs)).toEqual([]);
  });

  it("carries gRPC-Web when the application passes grpcWebProtocol", async () => {
    const { code, inputs } = await bundle(
      ["grpcWebProtocol"],
      "{ protocol: grpcWebProtocol }",
    );
    expect(code).toContain("application/grpc-web");
    expect(protobufJson(inputs)).toEqual([]);
  });

  it("carries protobuf's JSON code when the application passes jsonCodec()", async () => {
    const { code, inputs } = await bundle(
      ["jsonCodec"],
      "{ codec: jsonCodec() }",
    );
    expect(code).not.toContain("application/grpc-web");
    expect(protobufJson(inputs)).toHaveLength(2);
  });
});
