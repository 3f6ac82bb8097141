import { testServiceDesc } from "../../test/support/server.ts";
import { describe, expect, it } from "vitest";
import { fetchHandler, withFetchHandler } from "./handler.ts";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import type {
  ServerRequest,
  ServerResponse,
  ServiceHandler,
} from "../server/handler.ts";

/**
 * A service handler for `path` that records the requests it gets and answers
 * with what `respond` makes of them.
 */
function service(
  path: string,
  respond: (request: ServerRequest) => Promise<ServerResponse> | ServerResponse,
) {
  const requests: ServerRequest[] = [];
  const handler: ServiceHandler = {
    path,
    service: testServiceDesc,
    async handle(request) {
      if (!request.path.startsWith(path)) return undefined;
      requests.push(request);
      return respond(request);
    },
  };
  return { handler, requests };
}

const text = (value: string) => new TextEncoder().encode(value);

async function collect(body: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return new TextDecoder().decode(Buffer.concat(chunks));
}

describe("fetchHandler, the request", () => {
  it("hands the handler the method, path, query, headers and body", async () => {
    let body = "";
    const { handler, requests } = service("/a.v1.A/", async (request) => {
      body = await collect(request.body);
      return { status: 200, header: new Headers() };
    });
    await fetchHandler(handler)(
      new Request("http://h.test/a.v1.A/Say?connect=v1&x=1", {
        method: "POST",
        headers: { "content-type": "application/proto", "X-Custom": "v" },
        body: "hello",
      }),
    );
    const [request] = requests as [ServerRequest];
    expect(request.method).toBe("POST");
    expect(request.path).toBe("/a.v1.A/Say");
    expect(request.search).toBe("?connect=v1&x=1");
    expect(request.url).toBe("http://h.test/a.v1.A/Say?connect=v1&x=1");
    expect(request.header("x-custom")).toBe("v");
    expect(request.header("content-type")).toBe("application/proto");
    expect(request.header("missing")).toBeNull();
    expect(request.headers().get("x-custom")).toBe("v");
    // Fetch connections carry no HTTP trailers, whatever their version.
    expect(request.httpVersion).toBe("");
    expect(body).toBe("hello");
  });

  it("gives a GET an empty body", async () => {
    let body: string | undefined;
    const { handler } = service("/a.v1.A/", async (request) => {
      body = await collect(request.body);
      return { status: 200, header: new Headers() };
    });
    await fetchHandler(handler)(new Request("http://h.test/a.v1.A/Get"));
    expect(body).toBe("");
  });

  it("fails a request body that breaks off with canceled", async () => {
    let error: unknown;
    const { handler } = service("/a.v1.A/", async (request) => {
      error = await collect(request.body).catch((e: unknown) => e);
      return { status: 200, header: new Headers() };
    });
    const broken = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new Error("connection reset by 10.0.0.1"));
      },
    });
    await fetchHandler(handler)(
      new Request("http://h.test/a.v1.A/Up", {
        method: "POST",
        body: broken,
        duplex: "half",
      } as RequestInit),
    );
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Canceled);
    // The transport's message may hold addresses: it stays in the cause.
    expect((error as ConnectError).rawMessage).not.toMatch(/10\.0\.0\.1/);
  });
});

describe("fetchHandler, routing", () => {
  it("asks each handler in turn and answers the first that takes the path", async () => {
    const a = service("/a.v1.A/", () => ({
      status: 200,
      header: new Headers(),
    }));
    const b = service("/b.v1.B/", () => ({
      status: 204,
      header: new Headers(),
    }));
    const response = await fetchHandler(
      a.handler,
      b.handler,
    )(new Request("http://h.test/b.v1.B/M", { method: "POST" }));
    expect(response.status).toBe(204);
    expect(a.requests).toHaveLength(0);
    expect(b.requests).toHaveLength(1);
  });

  it("takes lists of handlers too, as a factory serving several paths returns", async () => {
    const [a, b, c] = ["/a.v1.A/", "/b.v1.B/", "/c.v1.C/"].map((path, i) =>
      service(path, () => ({ status: 200 + i, header: new Headers() })),
    ) as [
      ReturnType<typeof service>,
      ReturnType<typeof service>,
      ReturnType<typeof service>,
    ];
    const fetch = fetchHandler(a.handler, [b.handler, c.handler]);
    const post = (path: string) =>
      fetch(new Request(`http://h.test${path}M`, { method: "POST" }));
    expect((await post("/a.v1.A/")).status).toBe(200);
    expect((await post("/c.v1.C/")).status).toBe(202);
    expect((await post("/b.v1.B/")).status).toBe(201);
    expect([a, b, c].map((s) => s.requests.length)).toEqual([1, 1, 1]);
  });

  it("answers a path no handler takes with 404 and a Connect unimplemented error", async () => {
    const { handler } = service("/a.v1.A/", () => ({
      status: 200,
      header: new Headers(),
    }));
    const response = await fetchHandler(handler)(
      new Request("http://h.test/other.v1.O/M", { method: "POST" }),
    );
    expect(response.status).toBe(404);
    expect(response.headers.get("content-type")).toBe("application/json");
    expect(await response.json()).toEqual({
      code: "unimplemented",
      message: "no such method: /other.v1.O/M",
    });
  });
});

