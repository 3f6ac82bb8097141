// Issue #12, item 9: an HTTP/2 client that resets a client-streaming or bidi
// call in the middle of its upload (RST_STREAM without END_STREAM) must never
// look, to the implementation, like a complete request stream: its iteration
// of the requests fails with `canceled` and its signal aborts, whatever the
// reset code, through `handler.node` (the compatibility layer) and through
// `handler.http2Stream`. The client writes frames by hand, since node:http2's
// own `close(code)` sends END_STREAM first.

import { create, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelopeEncode } from "../runtime-inline/core/envelope.ts";
import {
  ConnectError,
  createElizaServiceHandler,
  type HandlerContext,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import {
  ConverseRequestSchema,
  PontificateRequestSchema,
} from "./gen/eliza/v1/eliza_pb.ts";
import { connectRawH2, h2FrameHeaders } from "./support/h2-raw.ts";
import {
  startServer,
  startStreamServer,
  type StartedServer,
} from "./support/servers.ts";

interface Outcome {
  /** "complete", or the code of the error the iteration threw. */
  readonly iteration: string;
  readonly received: number;
  readonly signal: AbortSignal;
}

// Each call registers how its implementation's iteration ended.
let onReceived: ((count: number) => void) | undefined;
let onOutcome: ((outcome: Outcome) => void) | undefined;

async function consume(
  requests: AsyncIterable<unknown>,
  context: HandlerContext,
): Promise<void> {
  let received = 0;
  let iteration = "complete";
  try {
    for await (const _ of requests) {
      received++;
      onReceived?.(received);
    }
  } catch (e) {
    iteration = e instanceof ConnectError ? `code ${e.code}` : String(e);
  }
  onOutcome?.({ iteration, received, signal: context.signal });
}

const handler = createElizaServiceHandler({
  async pontificate(requests, context) {
    await consume(requests, context);
    return { sentence: "done" };
  },
  async *converse(requests, context) {
    await consume(requests, context);
    yield { sentence: "done" };
  },
});

let nodeServer: StartedServer;
let streamServer: StartedServer;

beforeAll(async () => {
  nodeServer = await startServer("h2c", handler.node);
  streamServer = await startStreamServer(handler.http2Stream);
});

afterAll(async () => {
  await nodeServer?.close();
  await streamServer?.close();
});

const NO_ERROR = 0;
const CANCEL = 8;
const canceled = "code 1";

function aborted(signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    signal.addEventListener("abort", () => resolve(true), { once: true });
    // Bounded: a signal that never aborts fails the assertion, not the run.
    setTimeout(() => resolve(signal.aborted), 2000).unref();
  });
}

const methods = [
  {
    name: "Pontificate",
    message: () =>
      toBinary(
        PontificateRequestSchema,
        create(PontificateRequestSchema, { sentence: "part" }),
      ),
  },
  {
    name: "Converse",
    message: () =>
      toBinary(
        ConverseRequestSchema,
        create(ConverseRequestSchema, { sentence: "part" }),
      ),
  },
];

const protocols = [
  { name: "connect", contentType: "application/connect+proto", extra: {} },
  {
    name: "grpc",
    contentType: "application/grpc+proto",
    extra: { te: "trailers" },
  },
  { name: "grpc-web", contentType: "application/grpc-web+proto", extra: {} },
];

describe.each([
  ["handler.node", () => nodeServer],
  ["handler.http2Stream", () => streamServer],
])("an upload reset without END_STREAM, through %s", (_, server) => {
  describe.each(protocols)("$name", (protocol) => {
    describe.each(methods)("$name", (method) => {
      it.each([
        ["CANCEL", CANCEL],
        ["NO_ERROR", NO_ERROR],
        ["no reset: END_STREAM", -1],
      ])("%s", async (_label, resetCode) => {
        const port = Number(new URL(server().url).port);
        const connection = await connectRawH2(port);
        try {
          const twoReceived = new Promise<void>((resolve) => {
            onReceived = (count) => {
              if (count === 2) resolve();
            };
          });
          const outcome = new Promise<Outcome>((resolve) => {
            onOutcome = resolve;
          });
          connection.open(1, {
            ":method": "POST",
            ":scheme": "http",
            ":authority": `127.0.0.1:${port}`,
            ":path": `/connectrpc.eliza.v1.ElizaService/${method.name}`,
            "content-type": protocol.contentType,
            ...protocol.extra,
          });
          const envelope = envelopeEncode(0, method.message());
          connection.data(1, envelope);
          connection.data(1, envelope);
          // The implementation has read both messages and waits for more.
          await twoReceived;
          if (resetCode < 0) {
            connection.data(1, new Uint8Array(0), true);
          } else {
            connection.reset(1, resetCode);
          }
          const result = await outcome;
          expect(result.received).toBe(2);
          if (resetCode < 0) {
            expect(result.iteration).toBe("complete");
            await connection.frame(1, h2FrameHeaders);
          } else {
            expect(result.iteration).toBe(canceled);
            expect(await aborted(result.signal)).toBe(true);
          }
        } finally {
          onReceived = undefined;
          onOutcome = undefined;
          connection.close();
        }
      });
    });
  });
});
