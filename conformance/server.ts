// The conformance server program (connectconformance --mode server). Reads
// one size-delimited ServerCompatRequest from stdin, serves
// ConformanceService with the generated handler (Connect, gRPC and gRPC-Web
// on one port) on 127.0.0.1 with an ephemeral port, writes one
// size-delimited ServerCompatResponse to stdout, and serves until killed.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as https from "node:https";
import type { AddressInfo, Server } from "node:net";
import { HTTPVersion } from "./gen/connectrpc/conformance/v1/config_pb.ts";
import {
  ServerCompatRequestSchema,
  ServerCompatResponseSchema,
} from "./gen/connectrpc/conformance/v1/server_compat_pb.ts";
import type { ServerCompatRequest } from "./gen/connectrpc/conformance/v1/server_compat_pb.ts";
import { createConformanceServiceHandler } from "./gen/connectrpc/conformance/v1/service.ConformanceService.ts";
import {
  conformanceRegistry,
  frameDelimited,
  readDelimited,
} from "./protocol.ts";
import { createConformanceImplementation } from "./service.ts";

async function readRequest(): Promise<ServerCompatRequest> {
  for await (const message of readDelimited(process.stdin)) {
    return fromBinary(ServerCompatRequestSchema, message);
  }
  throw new Error("stdin ended before a ServerCompatRequest arrived");
}

function startServer(request: ServerCompatRequest): Server {
  const handler = createConformanceServiceHandler(
    createConformanceImplementation(),
    {
      jsonOptions: { registry: conformanceRegistry },
      ...(request.messageReceiveLimit > 0
        ? { readMaxBytes: request.messageReceiveLimit }
        : {}),
    },
  );
  // The runner's certificate and key; with a client certificate, only
  // clients presenting it (or one it signed) get in.
  let secure: https.ServerOptions | undefined;
  if (request.useTls) {
    const creds = request.serverCreds;
    if (creds === undefined || creds.cert.length === 0) {
      throw new Error("use_tls is set but server_creds are missing");
    }
    secure = { cert: Buffer.from(creds.cert), key: Buffer.from(creds.key) };
    if (request.clientTlsCert.length > 0) {
      secure.ca = Buffer.from(request.clientTlsCert);
      secure.requestCert = true;
      secure.rejectUnauthorized = true;
    }
  }
  switch (request.httpVersion) {
    case HTTPVersion.HTTP_VERSION_1:
      return secure === undefined
        ? http.createServer(handler.node)
        : https.createServer(secure, handler.node);
    case HTTPVersion.HTTP_VERSION_2:
      // With TLS, HTTP/1.1 clients are served too (ALPN picks).
      return secure === undefined
        ? http2.createServer(handler.node)
        : http2.createSecureServer(
            { ...secure, allowHTTP1: true },
            handler.node,
          );
    default:
      throw new Error(
        `HTTP version ${request.httpVersion} is not supported: only HTTP/1.1 and HTTP/2`,
      );
  }
}

process.on("SIGTERM", () => process.exit(0));

const request = await readRequest();
const server = startServer(request);
await new Promise<void>((resolve, reject) => {
  server.once("error", reject);
  server.listen(0, "127.0.0.1", () => {
    server.off("error", reject);
    resolve();
  });
});
const { address, port } = server.address() as AddressInfo;
const response = create(ServerCompatResponseSchema, {
  host: address,
  port,
  ...(request.useTls ? { pemCert: request.serverCreds!.cert } : {}),
});
process.stdout.write(
  frameDelimited(toBinary(ServerCompatResponseSchema, response)),
);
