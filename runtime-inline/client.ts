import type {
  DescMessage,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import type {
  CallOptions,
  UnaryCaller,
  UnaryResult,
} from "./client-connect.ts";
import type { MethodInfo } from "./method.ts";

/**
 * A unary method of a generated client: call it for the response message,
 * or call `raw` for the message with response headers and trailers.
 * @public
 */
export interface UnaryMethod<Input extends DescMessage, Output> {
  (request: MessageInitShape<Input>, options?: CallOptions): Promise<Output>;
  raw(
    request: MessageInitShape<Input>,
    options?: CallOptions,
  ): Promise<UnaryResult<Output>>;
}

/** Binds a caller to one method, typed by the method's generated schemas. */
export function clientUnaryMethod<
  Input extends DescMessage,
  Output extends DescMessage,
>(
  call: UnaryCaller,
  method: MethodInfo & { readonly input: Input; readonly output: Output },
): UnaryMethod<Input, MessageShape<Output>> {
  const raw = async (
    request: MessageInitShape<Input>,
    options?: CallOptions,
  ): Promise<UnaryResult<MessageShape<Output>>> => {
    const response = await call(method, request, options);
    return {
      message: response.message as MessageShape<Output>,
      header: response.header,
      trailer: response.trailer,
    };
  };
  const unary = async (
    request: MessageInitShape<Input>,
    options?: CallOptions,
  ) => (await call(method, request, options)).message as MessageShape<Output>;
  return Object.assign(unary, { raw });
}
