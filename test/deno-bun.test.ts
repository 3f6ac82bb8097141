// Deno and Bun, from their npm packages: the generated handler's `.fetch`
// served by Deno.serve and Bun.serve and called by generated clients on
// Node, and generated clients running on Deno and Bun calling a Node server.
// Every RPC kind, an error with metadata, and response headers, with each
// protocol and transport the pair can carry (test/runtimes/eliza.ts).

import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Code,
  createElizaServiceClient,
  createElizaServiceHandler,
  grpcProtocol,
  isConnectError,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import {
  callEveryKind,
  elizaImplementation,
  expectedResults,
} from "./runtimes/eliza.ts";
import { startServer, type StartedServer } from "./support/servers.ts";
import { repoRoot } from "./support/generate.ts";
import { elizaProtocols } from "./support/protocols.ts";

interface Runtime {
  readonly name: "deno" | "bun";
  /** The command that runs a TypeScript file. */
  readonly run: readonly string[];
  /** Whether its server takes HTTP/2 without TLS (h2c with prior knowledge). */
  readonly h2c: boolean;
}

const bin = join(repoRoot, "node_modules/.bin");
const runtimes: readonly Runtime[] = [
  {
    name: "deno",
    // --no-lock: no deno.lock in the checkout. Net for 127.0.0.1 only; read
    // and env for the generated files' imports from node_modules.
    run: [
      join(bin, "deno"),
      "run",
      "--no-lock",
      "--allow-net=127.0.0.1",
      "--allow-read",
      "--allow-env",
    ],
    h2c: true,
  },
  { name: "bun", run: [join(bin, "bun"), "run"], h2c: false },
];

type Protocol = "connect" | "grpc" | "grpc-web";
type Transport = "fetch" | "http2";

// Starting a runtime and its first compile take a while on a loaded machine;
// these limits only catch a hang.
const slow = { timeout: 120_000 };

/** Runs a script of test/runtimes on the runtime; resolves with its stdout. */
function runScript(runtime: Runtime, script: string, args: string[]) {
  const [command, ...flags] = runtime.run;
  return new Promise<string>((resolve, reject) => {
    const child = spawn(
      command!,
      [...flags, join(repoRoot, "test/runtimes", script), ...args],
      { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(stdout);
      else
        reject(
          new Error(`${runtime.name} ${script} exited ${code}:\n${stderr}`),
        );
    });
  });
}

/** Starts test/runtimes/serve.ts; it stops when its stdin closes. */
async function serveOn(
  runtime: Runtime,
): Promise<{ url: string; child: ChildProcess }> {
  const [command, ...flags] = runtime.run;
  const child = spawn(
    command!,
    [...flags, join(repoRoot, "test/runtimes/serve.ts")],
    { cwd: repoRoot, stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const port = /^listening (\d+)$/.exec(line)?.[1];
    if (port !== undefined) return { url: `http://127.0.0.1:${port}`, child };
  }
  throw new Error(`${runtime.name}: serve.ts ended before listening`);
}

describe.each(runtimes)("$name", (runtime) => {
  describe(`.fetch served by ${runtime.name}, generated clients on Node`, () => {
    let server: { url: string; child: ChildProcess };
    beforeAll(async () => {
      server = await serveOn(runtime);
    }, slow.timeout);
    afterAll(() => {
      server?.child.stdin?.end();
    });

    const pairs: [Protocol, Transport][] = [
      ["connect", "fetch"],
      ["grpc-web", "fetch"],
      ...(runtime.h2c
        ? ([
            ["connect", "http2"],
            ["grpc-web", "http2"],
          ] as [Protocol, Transport][])
        : []),
    ];
    it.each(pairs)(
      "%s over %s: every RPC kind",
      async (protocol, transport) => {
        const client = createElizaServiceClient(server.url, {
          protocol: elizaProtocols[protocol],
          transport,
        });
        expect(await callEveryKind(client)).toEqual(expectedResults);
      },
    );

    if (runtime.h2c) {
      // A Fetch API server cannot send HTTP trailers: gRPC is refused with a
      // message that says so, not left to time out.
      it("grpc over http2: unimplemented, naming the fetch handler", async () => {
        const client = createElizaServiceClient(server.url, {
          protocol: grpcProtocol,
        });
        const error = await client.say({ sentence: "hi" }).catch((e) => e);
        expect(isConnectError(error) && error.code).toBe(Code.Unimplemented);
        expect(String(error)).toMatch(/gRPC requires HTTP\/2 with trailers/);
      });
    }
  });

  describe(`generated clients on ${runtime.name}, a Node server`, () => {
    let http1: StartedServer;
    let h2c: StartedServer;
    beforeAll(async () => {
      const handler = createElizaServiceHandler(elizaImplementation);
      http1 = await startServer("http", handler.node);
      h2c = await startServer("h2c", handler.node);
    });
    afterAll(async () => {
      await Promise.all([http1?.close(), h2c?.close()]);
    });

    const pairs: [Protocol, Transport][] = [
      ["connect", "fetch"],
      ["grpc-web", "fetch"],
      ["connect", "http2"],
      ["grpc", "http2"],
      ["grpc-web", "http2"],
    ];
    it.each(pairs)(
      "%s over %s: every RPC kind",
      async (protocol, transport) => {
        const url = transport === "http2" ? h2c.url : http1.url;
        const stdout = await runScript(runtime, "call.ts", [
          url,
          protocol,
          transport,
        ]);
        expect(JSON.parse(stdout)).toEqual(expectedResults);
      },
      slow.timeout,
    );
  });
});
