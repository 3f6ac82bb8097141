// shutdownGracefully on each Node entry point (`.node` on node:http and on
// node:http2 h2c, `.http2Stream`), with a call of every kind in flight: new
// connections and streams are refused, the unary call completes, the
// streaming implementations see their signal abort with the shutdown's
// reason once the grace period ends (ended here by the shutdown's own
// `signal`, so that nothing depends on elapsed time), their clients get
// `unavailable`, and the shutdown resolves after every call has ended.

import * as http from "node:http";
import * as http2 from "node:http2";
import { connect, type AddressInfo } from "node:net";
import { once } from "node:events";
import express from "express";
import { describe, expect, it } from "vitest";
import {
  Code,
  ConnectError,
  createElizaServiceClient,
  createElizaServiceHandler,
  ElizaServiceDefinition,
  isConnectError,
  shutdownGracefully,
  type ElizaServiceImplementation,
  type NodeServiceHandler,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import { elizaProtocols } from "./support/protocols.ts";

type EntryPoint = "node on node:http" | "node on h2c" | "http2Stream";

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** The Eliza implementation of the test: each method records what it saw. */
function shutdownImplementation(events: string[]) {
  let releaseSay = () => {};
  const sayGate = new Promise<void>((resolve) => (releaseSay = resolve));
  const reasons = new Map<string, unknown>();
  const started = new Set<string>();
  let allStarted = () => {};
  const everyStarted = new Promise<void>((resolve) => (allStarted = resolve));
  const start = (name: string) => {
    started.add(name);
    if (started.size === 4) allStarted();
  };
  const waitForShutdown = async (name: string, signal: AbortSignal) => {
    start(name);
    await aborted(signal);
    reasons.set(name, signal.reason);
    events.push(`${name} aborted`);
  };
  const implementation: ElizaServiceImplementation = {
    async say(_request, context) {
      start("say");
      await sayGate;
      events.push(`say done, signal aborted: ${context.signal.aborted}`);
      return { sentence: "goodbye" };
    },
    async *introduce(_request, context) {
      yield { sentence: "hello" };
      await waitForShutdown("introduce", context.signal);
    },
    async pontificate(requests, context) {
      for await (const _ of requests);
      await waitForShutdown("pontificate", context.signal);
      throw context.signal.reason;
    },
    async *converse(requests, context) {
      for await (const request of requests)
        yield { sentence: request.sentence };
      await waitForShutdown("converse", context.signal);
    },
  };
  return { implementation, releaseSay, everyStarted, reasons };
}

async function listen(entry: EntryPoint, handler: NodeServiceHandler) {
  let server: http.Server | http2.Http2Server;
  switch (entry) {
    case "node on node:http":
      server = http.createServer(handler.node);
      break;
    case "node on h2c":
      server = http2.createServer(handler.node);
      break;
    case "http2Stream":
      server = http2.createServer().on("stream", handler.http2Stream);
      break;
  }
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return { server, port, url: `http://127.0.0.1:${port}` };
}

/** A unary Connect call over HTTP/1.1 on a keep-alive connection, with the response's headers. */
function sayOverHttp1(port: number, agent: http.Agent) {
  return new Promise<{ status: number; connection: string; body: string }>(
    (resolve, reject) => {
      const request = http.request(
        {
          host: "127.0.0.1",
          port,
          agent,
          method: "POST",
          path: ElizaServiceDefinition.methods.say.path,
          headers: { "content-type": "application/json" },
        },
        (response) => {
          let body = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => (body += chunk));
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              connection: String(response.headers.connection),
              body,
            }),
          );
        },
      );
      request.on("error", reject);
      request.end(JSON.stringify({ sentence: "hi" }));
    },
  );
}

function connectionRefused(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.on("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.on("error", (error: NodeJS.ErrnoException) =>
      resolve(String(error.code)),
    );
  });
}

async function* requestsOf(sentences: string[]) {
  for (const sentence of sentences) yield { sentence };
}

/** The ConnectError a call failed with. */
async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (e) {
    if (isConnectError(e)) return e;
    throw e;
  }
  throw new Error("the call succeeded");
}

async function drain<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const got: T[] = [];
  for await (const value of iterable) got.push(value);
  return got;
}

const cases: {
  entry: EntryPoint;
  protocol: "connect" | "grpc" | "grpc-web";
}[] = [
  { entry: "node on node:http", protocol: "connect" },
  { entry: "node on node:http", protocol: "grpc-web" },
  { entry: "node on h2c", protocol: "connect" },
  { entry: "node on h2c", protocol: "grpc" },
  { entry: "http2Stream", protocol: "connect" },
  { entry: "http2Stream", protocol: "grpc" },
];

