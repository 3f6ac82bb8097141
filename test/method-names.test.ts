import { execFileSync } from "node:child_process";
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import ts from "typescript";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bufGenerateAsync, fixturesDir, repoRoot } from "./support/generate.ts";
import { strictOptions } from "./support/strict.ts";

/**
 * Every method of fixtures/collisions' CollisionService (JavaScript and
 * TypeScript keywords and reserved words, Object.prototype's members, `then`,
 * the generated code's own parameter and local names) must give a file with
 * which an implementation object and a call of each method compile under the
 * strict flags, in both namings, as .ts and as .js with .d.ts; and, run,
 * serve and call each method.
 */

// The property names a method must not have, which get a trailing `$`:
// Object.prototype's (an implementation that leaves the method out would
// inherit one), toJSON (as protobuf-es), and then (an object with a `then`
// method is a thenable: `await client` would call it).
const escaped = new Set([
  "constructor",
  "__defineGetter__",
  "__defineSetter__",
  "hasOwnProperty",
  "__lookupGetter__",
  "__lookupSetter__",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toString",
  "valueOf",
  "__proto__",
  "toLocaleString",
  "toJSON",
  "then",
]);

type Kind = "unary" | "server" | "client" | "bidi";
interface Rpc {
  readonly name: string;
  readonly kind: Kind;
  /** Whether the method returns Response, with its int32 `status`. */
  readonly status: boolean;
}

// The service's methods, read from the fixture.
function collisionServiceMethods(): Rpc[] {
  const proto = readFileSync(
    join(fixturesDir, "collisions/v1/collisions.proto"),
    "utf8",
  );
  const body = /service CollisionService \{([\s\S]*?)\n\}/.exec(proto)?.[1];
  if (body === undefined) throw new Error("no CollisionService in the fixture");
  const rpcs: Rpc[] = [];
  for (const m of body.matchAll(
    /^\s*rpc (\w+)\((stream )?[\w.]+\) returns \((stream )?([\w.]+)\)/gm,
  )) {
    const [, name, clientStream, serverStream, output] = m;
    rpcs.push({
      name: name!,
      status: output === "Response",
      kind:
        clientStream && serverStream
          ? "bidi"
          : clientStream
            ? "client"
            : serverStream
              ? "server"
              : "unary",
    });
  }
  return rpcs;
}

function key(rpc: Rpc, naming: "camel" | "proto"): string {
  const name =
    naming === "camel"
      ? rpc.name.charAt(0).toLowerCase() + rpc.name.slice(1)
      : rpc.name;
  return escaped.has(name) ? `${name}$` : name;
}

/**
 * A program that implements every method (as object methods, the way users
 * write them), serves the implementation and an empty one on node:http2,
 * calls every method of both, and awaits the client itself.
 */
function usage(rpcs: readonly Rpc[], naming: "camel" | "proto", from: string) {
  const members = rpcs.map((rpc) => {
    const k = key(rpc, naming);
    switch (rpc.kind) {
      case "unary":
        // The first methods return other messages than Response.
        return rpc.status
          ? `  ${k}(request, context) {
    return { status: request === undefined || context === undefined ? 0 : 1 };
  },`
          : `  ${k}() {
    return {};
  },`;
      case "server":
        return `  async *${k}(request, context) {
    yield { status: request === undefined || context === undefined ? 0 : 2 };
  },`;
      case "client":
        return `  async ${k}(requests, context) {
    let n = context === undefined ? -1 : 0;
    for await (const r of requests) if (r !== undefined) n++;
    return { status: n };
  },`;
      case "bidi":
        return `  async *${k}(requests, context) {
    for await (const r of requests)
      if (r !== undefined && context !== undefined) yield { status: 4 };
  },`;
    }
  });
  // Each method called as users call it: client.<name>(...).
  const calls = (client: string, each: (call: string) => string) =>
    rpcs.map((rpc) => {
      const k = key(rpc, naming);
      switch (rpc.kind) {
        case "unary":
          return rpc.status
            ? each(`(await ${client}.${k}({})).status`)
            : each(`(await ${client}.${k}({})) === undefined ? 0 : 1`);
        case "server":
          return each(`await first(${client}.${k}({}))`);
        case "client":
          return each(`(await ${client}.${k}([{}, {}])).status`);
        case "bidi":
          return each(`await first(${client}.${k}([{}]))`);
      }
    });
  return `import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import {
  Code,
  ConnectError,
  createCollisionServiceClient,
  createCollisionServiceHandler,
  type CollisionServiceImplementation,
} from ${JSON.stringify(from)};

const implementation: CollisionServiceImplementation = {
${members.join("\n")}
};

async function serve(impl: Partial<CollisionServiceImplementation>): Promise<string> {
  const server = http2.createServer(createCollisionServiceHandler(impl).node);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return \`http://127.0.0.1:\${(server.address() as AddressInfo).port}\`;
}

async function first(messages: AsyncIterable<{ status: number }>): Promise<number> {
  for await (const m of messages) return m.status;
  return -1;
}

async function code(call: () => Promise<number>): Promise<string> {
  try {
    return \`ok \${await call()}\`;
  } catch (e) {
    if (e instanceof ConnectError && e.code === Code.Unimplemented) return "Unimplemented";
    return String(e);
  }
}

const client = createCollisionServiceClient(await serve(implementation), { transport: "http2" });
const empty = createCollisionServiceClient(await serve({}), { transport: "http2" });
const results: Record<string, string[]> = { served: [], unimplemented: [] };
${calls("client", (c) => `results["served"]!.push(await code(async () => ${c}));`).join("\n")}
${calls("empty", (c) => `results["unimplemented"]!.push(await code(async () => ${c}));`).join("\n")}
// Not a thenable: awaiting the client gives the client.
results["awaited"] = [String((await Promise.resolve(client)) === client)];
console.log(JSON.stringify(results));
process.exit(0);
`;
}

