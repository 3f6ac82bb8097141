// The server this project generates, with its defaults (like
// connectNodeAdapter's): Connect, gRPC and gRPC-Web on one handler. HTTP/2
// is served through `http2Stream`, the generated entry point for HTTP/2-only
// servers (the floor serves raw streams too); `.node` through Node's
// compatibility layer costs about a tenth more per small call.
import * as http from "node:http";
import * as http2 from "node:http2";
import { createBenchServiceHandler } from "../gen/bench/v1/bench.BenchService.ts";
import { streamPayload } from "../lib/payloads.ts";
import { listenAndReport, serverArgs } from "./common.ts";

const { httpVersion, port } = serverArgs();

const handler = createBenchServiceHandler({
  // Echo: the response is the decoded request, encoded again.
  unary: (request) => request,
  async *serverStream(request) {
    const message = streamPayload(request.size);
    for (let i = 0; i < request.count; i++) yield message;
  },
});

listenAndReport(
  httpVersion === 2
    ? http2.createServer().on("stream", handler.http2Stream)
    : http.createServer(handler.node),
  port,
);
