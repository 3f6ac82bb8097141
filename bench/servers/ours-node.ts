// The generated server through its `node` entry point on both HTTP
// versions: on HTTP/2 a `"request"` listener, through Node's compatibility
// layer (a request and a response object per call), as under Express, with
// `allowHTTP1`, or any code written for node:http. The "ours-node"
// implementation of the h2c unary workloads, beside `http2Stream` ("ours").
import * as http from "node:http";
import * as http2 from "node:http2";
import { benchHandler } from "./ours-service.ts";
import { listenAndReport, serverArgs } from "./common.ts";

const { httpVersion, port } = serverArgs();

listenAndReport(
  httpVersion === 2
    ? http2.createServer().on("request", benchHandler.node)
    : http.createServer(benchHandler.node),
  port,
);
