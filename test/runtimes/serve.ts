// Serves the Eliza handler's `.fetch` with the runtime's own server
// (Deno.serve or Bun.serve) on 127.0.0.1, on a free port. Prints
// `listening <port>` once it takes calls, and exits when its standard input
// ends, so that a test that dies never leaves it behind.
import { createElizaServiceHandler } from "../gen/eliza/v1/eliza.ElizaService.ts";
import { elizaImplementation } from "./eliza.ts";

declare const Deno: {
  serve(
    options: {
      hostname: string;
      port: number;
      onListen(addr: { port: number }): void;
    },
    handler: (request: Request) => Promise<Response>,
  ): { shutdown(): Promise<void> };
  stdin: { readable: ReadableStream<Uint8Array> };
  exit(code: number): never;
};
declare const Bun: {
  serve(options: {
    hostname: string;
    port: number;
    fetch(request: Request): Promise<Response>;
  }): { port: number; stop(force: boolean): void };
  stdin: { stream(): ReadableStream<Uint8Array> };
};

const handler = createElizaServiceHandler(elizaImplementation);

// Both runtimes' streams are async iterable; TypeScript's web types do not say so.
let stdin: AsyncIterable<Uint8Array>;
if ("Deno" in globalThis) {
  Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      onListen: ({ port }) => console.log(`listening ${port}`),
    },
    (request) => handler.fetch(request),
  );
  stdin = Deno.stdin.readable as unknown as AsyncIterable<Uint8Array>;
} else if ("Bun" in globalThis) {
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (request) => handler.fetch(request),
  });
  console.log(`listening ${server.port}`);
  stdin = Bun.stdin.stream() as unknown as AsyncIterable<Uint8Array>;
} else {
  throw new Error("serve.ts runs on Deno or Bun");
}
for await (const _ of stdin) {
  // Nothing is sent; the end of input is the signal to stop.
}
process.exit(0);
