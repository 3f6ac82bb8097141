import type { StreamCaller, UnaryCaller } from "./call.ts";
import type { ClientConfig, ClientOptions } from "./config.ts";

/**
 * A protocol a client speaks: what creates its callers for a client's
 * configuration. Connect (client/connect.ts, client/connect-stream.ts),
 * gRPC (client/grpc.ts) and gRPC-Web (client/grpc-web.ts) each provide the
 * two factories; a generated file builds each protocol's value from those
 * its methods need, since naming a factory copies it (a unary-only file
 * carries no streaming code).
 */
export interface ClientProtocol {
  readonly name: NonNullable<ClientOptions["protocol"]>;
  /** Present in files with unary methods. */
  readonly unary?: (config: ClientConfig) => UnaryCaller;
  /** Present in files with streaming methods. */
  readonly stream?: (config: ClientConfig) => StreamCaller;
}

/**
 * Picks the protocol the client options ask for among those the file was
 * generated with; the first is the default. Generic so that a file's
 * protocols, which all have the same factories, come back with them.
 */
export function clientProtocol<Protocol extends ClientProtocol>(
  name: ClientOptions["protocol"],
  available: readonly Protocol[],
): Protocol {
  // A file has one protocol at least (the generator refuses none).
  const wanted = name ?? available[0]!.name;
  const protocol = available.find((p) => p.name === wanted);
  if (protocol === undefined) {
    throw new Error(
      `protocol "${wanted}" is not available: this client was generated with ${available.map((p) => p.name).join(", ")} (plugin option "protocols")`,
    );
  }
  return protocol;
}
