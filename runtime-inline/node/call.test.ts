import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";
import type { DescService } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import type { ServerResponse, ServiceHandler } from "../server/handler.ts";
import { NodeCall } from "./call.ts";
import { NodeServerRequest, type NodeRequestBody } from "./request.ts";
import type { NodeResponseTarget } from "./respond.ts";
import { nodeCallTracker } from "./shutdown.ts";

/** An HTTP/1.1 response that records what is written to it. */
class FakeResponse extends EventEmitter {
  closed = false;
  destroyed = false;
  status: number | undefined;
  headers: Record<string, unknown> | undefined;
  body: Uint8Array | undefined;
  ended = false;
  destroyedWith: unknown = "not destroyed";

  writeHead(status: number, headers: Record<string, unknown>): this {
    if (this.status !== undefined) throw new Error("headers sent twice");
    // As Node's writeHead throws on a header value it refuses.
    if (headers["x-refused"] !== undefined) {
      throw new TypeError("Invalid character in header content");
    }
    this.status = status;
    this.headers = { ...headers };
    return this;
  }
  hasHeader(): boolean {
    return false;
  }
  getHeaders(): Record<string, unknown> {
    return {};
  }
  end(body?: Uint8Array): this {
    this.body = body;
    this.ended = true;
    return this;
  }
  destroy(error?: Error): this {
    this.destroyed = true;
    this.destroyedWith = error;
    return this;
  }
}

function handler(
  path: string,
  handle: ServiceHandler["handle"],
): ServiceHandler & { asked: number } {
  const h = {
    path,
    service: {} as DescService,
    asked: 0,
    handle(request: Parameters<ServiceHandler["handle"]>[0]) {
      h.asked++;
      return handle(request);
    },
  };
  return h;
}

const ok: ServerResponse = {
  status: 200,
  header: new Headers({ "content-type": "application/proto" }),
  body: new Uint8Array([1, 2]),
};

/** Serves one request to `/b.v1.B/Method` and waits for the answer to be written. */
async function serve(
  handlers: readonly ServiceHandler[],
  options: { next?: () => void; server?: object } = {},
): Promise<{ response: FakeResponse; call: NodeCall }> {
  const response = new FakeResponse();
  const call = new NodeCall(
    handlers,
    response as unknown as NodeResponseTarget,
    undefined,
    options.next,
    options.server,
  );
  call.serve(
    new NodeServerRequest(
      new PassThrough() as unknown as NodeRequestBody,
      undefined,
      {},
      [],
      "/b.v1.B/Method",
      "POST",
      false,
      "1.1",
      call,
    ),
  );
  // The handlers' promises and the continuations after them.
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return { response, call };
}

describe("NodeCall", () => {
  it("asks only the handlers whose path prefixes the request's, in order", async () => {
    const a = handler("/a.v1.A/", async () => ok);
    const b = handler("/b.v1.B/", async () => ok);
    const c = handler("/b.v1.B/", async () => ok);
    const { response } = await serve([a, b, c]);
    expect([a.asked, b.asked, c.asked]).toEqual([0, 1, 0]);
    expect(response.status).toBe(200);
    expect(response.headers).toEqual({
      "content-type": "application/proto",
      "content-length": 2,
    });
    expect([...response.body!]).toEqual([1, 2]);
  });

  it("goes on to the next handler when one answers undefined", async () => {
    const b = handler("/b.v1.B/", async () => undefined);
    const c = handler("/b.v1.B/", async () => ({ ...ok, status: 201 }));
    const { response } = await serve([b, c]);
    expect([b.asked, c.asked]).toEqual([1, 1]);
    expect(response.status).toBe(201);
  });

  it("hands a request no handler serves to next(), else answers 404", async () => {
    const a = handler("/a.v1.A/", async () => ok);
    let nexts = 0;
    const passed = await serve([a], { next: () => void nexts++ });
    expect(nexts).toBe(1);
    expect(passed.response.status).toBeUndefined();
    expect(passed.call.complete).toBe(true);

    const { response } = await serve([a]);
    expect(response.status).toBe(404);
    expect(JSON.parse(new TextDecoder().decode(response.body))).toEqual({
      code: "unimplemented",
      message: "no such method: /b.v1.B/Method",
    });
  });

  it("keeps the call in the server's tracker until its response is written", async () => {
    const server = {};
    const calls = nodeCallTracker(server).calls;
    let answer: (response: ServerResponse) => void = () => {};
    const b = handler(
      "/b.v1.B/",
      () => new Promise((resolve) => (answer = resolve)),
    );
    const { response, call } = await serve([b], { server });
    expect(calls.has(call)).toBe(true);
    expect(call.complete).toBe(false);
    answer(ok);
    for (let i = 0; i < 3; i++) await Promise.resolve();
    expect(response.status).toBe(200);
    expect(calls.size).toBe(0);
    expect(call.complete).toBe(true);
  });

  it("tears the response down when a handler throws or rejects, or writing fails", async () => {
    const failures: ServiceHandler["handle"][] = [
      () => {
        throw new Error("sync");
      },
      () => Promise.reject(new Error("async")),
      // A header the response refuses at writeHead.
      async () => ({ status: 200, header: new Headers({ "x-refused": "1" }) }),
    ];
    for (const handle of failures) {
      const server = {};
      const { response } = await serve([handler("/b.v1.B/", handle)], {
        server,
      });
      expect(response.destroyed).toBe(true);
      expect(response.ended).toBe(false);
      expect(nodeCallTracker(server).calls.size).toBe(0);
    }
  });

  it("writes nothing for a client that went away before the answer", async () => {
    let answer: (response: ServerResponse) => void = () => {};
    const b = handler(
      "/b.v1.B/",
      () => new Promise((resolve) => (answer = resolve)),
    );
    const server = {};
    const { response } = await serve([b], { server });
    response.closed = true;
    response.emit("close");
    answer(ok);
    for (let i = 0; i < 3; i++) await Promise.resolve();
    expect(response.status).toBeUndefined();
    expect(nodeCallTracker(server).calls.size).toBe(0);
  });
});
