import {
  grpcWebContentTypeDefault,
  grpcWebContentTypeJson,
  grpcWebContentTypeProto,
  grpcWebEncodeTrailers,
  grpcWebParseContentType,
} from "../protocol/grpc-web.ts";
import {
  grpcServerOf,
  type GrpcStreamServer,
  type GrpcVariant,
} from "./grpc.ts";
import type { ServerProtocol } from "./protocol.ts";

const grpcWebVariant: GrpcVariant = {
  name: "grpc-web",
  // application/grpc-web[+codec], not application/grpc-web-text, which no
  // protocol here serves.
  accepts: /^application\/grpc-web(?![-\w])/i,
  contentType: grpcWebContentTypeDefault,
  parseContentType: grpcWebParseContentType,
  contentTypeProto: grpcWebContentTypeProto,
  contentTypeJson: grpcWebContentTypeJson,
  encodeTrailers: grpcWebEncodeTrailers,
};

/**
 * The gRPC-Web protocol of a service, over any HTTP version and the fetch
 * handler. `stream` is grpcServeStream in files with streaming methods.
 */
export function grpcWebServer(stream?: GrpcStreamServer): ServerProtocol {
  return grpcServerOf(grpcWebVariant, stream);
}
