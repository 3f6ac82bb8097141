import type {
  HandlerContext,
  HandlerOptions,
  ServerRequest,
} from "./handler.ts";
import {
  createContextValues,
  type ContextValues,
} from "../core/context-values.ts";
import type { Deadline } from "../core/deadline.ts";
import type { MethodInfo } from "../core/method.ts";

// Classes rather than object literals with getters: V8 builds a literal
// with accessors slowly, and these are made once or twice per call.

/**
 * The HandlerContext of one call, unary or streaming. Its URL and signal are
 * looked up, and its request headers and response headers and trailers
 * built, only if the implementation reads them, and its values only if the implementation or an interceptor does
 * (most calls never do): then once, from the handler's `contextValues`
 * option, and shared by both.
 */
export class ServerCallContext implements HandlerContext {
  readonly method: MethodInfo;
  readonly protocol: HandlerContext["protocol"];
  readonly requestMethod: string;
  readonly timeoutMs: () => number | undefined;
  readonly #request: ServerRequest;
  readonly #contextValues: HandlerOptions["contextValues"];
  readonly #signal: AbortSignal | undefined;
  #values: ContextValues | undefined;
  #responseHeaders: Headers | undefined;
  #responseTrailers: Headers | undefined;

  constructor(
    method: MethodInfo,
    protocol: HandlerContext["protocol"],
    request: ServerRequest,
    /**
     * The call's own deadline; undefined for a call without a timeout,
     * whose signal is the request's, read on first use.
     */
    deadline: Deadline | undefined,
    contextValues: HandlerOptions["contextValues"],
  ) {
    this.method = method;
    this.protocol = protocol;
    this.requestMethod = request.method;
    this.#signal = deadline?.signal;
    this.timeoutMs = deadline?.remainingMs ?? serverNoTimeout;
    this.#request = request;
    this.#contextValues = contextValues;
  }

  // Made when first read: a call whose implementation sets none (most)
  // makes no Headers for them, two web Headers being a visible part of a
  // small call's cost.
  get responseHeaders(): Headers {
    return (this.#responseHeaders ??= new Headers());
  }

  get responseTrailers(): Headers {
    return (this.#responseTrailers ??= new Headers());
  }

  /** The response headers, or undefined if nothing has read them: none to send. */
  responseHeadersIfAny(): Headers | undefined {
    return this.#responseHeaders;
  }

  /** The response trailers, or undefined if nothing has read them: none to send. */
  responseTrailersIfAny(): Headers | undefined {
    return this.#responseTrailers;
  }

  get url(): string {
    return this.#request.url;
  }

  get signal(): AbortSignal {
    return this.#signal ?? this.#request.signal;
  }

  get requestHeaders(): Headers {
    return this.#request.headers();
  }

  get values(): ContextValues {
    if (this.#values === undefined) {
      const request = this.#request;
      this.#values =
        this.#contextValues?.({
          method: request.method,
          url: request.url,
          header: request.headers(),
        }) ?? createContextValues();
    }
    return this.#values;
  }
}

// timeoutMs of a call without a timeout: one function for all.
function serverNoTimeout(): undefined {}

/**
 * A call as the server's interceptors see it (a UnaryRequest or a
 * StreamRequest); its headers are built only if an interceptor reads them.
 * The getters are the object's own, not a prototype's: a copy made with
 * spread (`next({ ...request, message })`, as connect-es interceptors are
 * written) reads them, and so carries the headers and values on.
 */
export function serverInterceptorRequest<Stream extends boolean, M>(
  stream: Stream,
  request: ServerRequest,
  context: ServerCallContext,
  message: M,
) {
  const method = context.method;
  return {
    stream,
    service: method.service,
    method,
    requestMethod: request.method,
    url: request.url,
    signal: context.signal,
    message,
    get header(): Headers {
      return request.headers();
    },
    /** The implementation's `context.values`: what an interceptor sets there, it reads. */
    get contextValues(): ContextValues {
      return context.values;
    },
  };
}
