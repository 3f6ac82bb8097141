// The generated client, binary, over its http2 transport (one session,
// reused): the Connect protocol (its default) or gRPC (`--protocol grpc`).
import {
  connectProtocol,
  createBenchServiceClient,
  grpcProtocol,
} from "../gen/bench/v1/bench.BenchService.ts";
import { binaryPayload } from "../lib/payloads.ts";
import { clientArgs, drive } from "./driver.ts";

const { url, protocol, size } = clientArgs();
const client = createBenchServiceClient(url, {
  transport: "http2",
  protocol: protocol === "grpc" ? grpcProtocol : connectProtocol,
});
const request = binaryPayload(size);

await drive(async () => {
  const response = await client.unary(request);
  return response.data.length === request.data.length;
});
