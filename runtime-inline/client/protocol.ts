import type { StreamCaller, UnaryCaller } from "./call.ts";
import type { ClientConfig } from "./config.ts";

/**
 * A protocol a client speaks, as a value to pass in the client's `protocol`
 * option. A generated file exports one for each protocol it was generated
 * with (`connectProtocol`, `grpcProtocol`, `grpcWebProtocol`), holding the
 * callers its methods need: Connect (client/connect.ts,
 * client/connect-stream.ts), gRPC (client/grpc.ts) and gRPC-Web
 * (client/grpc-web.ts) each provide the two factories. Values rather than
 * names, so that a bundler leaves out the protocols an application does not
 * import, and naming a factory copies it, so that a unary-only file
 * carries no streaming code.
 * @public
 */
export interface ClientProtocol {
  readonly name: "connect" | "grpc" | "grpc-web";
  /** Present in files with unary methods. */
  readonly unary?: (config: ClientConfig) => UnaryCaller;
  /** Present in files with streaming methods. */
  readonly stream?: (config: ClientConfig) => StreamCaller;
}

/**
 * The caller factory of `kind` that a client's methods need from its
 * protocol. A protocol value of another service's file may lack it (that
 * file has no such methods), and a plain name is what older generated
 * code took: both are refused with what to pass instead.
 */
export function clientProtocolCaller<Kind extends "unary" | "stream">(
  protocol: ClientProtocol,
  kind: Kind,
): NonNullable<ClientProtocol[Kind]> {
  // A JavaScript caller may pass anything; typed callers pass a ClientProtocol.
  const given = protocol as unknown;
  if (typeof given !== "object" || given === null) {
    throw new Error(
      `protocol must be a protocol value that a generated file exports (connectProtocol, grpcProtocol or grpcWebProtocol), not ${JSON.stringify(given)}`,
    );
  }
  const factory = protocol[kind];
  if (factory === undefined) {
    throw new Error(
      `protocol "${protocol.name}" has no ${kind === "unary" ? "unary" : "streaming"} calls: it comes from a file without such methods; pass the value exported by this service's file`,
    );
  }
  return factory;
}
