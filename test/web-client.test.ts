// The client of a file generated with `platform=web`, against the same
// file's fetch handler in process: what differs from Node's client is that
// compression is opt-in (so that bundles which do not use it leave it out),
// through the file's `webCompressionGzip`, and that a file without streaming
// methods sends through a fetch client that cannot stream request bodies.

import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type * as Eliza from "./gen/eliza/v1/eliza.ElizaService.ts";
import type * as Greet from "./gen/unary/v1/unary.GreetService.ts";
import { bufGenerate, repoRoot } from "./support/generate.ts";
import { inProcessFetch } from "./support/http-clients.ts";

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
  const handler = eliza.createElizaServiceHandler({
    say(request, context) {
      seen.push(context.requestHeaders.get("content-encoding"));
      return { sentence: request.sentence };
    },
    async *introduce(request, context) {
      seen.push(context.requestHeaders.get("connect-accept-encoding"));
      yield { sentence: request.name };
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
