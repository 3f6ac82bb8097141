// The reference: connect-es 2.2's connectNodeAdapter with its defaults,
// serving the same service with the same implementation.
import * as http from "node:http";
import * as http2 from "node:http2";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { BenchService } from "../gen/bench/v1/bench_pb.ts";
import { streamPayload } from "../lib/payloads.ts";
import { listenAndReport, serverArgs } from "./common.ts";

const { httpVersion, port } = serverArgs();

const adapter = connectNodeAdapter({
  routes(router) {
    router.service(BenchService, {
      unary: (request) => request,
      unaryOrder: (request) => request,
      async *serverStream(request) {
        const message = streamPayload(request.size);
        for (let i = 0; i < request.count; i++) yield message;
      },
    });
  },
});

listenAndReport(
  httpVersion === 2 ? http2.createServer(adapter) : http.createServer(adapter),
  port,
);
