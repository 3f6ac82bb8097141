import type {
  Message,
  MessageInitShape,
  DescMessage,
  DescService,
} from "@bufbuild/protobuf";
import { Code } from "../core/code.ts";
import type { Compression } from "../core/compression.ts";
import { ConnectError, isConnectError } from "../core/errors.ts";
import type { JsonOptions } from "../core/codec.ts";
import type { ContextValues } from "../core/context-values.ts";
import type { Interceptor } from "../core/interceptors.ts";
import type { MethodInfo } from "../core/method.ts";
import type { CorsOptions } from "./cors.ts";

/**
 * An HTTP request as the protocol code sees it, whatever server delivered it
 * (node:http, node:http2, or a fetch `Request`).
 */
export interface ServerRequest {
  readonly method: string;
  /** Path without the query: `/pkg.Service/Method`. */
  readonly path: string;
  /** The query string with its leading `?`, or "". */
  readonly search: string;
  readonly url: string;
  /**
   * One request header (lower-case name), repeated ones joined by ", ", or
   * null: what the protocol code reads, without building a `Headers`.
   */
  header(name: string): string | null;
  /**
   * All request headers, for the implementation and interceptors: built on
   * first use (most calls never need them), then the same object.
   */
  headers(): Headers;
  readonly body: AsyncIterable<Uint8Array>;
  /**
   * The whole body, as `readBody(body, maxBytes)` reads it (same result,
   * same errors), where the server adapter has a cheaper way than async
   * iteration: Node's does, a unary call's largest saving.
   */
  readBody?(maxBytes: number): Promise<Uint8Array>;
  /** Aborted when the client goes away, with `handlerClientGone()`. */
  readonly signal: AbortSignal;
  /** "2" over HTTP/2, "1.1" over HTTP/1.1, "" where unknown (fetch). */
  readonly httpVersion: string;
}

export interface ServerResponse {
  readonly status: number;
  readonly header: Headers;
  /**
   * The headers as an object of lower-case names and single values, while
   * `header` has not been read (see ServerPlainResponse): a Node adapter
   * writes them as they are, without a web Headers. The object is the
   * response's own, sent once: the adapter adds its own entries to it (the
   * HTTP/2 status, Content-Length), after which `header` is not read.
   */
  plainHeaderIfUnread?(): Record<string, string> | undefined;
  /**
   * HTTP trailers, sent after the body; a streamed body may still be filling
   * them in, so they are read only once it has ended (gRPC).
   */
  readonly trailer?: Headers;
  /** A whole body, or a stream of chunks written as they come (with backpressure). */
  readonly body?: Uint8Array | AsyncIterable<Uint8Array>;
}

/**
 * A response whose only headers are the protocol's own (a unary call whose
 * implementation set none, the common case), kept as a plain object: a web
 * Headers, its validation and its sorted copy into Node's header object
 * cost a small call more than the rest of its headers' handling. `header`
 * makes the Headers on first read, for the fetch handler and CORS; from
 * then on they are the response's headers.
 */
export class ServerPlainResponse implements ServerResponse {
  readonly status: number;
  readonly body: Uint8Array;
  readonly #plain: Record<string, string>;
  #header: Headers | undefined;

  constructor(status: number, plain: Record<string, string>, body: Uint8Array) {
    this.status = status;
    this.#plain = plain;
    this.body = body;
  }

