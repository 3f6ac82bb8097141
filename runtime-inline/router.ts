import { bodyDefaultReadMaxBytes } from "./body.ts";
import { Code } from "./code.ts";
import { codecBinary, codecJson } from "./codec.ts";
import type { Compression } from "./compression.ts";
import { ConnectError } from "./errors.ts";
import type {
  HandlerOptions,
  MethodHandler,
  ServerRequest,
  ServerResponse,
  StreamMethodHandler,
  ServiceHandler,
} from "./handler.ts";
import {
  connectErrorResponse,
  connectHandleUnary,
  type ConnectGetQueryParser,
  type ServerConfig,
} from "./server-connect.ts";

/**
 * What a generated file plugs into the shared server code, so that it
 * carries only what it uses: a web build never references node:zlib, and a
 * service without NO_SIDE_EFFECTS methods has no GET code.
 */
export interface ServerFeatures {
  readonly compressions: readonly Compression[];
  readonly parseGetQuery?: ConnectGetQueryParser;
  /** Present only in files with streaming methods, so that others carry no streaming code. */
  readonly handleStream?: StreamCallHandler;
  /** Present in files that serve gRPC (node servers: gRPC needs HTTP/2 trailers). */
  readonly handleGrpc?: GrpcCallHandler;
}

/** The signature of grpcHandle, named so that referring to it does not pull in its code. */
export type GrpcCallHandler = (
  handler: MethodHandler | undefined,
  request: ServerRequest,
  config: ServerConfig,
) => Promise<ServerResponse>;

// application/grpc, +proto, +json; not application/grpc-web.
const routerGrpcContentType = /^application\/grpc(?![-\w])/i;

/** The signature of connectHandleStream, named so that referring to it does not pull in its code. */
export type StreamCallHandler = (
  handler: StreamMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
) => Promise<ServerResponse>;

/** Builds the handler of one service from its methods. */
export function createServiceHandler(
  servicePath: string,
  methods: readonly (MethodHandler | undefined)[],
  options: HandlerOptions,
  features: ServerFeatures,
): ServiceHandler {
  const config: ServerConfig = {
    interceptors: options.interceptors ?? [],
    readMaxBytes: options.readMaxBytes ?? bodyDefaultReadMaxBytes,
    compressions: options.compressions ?? features.compressions,
    compressMinBytes: options.compressMinBytes ?? 1024,
    binaryCodec: codecBinary,
    jsonCodec: codecJson(options.jsonOptions),
    requireConnectProtocolHeader: options.requireConnectProtocolHeader ?? false,
    parseGetQuery: features.parseGetQuery,
  };
  const byPath = new Map<string, MethodHandler>();
  for (const handler of methods) {
    if (handler !== undefined) byPath.set(handler.method.path, handler);
  }
  return {
    path: servicePath,
    async handle(request) {
      if (!request.path.startsWith(servicePath)) {
        return undefined;
      }
      const handler = byPath.get(request.path);
      const handleGrpc = features.handleGrpc;
      if (
        handleGrpc !== undefined &&
        routerGrpcContentType.test(request.header.get("content-type") ?? "")
      ) {
        // gRPC answers an unknown method with its own status, not a 404.
        return handleGrpc(handler, request, config);
      }
      if (handler === undefined) {
        return routerNotFound(request.path);
      }
      return "unary" in handler
        ? connectHandleUnary(handler, request, config)
        : features.handleStream !== undefined
          ? features.handleStream(handler, request, config)
          : routerNotFound(request.path);
    },
  };
}

/** 404 with a Connect error body, so every client reads it as `unimplemented`. */
export function routerNotFound(path: string): ServerResponse {
  const response = connectErrorResponse(
    new ConnectError(`no such method: ${path}`, Code.Unimplemented),
    new Headers(),
    new Headers(),
  );
  return { ...response, status: 404 };
}
