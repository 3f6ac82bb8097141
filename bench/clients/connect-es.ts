// The reference: connect-es 2.2's createClient over connect-node's Connect
// transport, or its gRPC transport (`--protocol grpc`), binary, HTTP/2 (one
// session, reused).
import { createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
} from "@connectrpc/connect-node";
import { BenchService } from "../gen/bench/v1/bench_pb.ts";
import { binaryPayload } from "../lib/payloads.ts";
import { clientArgs, drive } from "./driver.ts";

const { url, protocol, size } = clientArgs();
const transportOptions = {
  baseUrl: url,
  httpVersion: "2",
  useBinaryFormat: true,
} as const;
const client = createClient(
  BenchService,
  protocol === "grpc"
    ? createGrpcTransport(transportOptions)
    : createConnectTransport(transportOptions),
);
const request = binaryPayload(size);

await drive(async () => {
  const response = await client.unary(request);
  return response.data.length === request.data.length;
});
