import { bodyDefaultReadMaxBytes } from "../core/body.ts";
import { codecBinary, type JsonCodecFactory } from "../core/codec.ts";
import type { Compression } from "../core/compression.ts";
import {
  decompressDefaultBudget,
  decompressDefaultQueue,
  decompressGate,
} from "../core/decompress-gate.ts";
import {
  handlerUnsupportedMediaType,
  type HandlerOptions,
  type MethodHandler,
  type ServerRequest,
  type ServerResponse,
  type StreamMethodHandler,
  type ServiceHandler,
  type UnaryMethodHandler,
} from "./handler.ts";
import type { ConnectGetQueryParser, ServerConfig } from "./connect.ts";
import type { GrpcStreamServer } from "./grpc.ts";

/**
 * What a generated file plugs into the shared server code, so that it
 * carries only what it uses: only the protocols chosen at generation, no
 * streaming code for a unary-only service, no GET code for a service without
 * NO_SIDE_EFFECTS methods, and never node:zlib in a web build.
 */
export interface ServerFeatures {
  readonly compressions: readonly Compression[];
  /** Absent in files generated with json=false: JSON requests get 415. */
  readonly json?: JsonCodecFactory;
  readonly connect?: {
    readonly unary: ConnectUnaryHandler;
    /** Present only in files with streaming methods. */
    readonly stream?: ConnectStreamHandler;
    readonly parseGetQuery?: ConnectGetQueryParser;
  };
  /** gRPC needs HTTP trailers, so web builds leave it out. */
  readonly grpc?: GrpcCallHandler;
  readonly grpcWeb?: GrpcCallHandler;
  /** With gRPC or gRPC-Web, in files with streaming methods. */
  readonly grpcStream?: GrpcStreamServer;
}

/** The signature of connectHandleUnary, named so that referring to it does not pull in its code. */
export type ConnectUnaryHandler = (
  handler: UnaryMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
) => Promise<ServerResponse>;

/** The signature of connectHandleStream. */
export type ConnectStreamHandler = (
  handler: StreamMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
) => Promise<ServerResponse>;

/** The signature of grpcHandle and grpcWebHandle. */
export type GrpcCallHandler = (
  handler: MethodHandler | undefined,
  request: ServerRequest,
  config: ServerConfig,
) => Promise<ServerResponse>;

// application/grpc[+codec] and application/grpc-web[+codec], but not
// application/grpc-web-text, which no protocol here serves.
const routerGrpcContentType = /^application\/grpc(-web)?(?![-\w])/i;

/**
 * Builds the handler of one service from its methods. The protocol of a
 * request is chosen by its Content-Type: gRPC, gRPC-Web, or else Connect
 * (whose GET requests have none).
 */
export function createServiceHandler(
  servicePath: string,
  methods: readonly (MethodHandler | undefined)[],
  options: HandlerOptions,
  features: ServerFeatures,
): ServiceHandler {
  const connect = features.connect;
  const compressions = options.compressions ?? features.compressions;
  const readMaxBytes = options.readMaxBytes ?? bodyDefaultReadMaxBytes;
  const config: ServerConfig = {
    interceptors: options.interceptors ?? [],
    readMaxBytes,
    compressions,
    compressionNames: compressions.map((c) => c.name).join(","),
    compressMinBytes: options.compressMinBytes ?? 1024,
    binaryCodec: codecBinary,
    jsonCodec: features.json?.(options.jsonOptions),
    requireConnectProtocolHeader: options.requireConnectProtocolHeader ?? false,
    parseGetQuery: connect?.parseGetQuery,
    grpcStream: features.grpcStream,
    onError: options.onError,
    redactErrors: options.redactErrors ?? true,
    decompressGate: decompressGate(
      options.decompressionBudget ?? decompressDefaultBudget,
      readMaxBytes,
      options.decompressionQueue ?? decompressDefaultQueue,
    ),
  };
  const byPath = new Map<string, MethodHandler>();
  for (const handler of methods) {
    if (handler !== undefined) byPath.set(handler.method.path, handler);
  }
  // For a request in a protocol this file does not serve.
  const accepted = [
    connect === undefined ? [] : ["application/proto", "application/json"],
    features.grpc === undefined ? [] : ["application/grpc"],
    features.grpcWeb === undefined ? [] : ["application/grpc-web"],
  ]
    .flat()
    .join(", ");
  return {
    path: servicePath,
    async handle(request) {
      if (!request.path.startsWith(servicePath)) {
        return undefined;
      }
      const handler = byPath.get(request.path);
      const grpc = routerGrpcContentType.exec(
        request.header("content-type") ?? "",
      );
      if (grpc !== null) {
        // gRPC answers an unknown method with its own status, not a 404.
        const serve = grpc[1] === undefined ? features.grpc : features.grpcWeb;
        return serve === undefined
          ? handlerUnsupportedMediaType(accepted)
          : serve(handler, request, config);
      }
      if (connect === undefined) {
        return handlerUnsupportedMediaType(accepted);
      }
      if (handler === undefined) {
        return routerNotFound(request.path);
      }
      if ("unary" in handler) {
        return connect.unary(handler, request, config);
      }
      return connect.stream !== undefined
        ? connect.stream(handler, request, config)
        : routerNotFound(request.path);
    },
  };
}

/**
 * 404 with a Connect error body, so that a Connect client reads it as
 * `unimplemented` (and any other as 404, which maps to it as well).
 */
export function routerNotFound(path: string): ServerResponse {
  return {
    status: 404,
    header: new Headers({ "content-type": "application/json" }),
    body: new TextEncoder().encode(
      JSON.stringify({
        code: "unimplemented",
        message: `no such method: ${path}`,
      }),
    ),
  };
}
