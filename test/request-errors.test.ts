// A request iterable that throws is the caller's failure, not the
// connection's: client-streaming and bidi calls fail with the caller's own
// error (a ConnectError as it is, anything else unknown with its message and
// the error as cause), on every protocol and transport, never with
// unavailable (which invites a retry) or fetch's "fetch failed".

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Code,
  ConnectError,
  createElizaServiceClient,
  createElizaServiceHandler,
  isConnectError,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import { elizaProtocols } from "./support/protocols.ts";
import { startServer, type StartedServer } from "./support/servers.ts";

type Protocol = "connect" | "grpc" | "grpc-web";
type Transport = "http2" | "fetch";

const handler = createElizaServiceHandler({
  async pontificate(requests) {
    let n = 0;
    for await (const _ of requests) n++;
    return { sentence: `${n} sentences` };
  },
  async *converse(requests) {
    for await (const r of requests)
      yield { sentence: `You said ${r.sentence}` };
  },
});

let h2c: StartedServer;
let http1: StartedServer;
beforeAll(async () => {
  h2c = await startServer("h2c", handler.node);
  http1 = await startServer("http", handler.node);
});
afterAll(async () => {
  await h2c.close();
  await http1.close();
});

async function* failingAfterOne(error: unknown) {
  yield { sentence: "one" };
  throw error;
}

async function failure(run: () => Promise<unknown>): Promise<ConnectError> {
  try {
    await run();
  } catch (e) {
    expect(isConnectError(e), String(e)).toBe(true);
    return e as ConnectError;
  }
  throw new Error("the call succeeded");
}

const combinations: [Protocol, Transport][] = [
  ["connect", "http2"],
  ["grpc", "http2"],
  ["grpc-web", "http2"],
  ["connect", "fetch"],
  ["grpc-web", "fetch"],
];

describe.each(combinations)("%s over %s", (protocol, transport) => {
  const client = () =>
    createElizaServiceClient(transport === "http2" ? h2c.url : http1.url, {
      protocol: elizaProtocols[protocol],
      transport,
    });

  for (const kind of ["client streaming", "bidi"] as const) {
    const call = (error: unknown) =>
      failure(async () => {
        if (kind === "client streaming") {
          await client().pontificate(failingAfterOne(error));
        } else {
          for await (const _ of client().converse(failingAfterOne(error)));
        }
      });

    it(`${kind}: an Error → unknown with its message, the error as cause`, async () => {
      const mine = new Error("my producer broke");
      const error = await call(mine);
      expect(error.code).toBe(Code.Unknown);
      expect(error.rawMessage).toBe("my producer broke");
      expect(error.cause).toBe(mine);
    });

    it(`${kind}: a ConnectError → that error`, async () => {
      const mine = new ConnectError("out of input", Code.FailedPrecondition);
      expect(await call(mine)).toBe(mine);
    });
  }
});
