// The client of a file generated with `platform=web`, against the same
// file's fetch handler in process: what differs from Node's client is that
// compression is opt-in (so that bundles which do not use it leave it out),
// through the file's `webCompressionGzip`; that unary and server-streaming
// calls send whole request bodies (a browser streams one only over HTTP/2),
// client- and bidi-streaming calls streaming ones; and that a file without
// client- or bidi-streaming methods sends through a fetch client that
// cannot stream request bodies.

import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type * as Editions from "./gen/editions/v1/editions.EditionsService.ts";
import type * as Eliza from "./gen/eliza/v1/eliza.ElizaService.ts";
import type * as Greet from "./gen/unary/v1/unary.GreetService.ts";
import { bufGenerate, repoRoot } from "./support/generate.ts";
import { inProcessFetch } from "./support/http-clients.ts";
import { protocolValues } from "./support/protocols.ts";

/** The Node file's API less what a web file leaves out, plus webCompressionGzip. */
type WebEliza = Omit<
  typeof Eliza,
  "createElizaServiceClient" | "nodeHandler" | "compressionGzip"
> & {
  createElizaServiceClient: (
    baseUrl: string,
    options?: Eliza.ClientOptions,
  ) => Eliza.ElizaServiceClient;
  webCompressionGzip: Eliza.Compression;
};

