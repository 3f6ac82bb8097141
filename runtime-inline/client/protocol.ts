import type { ClientProtocol } from "./config.ts";

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
