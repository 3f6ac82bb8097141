import type { Message } from "@bufbuild/protobuf";
import type { MethodInfo } from "./method.ts";

/**
 * A unary call as an interceptor sees it, on the client (before it is sent)
 * and on the server (before the implementation runs).
 * @public
 */
export interface UnaryRequest {
  readonly stream: false;
  readonly method: MethodInfo;
  /** The full request URL. */
  readonly url: string;
  /** Request headers; interceptors may add to them. */
  readonly header: Headers;
  readonly signal: AbortSignal;
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

/** @public */
export type UnaryNext = (request: UnaryRequest) => Promise<UnaryResponse>;

/**
 * Wraps a call: `(next) => async (request) => { ...; return await next(request); }`.
 * The same shape as `@connectrpc/connect` interceptors for unary calls.
 * @public
 */
export type Interceptor = (next: UnaryNext) => UnaryNext;

/** The first interceptor in the list is the outermost. */
export function applyInterceptors(
  next: UnaryNext,
  interceptors: readonly Interceptor[] | undefined,
): UnaryNext {
  if (interceptors === undefined) {
    return next;
  }
  let wrapped = next;
  for (let i = interceptors.length - 1; i >= 0; i--) {
    wrapped = interceptors[i]!(wrapped);
  }
  return wrapped;
}
