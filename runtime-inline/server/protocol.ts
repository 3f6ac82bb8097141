import type { ServerConfig } from "./config.ts";
import type {
  HandlerContext,
  ServerRequest,
  ServerResponse,
  StreamMethodHandler,
  UnaryMethodHandler,
} from "./handler.ts";

/** Serves one call of a unary method. Never throws: failures become responses. */
export type ServerUnary = (
  handler: UnaryMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
) => Promise<ServerResponse>;

/** Serves one call of a streaming method of any kind. Never throws. */
export type ServerStream = (
  handler: StreamMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
) => Promise<ServerResponse>;

/**
 * One protocol as the router sees it. A generated file builds one value per
 * protocol it serves, from only the parts its methods use (no `stream` in a
 * unary-only file, Connect's GET only with NO_SIDE_EFFECTS methods), so that
 * the router itself names no protocol code.
 */
export interface ServerProtocol {
  readonly name: HandlerContext["protocol"];
  /**
   * Whether this protocol serves a request with this Content-Type (null for
   * none, as a Connect GET has). The protocols of a file accept disjoint
   * sets, so their order does not matter.
   */
  accepts(contentType: string | null): boolean;
  /** The content types it serves, for the Accept-Post of a 415 when none accepts. */
  readonly contentTypes: string;
  readonly unary?: ServerUnary | undefined;
  /** Absent in files without streaming methods. */
  readonly stream?: ServerStream | undefined;
  /**
   * Answers a call of a method the service does not have, or has no
   * implementation for, or that this file cannot serve (a streaming method
   * without `stream`): each protocol says so in its own way.
   */
  unimplemented(
    request: ServerRequest,
    config: ServerConfig,
  ): Promise<ServerResponse>;
}

/** The first protocol that accepts a request with this Content-Type, if any. */
export function serverProtocolFor(
  protocols: readonly ServerProtocol[],
  contentType: string | null,
): ServerProtocol | undefined {
  for (const protocol of protocols) {
    if (protocol.accepts(contentType)) return protocol;
  }
  return undefined;
}
