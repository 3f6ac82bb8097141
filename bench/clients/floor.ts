// The floor client: one raw node:http2 session, the request encoded and the
// response decoded with protobuf-es, the status checked, nothing else (no
// headers beyond what the protocol requires, no deadline, no error mapping).
// Connect: the message is the body, the HTTP status the call's. gRPC
// (`--protocol grpc`): the message in a 5-byte envelope, `te: trailers`, and
// the call's status is grpc-status in the trailers.
import * as http2 from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { PayloadSchema } from "../gen/bench/v1/bench_pb.ts";
import { binaryPayload, unaryPath } from "../lib/payloads.ts";
import { clientArgs, drive } from "./driver.ts";

const { url, protocol, size } = clientArgs();
const session = http2.connect(url);
session.on("error", () => {});
const request = binaryPayload(size);

const connectHeaders: http2.OutgoingHttpHeaders = {
  ":method": "POST",
  ":path": unaryPath,
  "content-type": "application/proto",
};

function connectCall(): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const stream = session.request(connectHeaders);
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const response = fromBinary(PayloadSchema, body);
      resolve(status === 200 && response.data.length === request.data.length);
    });
    stream.on("error", () => resolve(false));
    stream.end(toBinary(PayloadSchema, request));
  });
}

const grpcHeaders: http2.OutgoingHttpHeaders = {
  ":method": "POST",
  ":path": unaryPath,
  "content-type": "application/grpc",
  te: "trailers",
};

/** One message in a gRPC envelope: flags 0, big-endian length, data. */
function grpcEnvelope(data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + data.length);
  frame[0] = 0;
  frame.writeUInt32BE(data.length, 1);
  frame.set(data, 5);
  return frame;
}

function grpcCall(): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const stream = session.request(grpcHeaders);
    let grpcStatus: unknown;
    const chunks: Buffer[] = [];
    stream.on("trailers", (t) => (grpcStatus = t["grpc-status"]));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      // One uncompressed message, the whole body.
      const ok =
        grpcStatus === "0" &&
        body.length >= 5 &&
        body[0] === 0 &&
        body.readUInt32BE(1) === body.length - 5;
      const response = ok
        ? fromBinary(PayloadSchema, body.subarray(5))
        : undefined;
      resolve(response?.data.length === request.data.length);
    });
    stream.on("error", () => resolve(false));
    stream.end(grpcEnvelope(toBinary(PayloadSchema, request)));
  });
}

await drive(protocol === "grpc" ? grpcCall : connectCall);
session.close();