const work = mkdtempSync(join(tmpdir(), "cs-method-names-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Only the collisions fixture, to keep generation short.
const input = join(work, "input");
mkdirSync(input);
cpSync(join(fixturesDir, "buf.yaml"), join(input, "buf.yaml"));
cpSync(join(fixturesDir, "collisions"), join(input, "collisions"), {
  recursive: true,
});

const rpcs = collisionServiceMethods();

const variants = [
  { name: "camel, .ts", naming: "camel", options: "import_extension=ts" },
  {
    name: "proto, .ts",
    naming: "proto",
    options: "naming=proto,import_extension=ts",
  },
  {
    name: "camel, .js and .d.ts",
    naming: "camel",
    options: "target=js+dts,import_extension=js",
  },
  {
    name: "proto, .js and .d.ts",
    naming: "proto",
    options: "target=js+dts,naming=proto,import_extension=js",
  },
] as const;

describe.each(variants)("methods named like keywords, $name", (variant) => {
  const out = join(work, variant.name.replace(/\W+/g, "-"));
  const ext = variant.options.includes("import_extension=ts") ? "ts" : "js";
  const script = join(out, "usage.ts");
  // Generated before the tests, not at collection: four generations in one
  // synchronous stretch can keep the worker from vitest's replies for over
  // a minute on a loaded machine (see bufGenerateAsync).
  beforeAll(async () => {
    mkdirSync(out);
    await bufGenerateAsync(out, variant.options, input);
    writeFileSync(
      join(out, "package.json"),
      JSON.stringify({ type: "module" }),
    );
    symlinkSync(join(repoRoot, "node_modules"), join(out, "node_modules"));
    writeFileSync(
      script,
      usage(
        rpcs,
        variant.naming,
        `./collisions/v1/collisions.CollisionService.${ext}`,
      ),
    );
  });

  it("covers every kind of keyword in the fixture", () => {
    const names = new Set(rpcs.map((r) => r.name));
    for (const word of ["new", "then", "get", "constructor", "__proto__"]) {
      expect(names.has(word), word).toBe(true);
    }
    expect(new Set(rpcs.map((r) => r.kind)).size).toBe(4);
  });

  it("compiles an implementation and a call of every method", () => {
    const program = ts.createProgram([script], {
      ...strictOptions,
      allowImportingTsExtensions: ext === "ts",
    });
    const diagnostics = ts
      .getPreEmitDiagnostics(program)
      .map((d) =>
        ts.flattenDiagnosticMessageText(d.messageText, "\n").slice(0, 300),
      );
    expect(diagnostics).toEqual([]);
  });

  // Run only where the messages exist as .ts: test/support/generate.ts has
  // protoc-gen-es write TypeScript, which the .js variants cannot import.
  if (ext !== "ts") return;
  it("serves and calls every method", () => {
    const output = execFileSync(process.execPath, [script], {
      cwd: out,
      encoding: "utf8",
    });
    const results = JSON.parse(output) as Record<string, string[]>;
    const expected = (kind: Kind) =>
      ({ unary: "ok 1", server: "ok 2", client: "ok 2", bidi: "ok 4" })[kind];
    expect(results["served"]).toEqual(rpcs.map((r) => expected(r.kind)));
    // An empty implementation inherits nothing that passes for a method.
    expect(results["unimplemented"]).toEqual(rpcs.map(() => "Unimplemented"));
    expect(results["awaited"]).toEqual(["true"]);
  });
});
