import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { NodeCallSignal } from "./call-signal.ts";
import {
  NodeServerRequest,
  nodeWithoutContentEncoding,
  type NodeIncomingHeaders,
  type NodeRequestBody,
} from "./request.ts";

/** A response that never closes: the call's signal stays unaborted. */
class OpenResponse extends EventEmitter {
  readonly closed = false;
  readonly destroyed = false;
}

function request(
  init: {
    target?: string;
    headers?: NodeIncomingHeaders;
    rawHeaders?: readonly string[];
    encrypted?: boolean;
    source?: PassThrough;
    parsed?: AsyncIterable<Uint8Array>;
  } = {},
): NodeServerRequest {
  return new NodeServerRequest(
    (init.source ?? new PassThrough()) as unknown as NodeRequestBody,
    init.parsed,
    init.headers ?? {},
    init.rawHeaders ?? [],
    init.target ?? "/pkg.v1.Service/Method",
    "POST",
    init.encrypted ?? false,
    "1.1",
    new NodeCallSignal(new OpenResponse()),
  );
}

describe("NodeServerRequest", () => {
  it("splits the target into path and query", () => {
    const withQuery = request({ target: "/pkg.v1.Service/Method?a=1&b=2" });
    expect(withQuery.path).toBe("/pkg.v1.Service/Method");
    expect(withQuery.search).toBe("?a=1&b=2");
    const without = request({ target: "/pkg.v1.Service/Method" });
    expect(without.path).toBe("/pkg.v1.Service/Method");
    expect(without.search).toBe("");
  });

  it("makes its URL from the scheme, Host (or :authority) and target", () => {
    expect(
      request({ headers: { host: "example.com:8080" }, target: "/a/B?x=1" })
        .url,
    ).toBe("http://example.com:8080/a/B?x=1");
    expect(
      request({
        headers: { ":authority": "h2.example" },
        encrypted: true,
        target: "/a/B",
      }).url,
    ).toBe("https://h2.example/a/B");
    expect(request({ target: "/a/B" }).url).toBe("http://localhost/a/B");
  });

  it("reads one header from Node's parsed headers, repeated ones joined", () => {
    const r = request({
      headers: { "x-one": "1", "x-many": ["a", "b"], ":authority": "h" },
    });
    expect(r.header("x-one")).toBe("1");
    expect(r.header("x-many")).toBe("a, b");
    expect(r.header("x-none")).toBeNull();
    expect(r.header("host")).toBe("h");
  });

  it("builds all headers once, from the raw list, without pseudo-headers", () => {
    const r = request({
      rawHeaders: [
        ":method",
        "POST",
        ":authority",
        "h2.example",
        "X-Many",
        "a",
        "x-many",
        "b",
      ],
    });
    const all = r.headers();
    expect([...all]).toEqual([
      ["host", "h2.example"],
      ["x-many", "a, b"],
    ]);
    expect(r.headers()).toBe(all);
  });

  it("reads its body from the stream, or from what a body parser left", async () => {
    const source = new PassThrough();
    source.end(Buffer.from([1, 2, 3]));
    expect([...(await request({ source }).readBody(10))]).toEqual([1, 2, 3]);
    const parsed = {
      async *[Symbol.asyncIterator]() {
        yield new Uint8Array([4, 5]);
      },
    };
    expect([...(await request({ parsed }).readBody(10))]).toEqual([4, 5]);
    const chunks: number[] = [];
    for await (const chunk of request({ parsed }).body) chunks.push(...chunk);
    expect(chunks).toEqual([4, 5]);
  });

  it("gives the call's signal", () => {
    const call = new NodeCallSignal(new OpenResponse());
    const r = new NodeServerRequest(
      new PassThrough() as unknown as NodeRequestBody,
      undefined,
      {},
      [],
      "/",
      "POST",
      false,
      "1.1",
      call,
    );
    expect(r.signal).toBe(call.signal);
  });
});

describe("nodeWithoutContentEncoding", () => {
  it("drops Content-Encoding, whatever its case, and keeps the rest in order", () => {
    expect(
      nodeWithoutContentEncoding([
        "Content-Type",
        "application/json",
        "Content-Encoding",
        "gzip",
        "content-encoding",
        "br",
        "X-A",
        "1",
      ]),
    ).toEqual(["Content-Type", "application/json", "X-A", "1"]);
  });
});
