// The server this project generates. HTTP/2 is served through
// `http2Stream`, the generated entry point for HTTP/2-only servers (the
// floor serves raw streams too); HTTP/1.1 through `node`. servers/ours-node.ts
// serves HTTP/2 through `node` as well, which is what Express, `allowHTTP1`
// and other request-listener users get.
import * as http from "node:http";
import * as http2 from "node:http2";
import { benchHandler } from "./ours-service.ts";
import { listenAndReport, serverArgs } from "./common.ts";

const { httpVersion, port } = serverArgs();

listenAndReport(
  httpVersion === 2
    ? http2.createServer().on("stream", benchHandler.http2Stream)
    : http.createServer(benchHandler.node),
  port,
);
