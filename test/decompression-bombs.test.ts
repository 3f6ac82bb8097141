// Issue #12, item 2: a handler decompresses a bounded number of request
// messages at once, across all its calls and protocols, whatever their
// number: past its budget they wait in a bounded queue, past the queue they
// get resource_exhausted, and calls without compression are served all the
// while. The decompressions are held open by the test, so what it counts
// does not depend on timing; memory is measured by bench/bombs.ts.

import * as http2 from "node:http2";
import { zstdCompressSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  envelopeEncode,
  envelopeFlagCompressed,
} from "../runtime-inline/core/envelope.ts";
import {
  compressionZstd,
  createElizaServiceHandler,
  type Compression,
} from "./gen/eliza/v1/eliza.ElizaService.ts";
import { startStreamServer, type StartedServer } from "./support/servers.ts";

const readMaxBytes = 1024 * 1024;
// Two slots, two places in the queue.
const options = {
  readMaxBytes,
  decompressionBudget: 2 * readMaxBytes,
  decompressionQueue: 2,
};

let running = 0;
let maxRunning = 0;
let entered = 0;
let hold: Promise<void> = Promise.resolve();
let release: () => void = () => {};

const zstd = compressionZstd!;
const countingZstd: Compression = {
  name: "zstd",
  compress: (data) => zstd.compress(data),
  async decompress(data, limit) {
    entered++;
    running++;
    maxRunning = Math.max(maxRunning, running);
    try {
      await hold;
      return await zstd.decompress(data, limit);
    } finally {
      running--;
    }
  },
};

let server: StartedServer;
let session: http2.ClientHttp2Session;

beforeAll(async () => {
  const handler = createElizaServiceHandler(
    {
      say: (request) => ({ sentence: request.sentence }),
      async *converse(requests) {
        for await (const r of requests) yield { sentence: r.sentence };
      },
    },
    { ...options, compressions: [countingZstd] },
  );
  server = await startStreamServer(handler.http2Stream);
  session = http2.connect(server.url);
});

afterAll(async () => {
  session?.close();
  await server?.close();
});

// Decompresses to exactly the limit: accepted by the limit, and then not a
// valid message (field number 0), so each one ends invalid_argument.
const bomb = zstdCompressSync(Buffer.alloc(readMaxBytes));
// "hi" as a SayRequest / ConverseRequest: field 1, length 2.
const hi = new Uint8Array([0x0a, 0x02, 0x68, 0x69]);

interface Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
}

function request(
  headers: http2.OutgoingHttpHeaders,
  body: Uint8Array,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ...headers });
    const chunks: Buffer[] = [];
    const reply: Reply = {
      status: 0,
      headers: {},
      trailers: {},
      body: Buffer.alloc(0),
    };
    stream.on("response", (h) => {
      reply.status = Number(h[":status"]);
      reply.headers = h;
    });
    stream.on("trailers", (t) => (reply.trailers = t));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", reject);
    stream.on("close", () => {
      reply.body = Buffer.concat(chunks);
      resolve(reply);
    });
    stream.end(body);
  });
}

const connectUnary = (body: Uint8Array, compressed: boolean) =>
  request(
    {
      ":path": "/connectrpc.eliza.v1.ElizaService/Say",
      "content-type": "application/proto",
      ...(compressed ? { "content-encoding": "zstd" } : {}),
    },
    body,
  ).then((r) =>
    r.status === 200 ? "ok" : (JSON.parse(r.body.toString()).code as string),
  );

const grpcCodes: Record<string, string> = {
  "0": "ok",
  "3": "invalid_argument",
  "8": "resource_exhausted",
};
const grpcBidi = (body: Uint8Array, compressed: boolean) =>
  request(
    {
      ":path": "/connectrpc.eliza.v1.ElizaService/Converse",
      "content-type": "application/grpc",
      te: "trailers",
      ...(compressed ? { "grpc-encoding": "zstd" } : {}),
    },
    envelopeEncode(compressed ? envelopeFlagCompressed : 0, body),
  ).then((r) => {
    const status = String(
      r.trailers["grpc-status"] ?? r.headers["grpc-status"],
    );
    return grpcCodes[status] ?? `grpc-status ${status}`;
  });

async function until(condition: () => boolean): Promise<void> {
  // Bounded: 2000 turns of the event loop.
  for (let i = 0; i < 2000 && !condition(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  expect(condition()).toBe(true);
}

describe.each([
  ["Connect unary", connectUnary],
  ["gRPC bidi", grpcBidi],
])("%s", (_, call) => {
  it("decompresses two at once, queues two, refuses the rest, and serves plain calls meanwhile", async () => {
    running = 0;
    maxRunning = 0;
    entered = 0;
    hold = new Promise((resolve) => (release = resolve));
    const results: string[] = [];
    const bombs = Array.from({ length: 12 }, () =>
      call(bomb, true).then((code) => {
        results.push(code);
        return code;
      }),
    );
    // Two decompressing (held), two queued, eight refused at once.
    await until(() => running === 2 && results.length === 8);
    expect(results).toEqual(Array(8).fill("resource_exhausted"));
    // A call without compression is served while the gate is full.
    expect(await call(hi, false)).toBe("ok");
    expect(entered).toBe(2);
    release();
    const codes = await Promise.all(bombs);
    expect(codes.filter((c) => c === "invalid_argument")).toHaveLength(4);
    expect(codes.filter((c) => c === "resource_exhausted")).toHaveLength(8);
    expect(maxRunning).toBe(2);
    expect(entered).toBe(4);
    // The gate is free again: a compressed call of the right kind succeeds.
    expect(await call(zstdCompressSync(hi), true)).toBe("ok");
  });
});
