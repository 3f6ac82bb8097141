import type {
  MethodHandler,
  ServerRequest,
  ServerResponse,
} from "./handler.ts";
import {
  grpcWebContentTypeJson,
  grpcWebContentTypeProto,
  grpcWebEncodeTrailers,
  grpcWebParseContentType,
} from "../protocol/grpc-web.ts";
import type { ServerConfig } from "./connect.ts";
import { grpcServe, type GrpcServerProtocol } from "./grpc.ts";

const grpcWebServerProtocol: GrpcServerProtocol = {
  name: "grpc-web",
  parseContentType: grpcWebParseContentType,
  contentTypeProto: grpcWebContentTypeProto,
  contentTypeJson: grpcWebContentTypeJson,
  encodeTrailers: grpcWebEncodeTrailers,
};

/** Serves one gRPC-Web call of any kind, over any HTTP version and the fetch handler. */
export function grpcWebHandle(
  handler: MethodHandler | undefined,
  request: ServerRequest,
  config: ServerConfig,
): Promise<ServerResponse> {
  return grpcServe(grpcWebServerProtocol, handler, request, config);
}
