// A Next.js App Router route module over a generated service's `.fetch`
// (./next-route.ts), called as Next calls it: with a Request subclass and a
// context holding the catch-all segment's params.
import { afterEach, describe, expect, it } from "vitest";
import {
  createElizaServiceClient,
  createFetchHttpClient,
} from "../gen/eliza/v1/eliza.ElizaService.ts";
import { elizaPath, envelopeBytes } from "./eliza.ts";
import * as route from "./next-route.ts";

/** Stands in for NextRequest, which extends Request. */
class NextRequestLike extends Request {
  get nextUrl(): URL {
    return new URL(this.url);
  }
}

const calls: string[] = [];
afterEach(() => {
  calls.length = 0;
});

/** A route handler as Next types and calls it. */
type NextRouteHandler = (
  request: Request,
  context: { params: Promise<{ connect: string[] }> },
) => Promise<Response> | Response;

// tsc checks that the module's exports fit.
const handlers: Record<"GET" | "POST" | "OPTIONS", NextRouteHandler> = route;

/** Next's dispatch: the route module's export named by the HTTP method. */
async function next(request: Request): Promise<Response> {
  const method = request.method as "GET" | "POST" | "OPTIONS";
  calls.push(method);
  const segments = new URL(request.url).pathname.split("/").slice(1);
  return handlers[method](new NextRequestLike(request), {
    params: Promise.resolve({ connect: segments }),
  });
}

const nextFetch: typeof fetch = (input, init) => next(new Request(input, init));

const baseUrl = "http://localhost:3000";

describe("a Next.js route module over .fetch", () => {
  it("serves a Connect unary POST", async () => {
    const response = await next(
      new Request(`${baseUrl}${elizaPath}/Say`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ sentence: "hi" }),
      }),
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ sentence: "You said: hi" });
    expect(calls).toEqual(["POST"]);
  });

  it("serves a Connect GET", async () => {
    const message = encodeURIComponent(JSON.stringify({ sentence: "get" }));
    const response = await next(
      new Request(
        `${baseUrl}${elizaPath}/Say?connect=v1&encoding=json&message=${message}`,
      ),
    );
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ sentence: "You said: get" });
    expect(calls).toEqual(["GET"]);
  });

  it("serves a server stream, read from the Response body", async () => {
    const request = new TextEncoder().encode(JSON.stringify({ name: "Ada" }));
    const response = await next(
      new Request(`${baseUrl}${elizaPath}/Introduce`, {
        method: "POST",
        headers: { "content-type": "application/connect+json" },
        body: envelopeBytes(request),
      }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe(
      "application/connect+json",
    );
    const bytes = new Uint8Array(await response.arrayBuffer());
    const frames: { flags: number; json: unknown }[] = [];
    for (let at = 0; at < bytes.byteLength;) {
      const length = new DataView(bytes.buffer, at + 1, 4).getUint32(0);
      const payload = bytes.subarray(at + 5, at + 5 + length);
      frames.push({
        flags: bytes[at]!,
        json: JSON.parse(new TextDecoder().decode(payload)),
      });
      at += 5 + length;
    }
    expect(frames).toEqual([
      { flags: 0, json: { sentence: "Ada 1" } },
      { flags: 0, json: { sentence: "Ada 2" } },
      { flags: 0, json: { sentence: "Ada 3" } },
      { flags: 2, json: {} },
    ]);
  });

  it("serves the generated client: unary, GET and a stream", async () => {
    const client = createElizaServiceClient(baseUrl, {
      httpClient: createFetchHttpClient(nextFetch),
      useHttpGet: true,
    });
    expect((await client.say({ sentence: "client" })).sentence).toBe(
      "You said: client",
    );
    const sentences: string[] = [];
    for await (const message of client.introduce({ name: "Bo" })) {
      sentences.push(message.sentence);
    }
    expect(sentences).toEqual(["Bo 1", "Bo 2", "Bo 3"]);
    expect(calls).toEqual(["GET", "POST"]);
  });
});
