// Issue #12, item 10: what the server sends for an error that is not a
// ConnectError (withheld by default, `redactErrors: false` to send it as
// is), and the `onError` option that reports every failed call, on every
// protocol and RPC kind, errors thrown before the first message and in the
// middle of a stream alike; an `onError` that throws or rejects changes
// nothing for the client and does not bring the server down.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  Code,
  ConnectError,
  createElizaServiceClient,
  createElizaServiceHandler,
  isConnectError,
  type HandlerContext,
  type HandlerOptions,
  type ElizaServiceImplementation,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import { elizaProtocols } from "./support/protocols.ts";
import { startServer, type StartedServer } from "./support/servers.ts";

const secret = "open /srv/app/secrets.json: token=hunter2";

// Where each method fails: "first" before any response message (after
// reading the first request), "mid" after one response message.
let failWith: () => unknown = () => new Error(secret);

const implementation: ElizaServiceImplementation = {
  say() {
    throw failWith();
  },
  async *introduce() {
    yield { sentence: "one" };
    throw failWith();
  },
  async pontificate(requests) {
    for await (const _ of requests) throw failWith();
    return {};
  },
  async *converse(requests) {
    for await (const _ of requests) {
      yield { sentence: "one" };
      throw failWith();
    }
  },
};

interface Reported {
  readonly error: unknown;
  readonly method: string;
  readonly protocol: HandlerContext["protocol"];
}

const reported: Reported[] = [];
let onErrorBehaviour: "record" | "throw" | "reject" = "record";

const recordingOptions: HandlerOptions = {
  onError(error, context) {
    reported.push({
      error,
      method: context.method.name,
      protocol: context.protocol,
    });
    if (onErrorBehaviour === "throw") throw new Error("the logger broke");
    if (onErrorBehaviour === "reject")
      return Promise.reject(new Error("the async logger broke")) as never;
  },
};

const servers: Record<string, StartedServer> = {};
const processFailures: unknown[] = [];
const onFailure = (reason: unknown) => processFailures.push(reason);

beforeAll(async () => {
  process.on("unhandledRejection", onFailure);
  process.on("uncaughtException", onFailure);
  servers["default"] = await startServer(
    "h2c",
    createElizaServiceHandler(implementation, recordingOptions).node,
  );
  servers["exposed"] = await startServer(
    "h2c",
    createElizaServiceHandler(implementation, {
      ...recordingOptions,
      redactErrors: false,
    }).node,
  );
});

afterAll(async () => {
  process.off("unhandledRejection", onFailure);
  process.off("uncaughtException", onFailure);
  for (const server of Object.values(servers)) await server.close();
});

afterEach(() => {
  reported.length = 0;
  onErrorBehaviour = "record";
  failWith = () => new Error(secret);
});

type Protocol = "connect" | "grpc" | "grpc-web";

async function callFails(
  server: string,
  protocol: Protocol,
  kind: string,
): Promise<{ error: ConnectError; received: number }> {
  const client = createElizaServiceClient(servers[server]!.url, {
    transport: "http2",
    protocol: elizaProtocols[protocol],
  });
  let received = 0;
  try {
    switch (kind) {
      case "unary":
        await client.say({ sentence: "x" });
        break;
      case "server streaming":
        for await (const _ of client.introduce({ name: "x" })) received++;
        break;
      case "client streaming":
        await client.pontificate([{ sentence: "x" }]);
        break;
      case "bidi":
        for await (const _ of client.converse([{ sentence: "x" }])) received++;
        break;
    }
  } catch (e) {
    expect(isConnectError(e), String(e)).toBe(true);
    return { error: e as ConnectError, received };
  }
  throw new Error("expected the call to fail");
}

const methodOf: Record<string, string> = {
  unary: "Say",
  "server streaming": "Introduce",
  "client streaming": "Pontificate",
  bidi: "Converse",
};

describe.each(["connect", "grpc", "grpc-web"] as const)("%s", (protocol) => {
  describe.each(["unary", "server streaming", "client streaming", "bidi"])(
    "%s",
    (kind) => {
      const midStream = kind === "server streaming" || kind === "bidi";

      it("withholds a plain Error's message by default and reports it to onError", async () => {
        const { error, received } = await callFails("default", protocol, kind);
        expect(error.code).toBe(Code.Unknown);
        expect(error.rawMessage).not.toContain("hunter2");
        expect(error.rawMessage).not.toContain("/srv");
        expect(received).toBe(midStream ? 1 : 0);
        expect(reported).toHaveLength(1);
        expect((reported[0]!.error as Error).message).toBe(secret);
        expect(reported[0]!.method).toBe(methodOf[kind]);
        expect(reported[0]!.protocol).toBe(protocol);
      });

      it("sends a ConnectError as it is", async () => {
        failWith = () =>
          new ConnectError("no such thing", Code.NotFound, {
            metadata: { "x-why": "gone" },
          });
        const { error } = await callFails("default", protocol, kind);
        expect([error.code, error.rawMessage]).toEqual([
          Code.NotFound,
          "no such thing",
        ]);
        expect(error.rawMessage).toBe("no such thing");
        expect(error.metadata.get("x-why")).toBe("gone");
        expect(reported).toHaveLength(1);
      });

      it("sends the message as it is with redactErrors: false", async () => {
        const { error } = await callFails("exposed", protocol, kind);
        expect(error.code).toBe(Code.Unknown);
        expect(error.rawMessage).toBe(secret);
        expect(reported).toHaveLength(1);
      });

      it.each(["throw", "reject"] as const)(
        "an onError that %ss changes nothing for the client",
        async (behaviour) => {
          onErrorBehaviour = behaviour;
          const { error } = await callFails("default", protocol, kind);
          expect(error.code).toBe(Code.Unknown);
          expect(error.rawMessage).not.toContain("hunter2");
          expect(reported).toHaveLength(1);
          // The server still serves.
          onErrorBehaviour = "record";
          failWith = () => new ConnectError("again", Code.Aborted);
          const again = await callFails("default", protocol, kind);
          expect(again.error.code).toBe(Code.Aborted);
          // A rejection would surface as unhandled by now (it is a microtask).
          await new Promise((resolve) => setImmediate(resolve));
          expect(processFailures).toEqual([]);
        },
      );
    },
  );
});
