import { readBody } from "../core/body.ts";
import { Code } from "../core/code.ts";
import { ConnectError, isConnectError } from "../core/errors.ts";

/**
 * One HTTP exchange as the client protocol code needs it; implemented over
 * fetch and over node:http2, or by the user for anything else.
 * @public
 */
export interface HttpRequest {
  readonly url: string;
  readonly method: "GET" | "POST";
  readonly header: Headers;
  /**
   * A whole body (unary and server-streaming calls), or chunks sent as they
   * come (client- and bidi-streaming calls).
   */
  readonly body: Uint8Array | AsyncIterable<Uint8Array> | undefined;
  readonly signal: AbortSignal;
}

/** @public */
export interface HttpResponse {
  readonly status: number;
  readonly header: Headers;
  readonly body: AsyncIterable<Uint8Array>;
  /** HTTP trailers; complete once the body has been read to the end. */
  readonly trailer: Headers;
  /**
   * True when the HTTP layer already undid `Content-Encoding` (fetch does),
   * so the body must not be decompressed again.
   */
  readonly contentDecoded: boolean;
}

/** @public */
export type HttpClient = (request: HttpRequest) => Promise<HttpResponse>;

/**
 * The key of a response body's optional whole read: `body[httpReadWhole](maxBytes, watch)`
 * resolves to all of the body, or fails as reading it chunk by chunk would
 * (ResourceExhausted past `maxBytes`, or what `watch`, given each chunk as
 * it arrives, throws; the transport then stops reading and frees the
 * response). A transport of an older generated file ignores `watch`: a
 * caller bounds `maxBytes` too. A unary call wants the body whole,
 * and a transport that can collect it with plain listeners (the node:http2
 * client) saves a promise per chunk and two async generators per call. A
 * registered symbol, so that a client of one generated file finds it on an
 * HttpClient made by another; not in HttpResponse's type, which users
 * implement: any other body is iterated.
 */
export const httpReadWhole: unique symbol = Symbol.for(
  "connect-standalone.httpReadWhole",
);

/** A response body that can also be read whole: see httpReadWhole. */
export interface HttpWholeBody extends AsyncIterable<Uint8Array> {
  [httpReadWhole](
    maxBytes: number,
    watch?: (chunk: Uint8Array) => void,
  ): Promise<Uint8Array>;
}

/**
 * A response body read to the end, at most `maxBytes` of it: in one go when
 * the transport offers that, else chunk by chunk. `watch` sees each chunk
 * as it arrives and may throw to stop reading (see readBody).
 */
export function httpReadBody(
  body: AsyncIterable<Uint8Array>,
  maxBytes: number,
  watch?: (chunk: Uint8Array) => void,
): Promise<Uint8Array> {
  return httpReadWhole in body
    ? (body as HttpWholeBody)[httpReadWhole](maxBytes, watch)
    : readBody(body, maxBytes, watch);
}

/**
 * A failure of the HTTP layer (no response, or a body cut off) as the
 * call's error: Unavailable, since the call may not have reached the server
 * and may be retried, with a message that says what failed (fetch says only
 * "fetch failed" or "terminated"; what failed is in its causes, such as
 * "connect ECONNREFUSED 127.0.0.1:8080") and the original error as `cause`.
 * ConnectErrors, aborts and timeouts keep their own codes.
 */
export function httpClientError(error: unknown): ConnectError {
  if (
    isConnectError(error) ||
    !(error instanceof Error) ||
    error.name === "AbortError" ||
    error.name === "TimeoutError"
  ) {
    return ConnectError.from(error, Code.Unavailable);
  }
  let message = error.message;
  let cause: unknown = error.cause;
  // A cause of a cause at most: undici's are the socket's errors.
  for (let depth = 0; depth < 3 && cause instanceof Error; depth++) {
    // Happy eyeballs: one error per address tried, in an AggregateError
    // without a message of its own.
    const text =
      cause.message !== "" || !(cause instanceof AggregateError)
        ? cause.message
        : cause.errors
            .map((e: unknown) => (e instanceof Error ? e.message : String(e)))
            .join(", ");
    if (text !== "" && !message.includes(text)) {
      message = message === "" ? text : `${message}: ${text}`;
    }
    cause = cause.cause;
  }
  return new ConnectError(message, Code.Unavailable, { cause: error });
}
