// The floor: what any Node server must do for these workloads and nothing
// more. Raw node:http2 streams (not the compatibility API) or node:http,
// the request body decoded and the response encoded with protobuf-es, the
// Connect wire format written by hand: no routing table, no header
// validation, no timeouts, no interceptors, no error responses (a request
// it cannot decode, such as one cut off when a load generator stops, just
// has its stream reset). It accepts exactly the requests the load
// generators send:
//   POST /bench.v1.BenchService/Unary, application/proto or application/json;
//   POST /bench.v1.BenchService/UnaryOrder, application/proto;
//   POST /bench.v1.BenchService/ServerStream, application/connect+proto, one
//   enveloped StreamRequest, gzip when connect-accept-encoding has it;
//   over HTTP/2, POST /bench.v1.BenchService/Unary as gRPC (application/grpc,
//   +proto or not, one uncompressed enveloped Payload), for the gRPC client
//   row: the echo in an envelope and `grpc-status: 0` in the trailers.
import * as http from "node:http";
import * as http2 from "node:http2";
import { gzipSync } from "node:zlib";
import {
  fromBinary,
  fromJsonString,
  toBinary,
  toJsonString,
} from "@bufbuild/protobuf";
import {
  OrderSchema,
  PayloadSchema,
  StreamRequestSchema,
} from "../gen/bench/v1/bench_pb.ts";
import {
  serverStreamPath,
  streamPayload,
  unaryOrderPath,
} from "../lib/payloads.ts";
import { listenAndReport, serverArgs } from "./common.ts";

const { httpVersion, port } = serverArgs();

/**
 * How long to spin per unary call before answering, in milliseconds, from
 * BENCH_FLOOR_BUSY_US in microseconds (default 0): a floor made slower on
 * purpose, to see whether a server's kernel time grows with its own CPU
 * per call (the load generator's wake-ups; bench/README.md, "HTTP/1.1 at
 * 98 B: where the gap is"). The spin is timed by the clock; on the core
 * the server has to itself it is about as much CPU.
 */
const busyMs = Number(process.env["BENCH_FLOOR_BUSY_US"] ?? "0") / 1000;

/**
 * Decodes the request and encodes the echo, in the request's codec: an
 * Order on UnaryOrder (binary only), else a Payload.
 */
function unary(
  path: string | undefined,
  contentType: string | undefined,
  body: Buffer,
): Uint8Array {
  if (busyMs > 0) {
    // performance.now() allocates nothing, so the burn makes no garbage.
    const end = performance.now() + busyMs;
    while (performance.now() < end);
  }
  if (path === unaryOrderPath) {
    return toBinary(OrderSchema, fromBinary(OrderSchema, body));
  }
  if (contentType === "application/json") {
    const request = fromJsonString(PayloadSchema, body.toString("utf8"));
    return Buffer.from(toJsonString(PayloadSchema, request));
  }
  return toBinary(PayloadSchema, fromBinary(PayloadSchema, body));
}

/** A Connect envelope: flags, big-endian length, data. */
function envelope(flags: number, data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + data.length);
  frame[0] = flags;
  frame.writeUInt32BE(data.length, 1);
  frame.set(data, 5);
  return frame;
}

const endOfStream = envelope(0b10, Buffer.from("{}"));

const grpcTrailers = { "grpc-status": "0" };

function sendNoTrailers(this: http2.ServerHttp2Stream): void {
  this.sendTrailers({});
}

/** A gRPC unary echo: the request's one envelope in, one out, status 0 in the trailers. */
function grpcUnary(
  stream: http2.ServerHttp2Stream,
  contentType: string,
  body: Buffer,
): void {
  const request = fromBinary(PayloadSchema, body.subarray(5));
  stream.respond(
    { ":status": 200, "content-type": contentType },
    { waitForTrailers: true },
  );
  stream.once("wantTrailers", () => stream.sendTrailers(grpcTrailers));
  stream.end(envelope(0, toBinary(PayloadSchema, request)));
}

/**
 * Writes `count` messages, one write each, waiting for 'drain' when the
 * stream's buffer is full (as a correct server must). gzip is synchronous
 * here: the cheapest way Node has to compress, which is what a floor is for.
 */
async function serverStream(
  stream: http2.ServerHttp2Stream,
  body: Buffer,
  gzip: boolean,
): Promise<void> {
  const request = fromBinary(StreamRequestSchema, body.subarray(5));
  const message = streamPayload(request.size);
  stream.respond({
    ":status": 200,
    "content-type": "application/connect+proto",
    ...(gzip ? { "connect-content-encoding": "gzip" } : {}),
  });
  for (let i = 0; i < request.count; i++) {
    const data = toBinary(PayloadSchema, message);
    const frame = gzip ? envelope(0b01, gzipSync(data)) : envelope(0, data);
    if (!stream.write(frame)) {
      await new Promise<void>((resolve, reject) => {
        stream.once("drain", resolve);
        stream.once("close", () => reject(new Error("stream closed")));
      });
    }
  }
  stream.end(endOfStream);
}

function readBody(
  source: NodeJS.ReadableStream,
  done: (body: Buffer) => void,
): void {
  const chunks: Buffer[] = [];
  source.on("data", (chunk: Buffer) => chunks.push(chunk));
  source.on("end", () =>
    done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)),
  );
}

if (httpVersion === 2) {
  const server = http2.createServer();
  server.on("stream", (stream, headers) => {
    const contentType = headers["content-type"];
    stream.on("error", () => {});
    readBody(stream, (body) => {
      if (headers[":path"] === serverStreamPath) {
        const accept = headers["connect-accept-encoding"];
        serverStream(
          stream,
          body,
          typeof accept === "string" && accept.includes("gzip"),
        ).catch(() => stream.destroy());
        return;
      }
      // The client may have reset the stream meanwhile (h2load does to the
      // requests in flight when it stops): respond() would throw.
      if (stream.destroyed || stream.closed) return;
      try {
        // "application/grpc" or "application/grpc+proto": the gRPC row.
        if (contentType?.startsWith("application/grpc") === true) {
          grpcUnary(stream, contentType, body);
          return;
        }
        const response = unary(headers[":path"], contentType, body);
        // Ended by an empty trailers frame once the body is out: a stream
        // ended with its last DATA frame closes while that write is still
        // in flight, and Node then makes an ERR_STREAM_DESTROYED error
        // (stack trace and formatted message) for the write's callback, a
        // fifth of this server's CPU per call. This is the cheaper way, and
        // ours ends its responses the same way.
        stream.respond(
          { ":status": 200, "content-type": contentType },
          { waitForTrailers: true },
        );
        stream.once("wantTrailers", sendNoTrailers);
        stream.end(response);
      } catch {
        stream.destroy();
      }
    });
  });
  listenAndReport(server, port);
} else {
  const server = http.createServer((request, response) => {
    const contentType = request.headers["content-type"];
    request.on("error", () => {});
    readBody(request, (body) => {
      let data: Uint8Array;
      try {
        data = unary(request.url, contentType, body);
      } catch {
        response.destroy();
        return;
      }
      response.writeHead(200, {
        "content-type": contentType,
        "content-length": data.length,
      });
      response.end(data);
    });
  });
  listenAndReport(server, port);
}
