import type { Message } from "@bufbuild/protobuf";
import type { ContextValues } from "./context-values.ts";
import type { MethodInfo } from "./method.ts";

/**
 * A unary call as an interceptor sees it, on the client (before it is sent)
 * and on the server (before the implementation runs).
 * @public
 */
export interface UnaryRequest {
  readonly stream: false;
  /** The service's fully-qualified name: `connectrpc.eliza.v1.ElizaService`. */
  readonly service: string;
  readonly method: MethodInfo;
  /** The HTTP method: "POST", or "GET" for a Connect GET. */
  readonly requestMethod: string;
  /** The full request URL (without a Connect GET's query on the client). */
  readonly url: string;
  /** Request headers; interceptors may add to them. */
  readonly header: Headers;
  readonly signal: AbortSignal;
  /**
   * The call's values: on the server, those of the handler's
   * `contextValues` option, which the implementation reads as
   * `context.values`; on the client, `CallOptions.contextValues`.
   */
  readonly contextValues: ContextValues;
  readonly message: Message;
}

/** @public */
export interface UnaryResponse {
  readonly stream: false;
  readonly method: MethodInfo;
  readonly header: Headers;
  readonly trailer: Headers;
  readonly message: Message;
}

/**
 * A streaming call as an interceptor sees it: the request messages as an
 * async iterable (one message for server streaming).
 * @public
 */
export interface StreamRequest {
  readonly stream: true;
  readonly service: string;
  readonly method: MethodInfo;
  /** Always "POST". */
  readonly requestMethod: string;
  readonly url: string;
  readonly header: Headers;
  readonly signal: AbortSignal;
  readonly contextValues: ContextValues;
  readonly message: AsyncIterable<Message>;
}

/**
 * The response of a streaming call: `trailer` is complete once `message`
 * has been read to the end.
 * @public
 */
export interface StreamResponse {
  readonly stream: true;
  readonly method: MethodInfo;
  readonly header: Headers;
  readonly trailer: Headers;
  readonly message: AsyncIterable<Message>;
}

/** @public */
export type UnaryNext = (request: UnaryRequest) => Promise<UnaryResponse>;

/** @public */
export type StreamNext = (request: StreamRequest) => Promise<StreamResponse>;

/**
 * The next step of any call; `request.stream` tells unary from streaming,
 * and the response is of the same kind.
 * @public
 */
export type AnyNext = (
  request: UnaryRequest | StreamRequest,
) => Promise<UnaryResponse | StreamResponse>;

/**
 * Wraps every call: `(next) => async (request) => { ...; return await next(request); }`.
 * The same shape as `@connectrpc/connect` interceptors.
 * @public
 */
export type Interceptor = (next: AnyNext) => AnyNext;

/** The first interceptor in the list is the outermost. */
export function applyInterceptors<
  Request extends UnaryRequest | StreamRequest,
  Response extends UnaryResponse | StreamResponse,
>(
  next: (request: Request) => Promise<Response>,
  interceptors: readonly Interceptor[] | undefined,
): (request: Request) => Promise<Response> {
  if (interceptors === undefined || interceptors.length === 0) {
    return next;
  }
  // An interceptor answers a unary request with a unary response and a
  // stream with a stream, so the chain keeps the types it was given.
  let wrapped = next as unknown as AnyNext;
  for (let i = interceptors.length - 1; i >= 0; i--) {
    wrapped = interceptors[i]!(wrapped);
  }
  return wrapped as unknown as (request: Request) => Promise<Response>;
}
