// Clients take a protocol as a value that their generated file exports
// (connectProtocol, grpcProtocol, grpcWebProtocol), and JSON as a codec
// (jsonCodec()). Tests parametrized by a protocol's name, which they keep for
// titles and for what the server reports, map the name to the value of the
// file whose client they create: a value of another file may lack the
// callers that client needs (a unary-only file's has no streaming ones).

import * as eliza from "../gen/eliza/v1/eliza.ElizaService.ts";
import * as greet from "../gen/unary/v1/unary.GreetService.ts";

/** A protocol's name: "connect", "grpc" or "grpc-web". */
export type ProtocolName = eliza.ClientProtocol["name"];

/** The protocol values of a generated file, by name. */
export function protocolValues<P>(file: {
  readonly connectProtocol: P;
  readonly grpcProtocol: P;
  readonly grpcWebProtocol: P;
}): Readonly<Record<ProtocolName, P>> {
  return {
    connect: file.connectProtocol,
    grpc: file.grpcProtocol,
    "grpc-web": file.grpcWebProtocol,
  };
}

/** The protocol values of test/gen's Eliza file, for its clients. */
export const elizaProtocols = protocolValues(eliza);

/** The protocol values of test/gen's Greet file (unary methods only). */
export const greetProtocols = protocolValues(greet);

/**
 * The client options that pick binary protobuf (the default, so none) or
 * JSON, for tests parametrized by a `binary` flag.
 */
export function codecOption(binary: boolean): { readonly codec?: eliza.Codec } {
  return binary ? {} : { codec: eliza.jsonCodec() };
}
