import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bufGenerateAsync, repoRoot } from "./support/generate.ts";
import { strictOptions } from "./support/strict.ts";
import { reflectionNames } from "../templates/reflection.ts";

/**
 * Every fixture, generated under each meaningful option set, must match the
 * files under snapshots/ (run with UPDATE_SNAPSHOTS=1 to rewrite them) and
 * typecheck under the strict flags generated code promises.
 *
 * Snapshots are for people to review. Per option set one file is kept whole
 * (the Eliza service, which has every kind of method; with runtime=shared,
 * the runtime file); of every other file, its own code (`.api` before the
 * extension: everything up to its last API declaration) and a list of the
 * runtime declarations it copied after that (`.runtime.txt`). A runtime
 * change then shows once per option set, plus a line per file where it
 * changes what is copied.
 */
const optionSets: Record<string, string> = {
  default: "",
  "js-dts": "target=js+dts",
  "server-only": "client=false",
  "client-web": "server=false,platform=web",
  "naming-proto": "naming=proto,import_extension=js",
  "connect-web-client":
    "server=false,platform=web,protocols=connect,json=false",
  "grpc-only": "protocols=grpc",
  "runtime-shared": "runtime=shared",
  operations: "health=true,reflection=true",
};

/** Option sets whose other files are the default's: only these are kept. */
const snapshotOnly: Record<string, RegExp> = {
  operations: /^grpc\//,
};

/** The files of each option set, generated once for all tests. */
const generated = new Map<string, string>();

const golden =
  /(^|\/)(eliza\.ElizaService|connect-standalone\.runtime)\.(ts|js|d\.ts)$/;

/** What snapshots/ holds of a generated file: file name, then content. */
function snapshotOf(file: string, text: string): [string, string][] {
  if (golden.test(file)) return [[file, text]];
  const split = splitAtRuntime(file, text);
  if (split === undefined) return [[file, text]];
  const api = file.replace(/(\.d)?\.[jt]s$/, (ext) => `.api${ext}`);
  return [
    [api, split.api],
    [`${file}.runtime.txt`, split.runtime.map((n) => `${n}\n`).join("")],
  ];
}

/**
 * A service file's own code, up to its last API declaration, and the names
 * declared after it, in order; undefined for a file without a runtime part.
 */
function splitAtRuntime(
  file: string,
  text: string,
): { api: string; runtime: string[] } | undefined {
  const service = /\.([^./]+)(\.d)?\.[jt]s$/.exec(file)?.[1];
  if (service === undefined) return undefined;
  const api = new Set([
    `${service}Definition`,
    `${service}Client`,
    `create${service}Client`,
    `${service}Implementation`,
    `create${service}Handler`,
    // What templates/health.ts adds to the Health file.
    ...(service === "Health" ? ["HealthServer", "createHealthServer"] : []),
    // What templates/reflection.ts adds to the ServerReflection file.
    ...(service === "ServerReflection" ? Object.values(reflectionNames) : []),
  ]);
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest);
  const names = source.statements.map(declaredName);
  const last = names.findLastIndex((n) => n !== undefined && api.has(n));
  const runtime = names
    .slice(last + 1)
    .filter((n, i, all): n is string => n !== undefined && n !== all[i - 1]);
  if (last < 0 || runtime.length === 0) return undefined;
  return {
    api: `${text.slice(0, source.statements[last]!.end).trimEnd()}\n`,
    runtime,
  };
}

function declaredName(statement: ts.Statement): string | undefined {
  if (
    ts.isFunctionDeclaration(statement) ||
    ts.isClassDeclaration(statement) ||
    ts.isInterfaceDeclaration(statement) ||
    ts.isTypeAliasDeclaration(statement)
  ) {
    return statement.name?.text;
  }
  if (ts.isVariableStatement(statement)) {
    const name = statement.declarationList.declarations[0]?.name;
    return name !== undefined && ts.isIdentifier(name) ? name.text : undefined;
  }
  return undefined;
}