describe.each(cases)(
  "shutdownGracefully, $entry, $protocol",
  ({ entry, protocol }) => {
    const h2 = entry !== "node on node:http";

    it("refuses new calls, lets the unary call finish, aborts the streams after the grace period", async () => {
      const events: string[] = [];
      const impl = shutdownImplementation(events);
      const handler = createElizaServiceHandler(impl.implementation);
      const { server, port, url } = await listen(entry, handler);
      const agent = new http.Agent({ keepAlive: true });
      const session = h2 ? http2.connect(url) : undefined;
      try {
        const client = createElizaServiceClient(url, {
          transport: h2 ? "http2" : "fetch",
          protocol: elizaProtocols[protocol],
        });
        // Over HTTP/1.1 the unary call goes over a keep-alive connection
        // of ours, to see its Connection header.
        const say = h2
          ? client.say({ sentence: "hi" })
          : sayOverHttp1(port, agent);
        void say.then(() => events.push("say resolved"));
        const introduce = drain(client.introduce({ name: "x" }));
        const pontificate = client.pontificate(requestsOf(["a", "b"]));
        const converse = drain(client.converse(requestsOf(["c"])));
        for (const call of [introduce, pontificate, converse]) {
          call.catch(() => {});
        }
        await impl.everyStarted;
        if (session?.connecting === true) await once(session, "connect");

        // Listening before the shutdown: the GOAWAY may come at once.
        const goaway =
          session === undefined ? undefined : once(session, "goaway");
        const endGrace = new AbortController();
        let shutdownDone = false;
        const shutdown = shutdownGracefully(server, {
          graceMs: 600_000,
          signal: endGrace.signal,
        }).then(() => {
          shutdownDone = true;
          events.push("shutdown resolved");
        });
        // The same promise for a second caller.
        const again = shutdownGracefully(server);

        expect(await connectionRefused(port)).toBe("ECONNREFUSED");
        if (session !== undefined) {
          // GOAWAY: the open session takes no new stream.
          await goaway;
          const refused = await new Promise<string>((resolve) => {
            try {
              const stream = session.request({
                ":method": "POST",
                ":path": ElizaServiceDefinition.methods.say.path,
              });
              stream.on("error", (e: NodeJS.ErrnoException) =>
                resolve(String(e.code)),
              );
              stream.on("response", () => resolve("answered"));
              stream.end();
            } catch (e) {
              resolve(String((e as NodeJS.ErrnoException).code));
            }
          });
          expect(refused).toMatch(
            /^ERR_HTTP2_(GOAWAY_SESSION|INVALID_SESSION)$/,
          );
        }

        // The unary call in flight completes, its signal never aborted.
        impl.releaseSay();
        const said = await say;
        if ("connection" in said) {
          expect(said.status).toBe(200);
          expect(JSON.parse(said.body)).toEqual({ sentence: "goodbye" });
          expect(said.connection).toBe("close");
        } else {
          expect(said.sentence).toBe("goodbye");
        }
        expect(events).toEqual([
          "say done, signal aborted: false",
          "say resolved",
        ]);
        // The streams run on until the grace period ends.
        expect(impl.reasons.size).toBe(0);
        expect(shutdownDone).toBe(false);

        endGrace.abort();
        const errors = await Promise.all([
          failure(introduce),
          failure(pontificate),
          failure(converse),
        ]);
        for (const error of errors) {
          expect(error.code).toBe(Code.Unavailable);
          expect(error.rawMessage).toBe("the server is shutting down");
        }
        for (const name of ["introduce", "pontificate", "converse"]) {
          const reason = impl.reasons.get(name);
          expect(isConnectError(reason)).toBe(true);
          expect((reason as ConnectError).code).toBe(Code.Unavailable);
        }

        await shutdown;
        await again;
        expect(server.listening).toBe(false);
        // Every call ended before the shutdown resolved.
        expect(events.at(-1)).toBe("shutdown resolved");
        expect(events.slice(0, -1).sort()).toEqual(
          [
            "converse aborted",
            "introduce aborted",
            "pontificate aborted",
            "say done, signal aborted: false",
            "say resolved",
          ].sort(),
        );
      } finally {
        agent.destroy();
        session?.destroy();
        server.close();
      }
    });
  },
);

describe("shutdownGracefully with no call in flight", () => {
  it("resolves once the server has closed", async () => {
    const { server, port } = await listen(
      "node on node:http",
      createElizaServiceHandler({}),
    );
    await shutdownGracefully(server);
    expect(server.listening).toBe(false);
    expect(await connectionRefused(port)).toBe("ECONNREFUSED");
  });
});

describe("shutdownGracefully on the server of an Express app", () => {
  it("lets the unary call finish and aborts the stream behind app.use(eliza.node)", async () => {
    const events: string[] = [];
    const impl = shutdownImplementation(events);
    const app = express();
    app.use(express.json());
    app.use(createElizaServiceHandler(impl.implementation).node);
    const server = app.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    const agent = new http.Agent({ keepAlive: true });
    try {
      const client = createElizaServiceClient(`http://127.0.0.1:${port}`);
      const say = sayOverHttp1(port, agent);
      const calls = [
        drain(client.introduce({ name: "x" })),
        client.pontificate(requestsOf(["a"])),
        drain(client.converse(requestsOf(["b"]))),
      ];
      for (const call of calls) call.catch(() => {});
      await impl.everyStarted;
      const endGrace = new AbortController();
      const shutdown = shutdownGracefully(server, { signal: endGrace.signal });
      impl.releaseSay();
      const said = await say;
      expect(said.status).toBe(200);
      expect(said.connection).toBe("close");
      expect(impl.reasons.size).toBe(0);
      endGrace.abort();
      for (const call of calls) {
        expect((await failure(call)).code).toBe(Code.Unavailable);
      }
      await shutdown;
      expect(server.listening).toBe(false);
    } finally {
      agent.destroy();
      server.close();
    }
  });
});