  get header(): Headers {
    return (this.#header ??= new Headers(this.#plain));
  }

  plainHeaderIfUnread(): Record<string, string> | undefined {
    return this.#header === undefined ? this.#plain : undefined;
  }
}

/**
 * What an implementation gets besides the request message.
 * @public
 */
export interface HandlerContext {
  readonly method: MethodInfo;
  readonly protocol: "connect" | "grpc" | "grpc-web";
  /** The HTTP method: "POST", or "GET" for a Connect GET. */
  readonly requestMethod: string;
  /** The request's full URL, query included (a Connect GET's message is in it). */
  readonly url: string;
  readonly requestHeaders: Headers;
  /** Set these to send response headers. */
  readonly responseHeaders: Headers;
  /** Set these to send response trailers. */
  readonly responseTrailers: Headers;
  /** Aborted when the client cancels, disconnects, or the deadline passes. */
  readonly signal: AbortSignal;
  /** Milliseconds left before the client's deadline, or undefined when it set none. */
  timeoutMs(): number | undefined;
  /**
   * The call's values: the handler's `contextValues` option's, with what
   * interceptors set in them (`request.contextValues`, the same object).
   */
  readonly values: ContextValues;
}

/** @public */
export interface HandlerOptions {
  /** Run around every call, first in the list outermost. */
  readonly interceptors?: readonly Interceptor[];
  /**
   * The values a call starts with (`context.values`, and
   * `request.contextValues` in interceptors), from its request: called once
   * per call, when an interceptor or the implementation first reads them
   * (a call that never does, never calls it). Default: empty values.
   */
  readonly contextValues?: (request: {
    /** The HTTP method. */
    readonly method: string;
    /** The full URL, query included. */
    readonly url: string;
    readonly header: Headers;
  }) => ContextValues;
  /** Largest request message accepted, after decompression. Default 4 MiB. */
  readonly readMaxBytes?: number;
  /** Response compressions offered, in order of preference. Default gzip, br, zstd. */
  readonly compressions?: readonly Compression[];
  /** Responses smaller than this are sent uncompressed. Default 1024. */
  readonly compressMinBytes?: number;
  readonly jsonOptions?: JsonOptions;
  /** Reject Connect requests without `Connect-Protocol-Version: 1`. Default false. */
  readonly requireConnectProtocolHeader?: boolean;
  /**
   * Called once for each call that fails after its implementation has
   * started (thrown or rejected by the implementation or an interceptor,
   * before or during a stream, a deadline, a cancel, a bad request message
   * read by a streaming implementation; not a unary request refused before
   * its implementation runs),
   * with what was thrown and the call's context, before the error is sent.
   * For logging: what it throws or rejects with is ignored. Default: log the
   * errors whose message `redactErrors` withholds with `console.error`.
   */
  readonly onError?: (error: unknown, context: HandlerContext) => void;
  /**
   * Send errors that are not `ConnectError`s (a plain `Error` from the
   * implementation, whose message may hold paths or secrets) with their
   * code (`unknown`, or `canceled` / `deadline_exceeded` for an
   * `AbortError` / `TimeoutError`) and a generic message instead of theirs.
   * A `ConnectError` always goes out as it is. Default true.
   */
  readonly redactErrors?: boolean;
  /**
   * How many bytes this handler decompresses at once, across all its calls,
   * counting each compressed request message at `readMaxBytes` (the most it
   * may grow to): default 32 MiB, so 8 messages at a time with the default
   * limit, at least one whatever the values. Requests past it wait, holding
   * only their compressed bytes, in a queue of `decompressionQueue`
   * (default 256) requests; past that they fail with `resource_exhausted`.
   */
  readonly decompressionBudget?: number;
  readonly decompressionQueue?: number;
  /**
   * Serve pages on other origins (browsers): answer CORS preflights and add
   * the CORS headers to every response. Off by default.
   */
  readonly cors?: CorsOptions;
}

/** An implementation function of any unary method, as the router calls it. */
export type UnaryImplementation = (
  request: Message,
  context: HandlerContext,
) => Promise<MessageInitShape<DescMessage>> | MessageInitShape<DescMessage>;

/**
 * A streaming method of any kind as the router calls it: request messages
 * in, response messages out. Generated code adapts the three kinds to it.
 */
export type StreamImplementation = (
  requests: AsyncIterable<Message>,
  context: HandlerContext,
) => AsyncIterable<MessageInitShape<DescMessage>>;

export interface UnaryMethodHandler {
  readonly method: MethodInfo;
  readonly unary: UnaryImplementation;
}

export interface StreamMethodHandler {
  readonly method: MethodInfo;
  readonly stream: StreamImplementation;
}

/** One method of a service with its implementation; built by generated code. */
export type MethodHandler = UnaryMethodHandler | StreamMethodHandler;

/** Adapts a server-streaming implementation: exactly one request message. */
export function handlerServerStreaming(
  implementation: (
    request: Message,
    context: HandlerContext,
  ) => AsyncIterable<MessageInitShape<DescMessage>>,
): StreamImplementation {
  // Not an async generator delegating with `yield*`: that cost a promise
  // round trip per response message. Once the request is read, the
  // implementation's own iterator answers.
  return (requests, context) => ({
    [Symbol.asyncIterator]() {
      let started:
        Promise<AsyncIterator<MessageInitShape<DescMessage>>> | undefined;
      let inner: AsyncIterator<MessageInitShape<DescMessage>> | undefined;
      const start = () =>
        (started ??= handlerSingleRequest(requests).then(
          (request) =>
            (inner = implementation(request, context)[Symbol.asyncIterator]()),
        ));
      return {
        next: () =>
          inner !== undefined
            ? inner.next()
            : start().then((iterator) => iterator.next()),
        // Before the first next() nothing runs yet, as with a generator.
        return: async (value?: unknown) => {
          const iterator = await started?.catch(() => undefined);
          await iterator?.return?.(value);
          return { done: true, value };
        },
      };
    },
  });
}

/**
 * The one request message of a method whose requests are not a stream;
 * none, or more than one, is a protocol error.
 */
export async function handlerSingleRequest(
  requests: AsyncIterable<Message>,
): Promise<Message> {
  let request: Message | undefined;
  for await (const message of requests) {
    if (request !== undefined) {
      throw new ConnectError(
        "protocol error: more than one request message",
        // As connect-go and the conformance suite: the call is not unary.
        Code.Unimplemented,
      );
    }
    request = message;
  }
  if (request === undefined) {
    throw new ConnectError(
      "protocol error: no request message",
      Code.Unimplemented,
    );
  }
  return request;
}

/** Adapts a client-streaming implementation: one response message. */
export function handlerClientStreaming(
  implementation: (
    requests: AsyncIterable<Message>,
    context: HandlerContext,
  ) => Promise<MessageInitShape<DescMessage>> | MessageInitShape<DescMessage>,
): StreamImplementation {
  return async function* (requests, context) {
    yield await implementation(requests, context);
  };
}

/**
 * A service ready to be served: `node` for node:http / node:https /
 * node:http2 / Express, `fetch` for Deno, Bun, Workers and Hono. Handlers of
 * different generated files combine with `nodeHandler(a, b)` / `fetchHandler(a, b)`.
 * @public
 */
export interface ServiceHandler {
  /** The service's path prefix, `/pkg.Service/`, for routing. */
  readonly path: string;
  /** The service's descriptor (server reflection answers from its file). */
  readonly service: DescService;
  /** Serves a request for this service; undefined when the path is not ours. */
  handle(request: ServerRequest): Promise<ServerResponse | undefined>;
}

/**
 * What the functions that serve several services take: handlers, or lists
 * of them (a factory that serves several paths, as server reflection's v1
 * and v1alpha, returns a list).
 * @public
 */
export type ServiceHandlers = ServiceHandler | readonly ServiceHandler[];

/**
 * The reason a server adapter aborts a request's signal with: the call's
 * signal when it has no timeout, so it must already be what implementations
 * see (a Canceled ConnectError).
 */
export function handlerClientGone(reason?: unknown): ConnectError {
  return ConnectError.from(reason ?? "the client went away", Code.Canceled);
}

/**
 * What reading a request body that fails (the client went away mid-upload,
 * or the connection broke) throws: Canceled, as a body that closes before
 * its end, with the transport's error as `cause` only. Its message may hold
 * addresses or paths, and would otherwise reach the client (a unary call
 * refused before its implementation runs sends its error as it is) or make
 * the call look like a server failure (`unknown`, message withheld).
 */
export function handlerBodyFailed(cause: unknown): ConnectError {
  return isConnectError(cause)
    ? cause
    : new ConnectError(
        "the request body failed before its end: the client went away",
        Code.Canceled,
        { cause },
      );
}

/** 415, naming the content types the method accepts. */
export function handlerUnsupportedMediaType(accepted: string): ServerResponse {
  return { status: 415, header: new Headers({ "accept-post": accepted }) };
}

/**
 * 404 for a path no service serves, or a Connect call of a method the
 * service lacks: with a Connect error body, so that a Connect client reads
 * it as `unimplemented` (and any other as 404, which maps to it as well).
 */
export function handlerNotFound(path: string): ServerResponse {
  return {
    status: 404,
    header: new Headers({ "content-type": "application/json" }),
    body: new TextEncoder().encode(
      JSON.stringify({
        code: "unimplemented",
        message: `no such method: ${path}`,
      }),
    ),
  };
}
