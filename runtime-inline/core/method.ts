import type { DescMessage } from "@bufbuild/protobuf";

/** @public */
export type MethodKind =
  "unary" | "server_streaming" | "client_streaming" | "bidi_streaming";

/**
 * What the runtime knows of one RPC method; generated per service.
 * @public
 */
export interface MethodInfo {
  /** Fully-qualified service name: `connectrpc.eliza.v1.ElizaService`. */
  readonly service: string;
  /** The method name as in the proto: `Say`. */
  readonly name: string;
  /** The HTTP path: `/connectrpc.eliza.v1.ElizaService/Say`. */
  readonly path: string;
  readonly kind: MethodKind;
  readonly input: DescMessage;
  readonly output: DescMessage;
  /** `idempotency_level = NO_SIDE_EFFECTS`: callable with Connect GET. */
  readonly noSideEffects: boolean;
}
