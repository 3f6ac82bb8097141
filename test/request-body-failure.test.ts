// A request body that fails mid-upload through handler.fetch (what a fetch
// runtime does when the client goes away or the connection breaks), found
// by the fuzzer: the call fails with canceled, as a body that closes early
// does, and the body's error, whose message may hold addresses or paths,
// goes to onError only as the cause, never to the client. Before, a unary
// call sent that message verbatim as `unknown` (HTTP 500), and a stream got
// `unknown` with the message withheld, reported to onError as a server
// failure.

import { describe, expect, it } from "vitest";
import {
  Code,
  ConnectError,
  createElizaServiceHandler,
} from "./gen/eliza/v1/eliza.ElizaService.ts";

const secret = "connection reset by 10.0.0.7 (/srv/app/upload.ts:12:3)";
const reported: unknown[] = [];
const handler = createElizaServiceHandler(
  {
    say: (request) => ({ sentence: request.sentence }),
    async pontificate(requests) {
      let count = 0;
      for await (const _ of requests) count++;
      return { count };
    },
    async *converse(requests) {
      for await (const r of requests) yield { sentence: r.sentence };
    },
  },
  { onError: (error) => reported.push(error) },
);

/** A body that sends `first`, then fails. */
function failingBody(first: Uint8Array): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(first);
      } else {
        controller.error(new Error(secret));
      }
    },
  });
}

async function send(
  method: string,
  contentType: string,
  first: Uint8Array,
): Promise<{ status: number; text: string }> {
  const response = await handler.fetch(
    new Request(`http://localhost/connectrpc.eliza.v1.ElizaService/${method}`, {
      method: "POST",
      headers: { "content-type": contentType },
      body: failingBody(first),
      duplex: "half",
    } as RequestInit),
  );
  return {
    status: response.status,
    text: Buffer.from(await response.arrayBuffer()).toString("latin1"),
  };
}

// One message of a string field 1 ("hi"), and the same in an envelope.
const message = new Uint8Array([0x0a, 0x02, 0x68, 0x69]);
const enveloped = new Uint8Array([0, 0, 0, 0, 4, ...message]);

describe("a request body that fails through handler.fetch", () => {
  it("Connect unary: 499 canceled, the error's message not sent", async () => {
    const { status, text } = await send("Say", "application/proto", message);
    expect(status).toBe(499);
    expect(JSON.parse(text)).toEqual({
      code: "canceled",
      message: "the request body failed before its end: the client went away",
    });
  });

  it.each([
    [
      "Connect client streaming",
      "Pontificate",
      "application/connect+proto",
      '"code":"canceled"',
    ],
    [
      "Connect bidi",
      "Converse",
      "application/connect+proto",
      '"code":"canceled"',
    ],
    [
      "gRPC-Web unary",
      "Say",
      "application/grpc-web+proto",
      "grpc-status: 1\r\n",
    ],
    [
      "gRPC-Web client streaming",
      "Pontificate",
      "application/grpc-web+proto",
      "grpc-status: 1\r\n",
    ],
    [
      "gRPC-Web bidi",
      "Converse",
      "application/grpc-web+proto",
      "grpc-status: 1\r\n",
    ],
  ])(
    "%s: canceled, the error's message not sent",
    async (_, method, contentType, status) => {
      reported.length = 0;
      const { text } = await send(method, contentType, enveloped);
      expect(text).toContain(status);
      expect(text).not.toContain("10.0.0.7");
      expect(text).not.toContain("internal error");
      // Streaming implementations saw it: onError gets the ConnectError, the
      // body's own error as its cause.
      for (const error of reported) {
        expect(error).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code).toBe(Code.Canceled);
        expect(((error as ConnectError).cause as Error).message).toBe(secret);
      }
    },
  );
});
