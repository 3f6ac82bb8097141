import type { DescService } from "@bufbuild/protobuf";
import type { JsonCodecFactory } from "../core/codec.ts";
import type { Compression } from "../core/compression.ts";
import { serverConfig } from "./config.ts";
import {
  corsDecorate,
  corsIsPreflight,
  corsPolicy,
  corsPreflightHeaders,
} from "./cors.ts";
import {
  handlerUnsupportedMediaType,
  type HandlerOptions,
  type MethodHandler,
  type ServerRequest,
  type ServerResponse,
  type ServiceHandler,
} from "./handler.ts";
import { serverProtocolFor, type ServerProtocol } from "./protocol.ts";

/**
 * What a generated file plugs into the shared server code, so that it
 * carries only what it uses: only the protocols chosen at generation, each
 * built from the parts its methods need, and never node:zlib in a web build.
 */
export interface ServerParts {
  /** The file's default compressions. */
  readonly compressions: readonly Compression[];
  /** Absent in files generated with json=false: JSON requests get 415. */
  readonly json?: JsonCodecFactory;
  /** In the order of their content types in a 415's Accept-Post. */
  readonly protocols: readonly ServerProtocol[];
}

/**
 * Builds the handler of one service from its methods. The protocol of a
 * request is the one that accepts its Content-Type (gRPC, gRPC-Web, or else
 * Connect, whose GET requests have none); with none, the answer is 415.
 */
export function createServiceHandler(
  service: DescService,
  methods: readonly (MethodHandler | undefined)[],
  options: HandlerOptions,
  parts: ServerParts,
): ServiceHandler {
  const servicePath = `/${service.typeName}/`;
  const config = serverConfig(options, parts.compressions, parts.json);
  const protocols = parts.protocols;
  const byPath = new Map<string, MethodHandler>();
  for (const handler of methods) {
    if (handler !== undefined) byPath.set(handler.method.path, handler);
  }
  // For a request in a protocol this file does not serve.
  const accepted = protocols.map((p) => p.contentTypes).join(", ");
  // Not async: it hands the protocol's promise on as it is, where an async
  // function would wrap it in one more, settled microtasks later.
  const route = (
    request: ServerRequest,
  ): Promise<ServerResponse | undefined> => {
    if (!request.path.startsWith(servicePath)) {
      return Promise.resolve(undefined);
    }
    const protocol = serverProtocolFor(
      protocols,
      request.header("content-type"),
    );
    if (protocol === undefined) {
      return Promise.resolve(handlerUnsupportedMediaType(accepted));
    }
    const handler = byPath.get(request.path);
    if (handler === undefined) {
      return protocol.unimplemented(request, config);
    }
    if ("unary" in handler) {
      return protocol.unary === undefined
        ? protocol.unimplemented(request, config)
        : protocol.unary(handler, request, config);
    }
    return protocol.stream === undefined
      ? protocol.unimplemented(request, config)
      : protocol.stream(handler, request, config);
  };
  if (options.cors === undefined) {
    return { path: servicePath, service, handle: route };
  }
  const cors = corsPolicy(options.cors);
  return {
    path: servicePath,
    service,
    async handle(request) {
      const origin = request.header("origin");
      if (
        request.path.startsWith(servicePath) &&
        corsIsPreflight(
          request.method,
          request.header("access-control-request-method"),
        )
      ) {
        return { status: 204, header: corsPreflightHeaders(cors, origin) };
      }
      const response = await route(request);
      if (response !== undefined) corsDecorate(cors, origin, response.header);
      return response;
    },
  };
}