const work = mkdtempSync(join(tmpdir(), "cs-snap-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

// The generated files need @bufbuild/protobuf: resolve it from the repo.
// Asynchronously (see bufGenerateAsync): generating nine option sets in one
// synchronous stretch took over a minute on a loaded machine.
async function generateInto(name: string, options: string): Promise<string> {
  const out = join(work, name);
  mkdirSync(out, { recursive: true });
  await bufGenerateAsync(out, options);
  writeFileSync(join(out, "package.json"), JSON.stringify({ type: "module" }));
  symlinkSync(join(repoRoot, "node_modules"), join(out, "node_modules"));
  return out;
}

// The option sets' programs share TypeScript's libs and the packages'
// declarations: parsed once for all of them, not once per program (about a
// third of each program's time). Generated files are never shared: each
// option set has its own directory.
const sharedSourceFiles = new Map<string, ts.SourceFile | undefined>();

function cachingHost(options: ts.CompilerOptions): ts.CompilerHost {
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (fileName, languageVersion, onError, create) => {
    if (!fileName.includes("/node_modules/") || create === true) {
      return getSourceFile(fileName, languageVersion, onError, create);
    }
    const version =
      typeof languageVersion === "object"
        ? `${languageVersion.languageVersion}:${languageVersion.impliedNodeFormat}`
        : String(languageVersion);
    const key = `${version}:${fileName}`;
    if (!sharedSourceFiles.has(key)) {
      sharedSourceFiles.set(
        key,
        getSourceFile(fileName, languageVersion, onError, create),
      );
    }
    return sharedSourceFiles.get(key);
  };
  return host;
}

function typecheck(
  dir: string,
  files: string[],
  options: ts.CompilerOptions,
): string[] {
  const program = ts.createProgram(
    files.map((f) => join(dir, f)),
    options,
    cachingHost(options),
  );
  return ts.getPreEmitDiagnostics(program).map((d) =>
    ts.formatDiagnostic(d, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => dir,
      getNewLine: () => "\n",
    }),
  );
}

describe.each(Object.entries(optionSets))("option set %s", (name, options) => {
  let dir = "";
  let ours: string[] = [];
  beforeAll(async () => {
    dir = await generateInto(name, options);
    generated.set(name, dir);
    ours = listFiles(dir).filter(
      (f) =>
        !f.includes("_pb.") &&
        !f.startsWith("node_modules") &&
        f !== "package.json",
    );
  });

  it("generates one file per service", () => {
    expect(
      ours.filter(
        (f) =>
          !f.endsWith(".d.ts") && !f.includes("connect-standalone.runtime"),
      ).length,
    ).toBe(9 + (options.match(/(health|reflection)=true/g)?.length ?? 0));
  });

  it("matches the snapshots", () => {
    const snapDir = join(repoRoot, "snapshots", name);
    const kept = ours.filter((f) => snapshotOnly[name]?.test(f) ?? true);
    const snapshots = new Map(
      kept.flatMap((f) => snapshotOf(f, readFileSync(join(dir, f), "utf8"))),
    );
    if (process.env["UPDATE_SNAPSHOTS"] === "1") {
      rmSync(snapDir, { recursive: true, force: true });
      for (const [f, text] of snapshots) {
        mkdirSync(dirname(join(snapDir, f)), { recursive: true });
        writeFileSync(join(snapDir, f), text);
      }
    }
    expect(
      existsSync(snapDir),
      `no snapshots for ${name}: run UPDATE_SNAPSHOTS=1`,
    ).toBe(true);
    expect([...snapshots.keys()].sort()).toEqual(listFiles(snapDir));
    for (const [f, text] of snapshots) {
      expect(text, f).toBe(readFileSync(join(snapDir, f), "utf8"));
    }
  });

  it("typechecks with the strict flags", () => {
    const files = listFiles(dir).filter(
      (f) =>
        !f.startsWith("node_modules") &&
        (f.endsWith(".d.ts") ||
          (f.endsWith(".ts") && options.includes("target=js") === false)),
    );
    // Extensionless imports (protoc-gen-es's default) are for bundlers.
    const resolution: ts.CompilerOptions = options.includes("import_extension")
      ? {}
      : {
          module: ts.ModuleKind.ESNext,
          moduleResolution: ts.ModuleResolutionKind.Bundler,
        };
    expect(typecheck(dir, files, { ...strictOptions, ...resolution })).toEqual(
      [],
    );
  });
});

describe("generation", () => {
  it("is byte-for-byte deterministic", async () => {
    const a = await generateInto("det-a", "");
    const b = await generateInto("det-b", "");
    const files = listFiles(a).filter((f) => !f.startsWith("node_modules"));
    expect(files).toEqual(
      listFiles(b).filter((f) => !f.startsWith("node_modules")),
    );
    for (const f of files) {
      expect(readFileSync(join(a, f), "utf8")).toBe(
        readFileSync(join(b, f), "utf8"),
      );
    }
  });

  it("copies only what a unary-only, client-only, Connect-only file uses", () => {
    const file = readFileSync(
      join(
        generated.get("connect-web-client")!,
        "unary/v1/unary.GreetService.ts",
      ),
      "utf8",
    );
    const declared = (name: string) =>
      new RegExp(`\\b(function|const|class|interface|type) ${name}\\b`).test(
        file,
      );
    for (const serverOrGet of [
      "createServiceHandler",
      "connectServer",
      "connectHandleUnary",
      "fetchHandler",
      "nodeHandler",
      "HandlerContext",
      "connectGetQuery",
      "connectParseGetQuery",
      "createConnectStreamCaller",
      "envelopeRead",
      "grpcUnaryCaller",
      "grpcStatusFromTrailers",
      "grpcWebDecodeTrailers",
      "jsonCodec",
    ]) {
      expect(declared(serverOrGet), serverOrGet).toBe(false);
    }
    expect(file).not.toContain('from "node:');
    // json=false: nothing imports protobuf's JSON code, so bundlers drop it.
    expect(file).not.toMatch(/\b(toJsonString|fromJsonString)\b/);
    expect(declared("createConnectUnaryCaller")).toBe(true);
    expect(file).toContain("export function createGreetServiceClient(");
  });

  it("copies only the chosen protocols", () => {
    const file = readFileSync(
      join(generated.get("grpc-only")!, "eliza/v1/eliza.ElizaService.ts"),
      "utf8",
    );
    for (const name of [
      "function grpcServer(",
      "function createGrpcUnaryCaller(",
      "function createGrpcStreamCaller(",
    ]) {
      expect(file).toContain(name);
    }
    for (const name of [
      "connectServer",
      "connectHandleUnary",
      "connectHandleStream",
      "connectParseGetQuery",
      "createConnectUnaryCaller",
      "connectErrorFromJson",
      "grpcWebServer",
      "grpcWebDecodeTrailers",
      "grpcWebEncodeTrailers",
    ]) {
      // Declarations, not mentions: comments may name what was left out.
      expect(file, name).not.toMatch(
        new RegExp(`\\b(function\\*?|const|class) ${name}\\b`),
      );
    }
    const web = readFileSync(
      join(generated.get("client-web")!, "eliza/v1/eliza.ElizaService.ts"),
      "utf8",
    );
    expect(web).toContain("function createGrpcWebUnaryCaller(");
    expect(web).not.toContain("function createGrpcUnaryCaller(");
  });

  it("leaves streaming code out of a unary-only server", () => {
    const file = readFileSync(
      join(generated.get("server-only")!, "unary/v1/unary.GreetService.ts"),
      "utf8",
    );
    expect(file).toContain("function connectHandleUnary(");
    expect(file).not.toContain("function connectHandleStream(");
    expect(file).not.toContain("function serverStartStream(");
    expect(file).not.toContain("function grpcServeStream(");
    const eliza = readFileSync(
      join(generated.get("server-only")!, "eliza/v1/eliza.ElizaService.ts"),
      "utf8",
    );
    expect(eliza).toContain("function connectHandleStream(");
  });

  it("keeps GET code where a NO_SIDE_EFFECTS method needs it", () => {
    const file = readFileSync(
      join(generated.get("default")!, "eliza/v1/eliza.ElizaService.ts"),
      "utf8",
    );
    expect(file).toContain("function connectGetQuery(");
    expect(file).toContain("function connectParseGetQuery(");
  });

  it("aliases imported messages whose names clash with the runtime", () => {
    const file = readFileSync(
      join(
        generated.get("default")!,
        "collisions/v1/collisions.CollisionService.ts",
      ),
      "utf8",
    );
    expect(file).toMatch(/Headers as Headers\$1/);
    expect(file).toMatch(/ConnectError as ConnectError\$1/);
    expect(file).toContain("export class ConnectError extends Error");
  });

  it("runs under Node's type stripping without a build step", () => {
    // test/gen is generated by the global setup with import_extension=ts.
    const dir = join(repoRoot, "test/gen");
    const script = join(dir, "type-stripping-check.ts");
    writeFileSync(
      script,
      `import { createGreetServiceClient, createGreetServiceHandler, Code } from "./unary/v1/unary.GreetService.ts";
const handler = createGreetServiceHandler({
  greet: (req) => ({ greeting: "hi " + req.name }),
  echo: (req) => req,
  fail: () => ({}),
});
const client = createGreetServiceClient("http://localhost", {
  httpClient: async (r) => {
    const res = await handler.fetch(new Request(r.url, { method: r.method, headers: r.header, body: r.body ?? null }));
    return { status: res.status, header: res.headers, body: [new Uint8Array(await res.arrayBuffer())], trailer: new Headers(), contentDecoded: true };
  },
});
const res = await client.greet({ name: "node" });
console.log(res.greeting, Code.NotFound);
`,
    );
    const output = execFileSync(process.execPath, [script], {
      cwd: dir,
      encoding: "utf8",
    });
    rmSync(script);
    expect(output.trim()).toBe("hi node 5");
  });
});
