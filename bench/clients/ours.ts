// The generated client, Connect protocol (its default), binary, over its
// http2 transport (one session, reused).
import { createBenchServiceClient } from "../gen/bench/v1/bench.BenchService.ts";
import { binaryPayload } from "../lib/payloads.ts";
import { clientArgs, drive } from "./driver.ts";

const { url, size } = clientArgs();
const client = createBenchServiceClient(url, { transport: "http2" });
const request = binaryPayload(size);

await drive(async () => {
  const response = await client.unary(request);
  return response.data.length === request.data.length;
});
