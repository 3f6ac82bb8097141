import type { ClientConfig, StreamCaller, UnaryCaller } from "./config.ts";
import {
  grpcStreamCaller,
  grpcUnaryCaller,
  type GrpcClientProtocol,
} from "./grpc.ts";
import {
  grpcWebContentTypeJson,
  grpcWebContentTypeProto,
  grpcWebDecodeTrailers,
  grpcWebParseContentType,
} from "../protocol/grpc-web.ts";

const grpcWebClientProtocol: GrpcClientProtocol = {
  contentTypeProto: grpcWebContentTypeProto,
  contentTypeJson: grpcWebContentTypeJson,
  parseContentType: grpcWebParseContentType,
  contentTypeFamily: /^application\/grpc-web(?:$|[+;])/i,
  // Marks the request as gRPC-Web for proxies and for CORS preflights.
  requestHeader: { "x-grpc-web": "1" },
  decodeTrailers: grpcWebDecodeTrailers,
};

/** The unary caller of the gRPC-Web protocol (any HTTP version, fetch included). */
export function createGrpcWebUnaryCaller(config: ClientConfig): UnaryCaller {
  return grpcUnaryCaller(grpcWebClientProtocol, config);
}

/** The streaming caller of the gRPC-Web protocol, for every kind the transport allows. */
export function createGrpcWebStreamCaller(config: ClientConfig): StreamCaller {
  return grpcStreamCaller(grpcWebClientProtocol, config);
}