const work = mkdtempSync(join(tmpdir(), "cs-web-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let eliza: WebEliza;
let greet: typeof Greet;
let editions: typeof Editions;
/** Content-Encoding (unary) or Connect-Content-Encoding (streams) of each request. */
const seen: (string | null)[] = [];
let fetchFn: typeof fetch;

beforeAll(async () => {
  bufGenerate(work, "import_extension=ts,platform=web");
  writeFileSync(join(work, "package.json"), JSON.stringify({ type: "module" }));
  symlinkSync(join(repoRoot, "node_modules"), join(work, "node_modules"));
  eliza = (await import(
    pathToFileURL(join(work, "eliza/v1/eliza.ElizaService.ts")).href
  )) as WebEliza;
  greet = (await import(
    pathToFileURL(join(work, "unary/v1/unary.GreetService.ts")).href
  )) as typeof Greet;
  editions = (await import(
    pathToFileURL(join(work, "editions/v1/editions.EditionsService.ts")).href
  )) as typeof Editions;
  const handler = eliza.createElizaServiceHandler({
    say(request, context) {
      seen.push(context.requestHeaders.get("content-encoding"));
      return { sentence: request.sentence };
    },
    async *introduce(request, context) {
      seen.push(context.requestHeaders.get("connect-accept-encoding"));
      yield { sentence: request.name };
    },
    async *converse(requests) {
      for await (const request of requests) {
        yield { sentence: request.sentence };
      }
    },
    async pontificate(requests) {
      const sentences: string[] = [];
      for await (const request of requests) sentences.push(request.sentence);
      return { sentence: sentences.join(" ") };
    },
  });
  fetchFn = inProcessFetch(handler.fetch);
});

const big = "x".repeat(4096);

describe("platform=web client", () => {
  it("sends uncompressed and offers no compression by default", async () => {
    seen.length = 0;
    const client = eliza.createElizaServiceClient("http://web.invalid", {
      httpClient: eliza.createFetchHttpClient(fetchFn),
    });
    expect((await client.say({ sentence: big })).sentence).toBe(big);
    for await (const m of client.introduce({ name: big })) {
      expect(m.sentence).toBe(big);
    }
    expect(seen).toEqual([null, null]);
  });

  it("refuses a send compression it was not given", async () => {
    const client = eliza.createElizaServiceClient("http://web.invalid", {
      httpClient: eliza.createFetchHttpClient(fetchFn),
      sendCompression: "gzip",
    });
    await expect(client.say({ sentence: "x" })).rejects.toMatchObject({
      code: eliza.Code.InvalidArgument,
      rawMessage: 'unknown send compression "gzip": available are ',
    });
  });

  it("compresses with webCompressionGzip when given it", async () => {
    seen.length = 0;
    const client = eliza.createElizaServiceClient("http://web.invalid", {
      httpClient: eliza.createFetchHttpClient(fetchFn),
      compressions: [eliza.webCompressionGzip],
      sendCompression: "gzip",
    });
    expect((await client.say({ sentence: big })).sentence).toBe(big);
    // Streamed responses are compressed per message: the client decodes them.
    for await (const m of client.introduce({ name: big })) {
      expect(m.sentence).toBe(big);
    }
    expect(seen).toEqual(["gzip", "gzip"]);
  });
});

/** A fetch that records the init of each request it passes on to `fetchFn`. */
function recording(fetchFn: typeof fetch) {
  const inits: (RequestInit & { duplex?: string })[] = [];
  const recorded: typeof fetch = (input, init) => {
    inits.push(init ?? {});
    return fetchFn(input, init);
  };
  return { inits, recorded };
}

describe("platform=web client, request bodies", () => {
  for (const protocol of ["connect", "grpc-web"] as const) {
    it(`${protocol}: unary and server-streaming calls send whole bodies; client- and bidi-streaming calls stream theirs, half duplex`, async () => {
      const { inits, recorded } = recording(fetchFn);
      const client = eliza.createElizaServiceClient("http://web.invalid", {
        protocol: protocolValues(eliza)[protocol],
        httpClient: eliza.createFetchHttpClient(recorded),
      });
      expect((await client.say({ sentence: "a" })).sentence).toBe("a");
      const introduced: string[] = [];
      for await (const m of client.introduce({ name: "b" })) {
        introduced.push(m.sentence);
      }
      expect(introduced).toEqual(["b"]);
      expect(
        (await client.pontificate([{ sentence: "c" }, { sentence: "d" }]))
          .sentence,
      ).toBe("c d");
      const conversed: string[] = [];
      for await (const m of client.converse([{ sentence: "e" }])) {
        conversed.push(m.sentence);
      }
      expect(conversed).toEqual(["e"]);
      const bodies = inits.map((init) => [
        init.body instanceof Uint8Array
          ? "whole"
          : init.body instanceof ReadableStream
            ? "stream"
            : String(init.body),
        init.duplex,
      ]);
      expect(bodies).toEqual([
        ["whole", undefined],
        ["whole", undefined],
        ["stream", "half"],
        ["stream", "half"],
      ]);
    });
  }
});

describe("platform=web client of a service without client- or bidi-streaming methods", () => {
  it("calls through the global fetch by default, a server-streaming call with a whole body", async () => {
    const handler = editions.createEditionsServiceHandler({
      get: (request) => ({ id: request.id }),
      async *watch(request) {
        for (let sequence = 1; sequence <= request.count; sequence++) {
          yield { sequence };
        }
      },
    });
    const { inits, recorded } = recording(inProcessFetch(handler.fetch));
    vi.stubGlobal("fetch", recorded);
    try {
      const client = editions.createEditionsServiceClient("http://web.invalid");
      const sequences: number[] = [];
      for await (const m of client.watch({ id: "x", count: 3 })) {
        sequences.push(m.sequence);
      }
      expect(sequences).toEqual([1, 2, 3]);
    } finally {
      vi.unstubAllGlobals();
    }
    expect(inits).toHaveLength(1);
    expect(inits[0]!.body).toBeInstanceOf(Uint8Array);
    expect("duplex" in inits[0]!).toBe(false);
  });
});

describe("platform=web client of a unary-only service", () => {
  it("calls through the global fetch by default", async () => {
    const handler = greet.createGreetServiceHandler({
      echo: (request) => ({ data: request.data }),
    });
    const data = new Uint8Array(5000).fill(7);
    vi.stubGlobal("fetch", inProcessFetch(handler.fetch));
    try {
      const client = greet.createGreetServiceClient("http://web.invalid");
      expect((await client.echo({ data })).data).toEqual(data);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
