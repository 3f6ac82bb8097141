// The service both of our servers serve (servers/ours.ts and
// servers/ours-node.ts), built by the generated createBenchServiceHandler
// with its defaults (like connectNodeAdapter's): Connect, gRPC and gRPC-Web
// on one handler.
import { createBenchServiceHandler } from "../gen/bench/v1/bench.BenchService.ts";
import { streamPayload } from "../lib/payloads.ts";

export const benchHandler = createBenchServiceHandler({
  // Echo: the response is the decoded request, encoded again.
  unary: (request) => request,
  unaryOrder: (request) => request,
  async *serverStream(request) {
    const message = streamPayload(request.size);
    for (let i = 0; i < request.count; i++) yield message;
  },
});
