import type { HandlerContext, ServerRequest } from "./handler.ts";
import type { MethodInfo } from "../core/method.ts";

// Classes rather than object literals with getters: V8 builds a literal
// with accessors slowly, and these are made once or twice per call.

/**
 * The HandlerContext of one call. Its request headers are built only if the
 * implementation reads them.
 */
export class ServerCallContext implements HandlerContext {
  readonly method: MethodInfo;
  readonly protocol: HandlerContext["protocol"];
  readonly requestMethod: string;
  readonly url: string;
  readonly responseHeaders: Headers;
  readonly responseTrailers: Headers;
  readonly signal: AbortSignal;
  readonly timeoutMs: () => number | undefined;
  readonly #request: ServerRequest;

  constructor(
    method: MethodInfo,
    protocol: HandlerContext["protocol"],
    request: ServerRequest,
    responseHeaders: Headers,
    responseTrailers: Headers,
    signal: AbortSignal,
    timeoutMs: () => number | undefined,
  ) {
    this.method = method;
    this.protocol = protocol;
    this.requestMethod = request.method;
    this.url = request.url;
    this.responseHeaders = responseHeaders;
    this.responseTrailers = responseTrailers;
    this.signal = signal;
    this.timeoutMs = timeoutMs;
    this.#request = request;
  }

  get requestHeaders(): Headers {
    return this.#request.headers();
  }
}

/**
 * A call as the server's interceptors see it (a UnaryRequest or a
 * StreamRequest); its headers are built only if an interceptor reads them.
 */
export class ServerInterceptorRequest<Stream extends boolean, M> {
  readonly stream: Stream;
  readonly method: MethodInfo;
  readonly url: string;
  readonly signal: AbortSignal;
  readonly message: M;
  readonly #request: ServerRequest;

  constructor(
    stream: Stream,
    method: MethodInfo,
    request: ServerRequest,
    signal: AbortSignal,
    message: M,
  ) {
    this.stream = stream;
    this.method = method;
    this.url = request.url;
    this.signal = signal;
    this.message = message;
    this.#request = request;
  }

  get header(): Headers {
    return this.#request.headers();
  }
}