describe("fetchHandler, the response", () => {
  it("answers with the handler's status, headers and whole body", async () => {
    const { handler } = service("/a.v1.A/", () => ({
      status: 200,
      header: new Headers({
        "content-type": "application/proto",
        "x-answer": "42",
      }),
      body: text("whole"),
    }));
    const response = await fetchHandler(handler)(
      new Request("http://h.test/a.v1.A/M", { method: "POST" }),
    );
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/proto");
    expect(response.headers.get("x-answer")).toBe("42");
    expect(await response.text()).toBe("whole");
  });

  it("answers without a body when the handler has none", async () => {
    const { handler } = service("/a.v1.A/", () => ({
      status: 204,
      header: new Headers(),
    }));
    const response = await fetchHandler(handler)(
      new Request("http://h.test/a.v1.A/M", { method: "POST" }),
    );
    expect(response.body).toBeNull();
  });

  it("streams a body of chunks, pulling each as the client reads", async () => {
    const produced: string[] = [];
    const { handler } = service("/a.v1.A/", () => ({
      status: 200,
      header: new Headers(),
      body: (async function* () {
        for (const chunk of ["one", "two", "three"]) {
          produced.push(chunk);
          yield text(chunk);
        }
      })(),
    }));
    const response = await fetchHandler(handler)(
      new Request("http://h.test/a.v1.A/M", { method: "POST" }),
    );
    const reader = response.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe("one");
    // Backpressure: nothing is produced ahead of what was read.
    expect(produced).toEqual(["one"]);
    let rest = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += new TextDecoder().decode(value);
    }
    expect(rest).toBe("twothree");
  });
});

describe("fetchHandler, cancellation", () => {
  it("aborts the call's signal with canceled when the request's signal aborts", async () => {
    const client = new AbortController();
    let signal: AbortSignal | undefined;
    const { handler } = service("/a.v1.A/", (request) => {
      signal = request.signal;
      return new Promise((resolve) =>
        request.signal.addEventListener("abort", () =>
          resolve({ status: 200, header: new Headers() }),
        ),
      );
    });
    const pending = fetchHandler(handler)(
      new Request("http://h.test/a.v1.A/M", {
        method: "POST",
        signal: client.signal,
      }),
    );
    expect(signal?.aborted).toBe(false);
    client.abort(new Error("gone"));
    await pending;
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(ConnectError);
    expect((signal?.reason as ConnectError).code).toBe(Code.Canceled);
  });

  it("starts a request whose signal already aborted with the call's signal aborted", async () => {
    const client = new AbortController();
    client.abort();
    let aborted: boolean | undefined;
    const { handler } = service("/a.v1.A/", (request) => {
      aborted = request.signal.aborted;
      return { status: 200, header: new Headers() };
    });
    await fetchHandler(handler)(
      new Request("http://h.test/a.v1.A/M", {
        method: "POST",
        signal: client.signal,
      }),
    );
    expect(aborted).toBe(true);
  });

  it("cancelling the response body aborts the call's signal before stopping the body", async () => {
    const events: string[] = [];
    let signal: AbortSignal | undefined;
    const { handler } = service("/a.v1.A/", (request) => {
      signal = request.signal;
      request.signal.addEventListener("abort", () => events.push("aborted"));
      return {
        status: 200,
        header: new Headers(),
        body: (async function* () {
          try {
            yield text("one");
            yield text("two");
          } finally {
            events.push("body stopped");
          }
        })(),
      };
    });
    const response = await fetchHandler(handler)(
      new Request("http://h.test/a.v1.A/M", { method: "POST" }),
    );
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel();
    expect(signal?.aborted).toBe(true);
    expect((signal?.reason as ConnectError).code).toBe(Code.Canceled);
    expect(events).toEqual(["aborted", "body stopped"]);
  });
});

describe("withFetchHandler", () => {
  it("keeps the handler's path and handle and adds fetch", async () => {
    const { handler } = service("/a.v1.A/", () => ({
      status: 200,
      header: new Headers(),
      body: text("ok"),
    }));
    const served = withFetchHandler(handler);
    expect(served.path).toBe("/a.v1.A/");
    expect(served.service).toBe(handler.service);
    expect(served.handle).toBe(handler.handle);
    const response = await served.fetch(
      new Request("http://h.test/a.v1.A/M", { method: "POST" }),
    );
    expect(await response.text()).toBe("ok");
  });
});
