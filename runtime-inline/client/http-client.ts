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
 * Header fields as a plain record, the form the protocols build a request's
 * headers in: names lowercase, a name's values as one string (joined with
 * ", ", as `Headers.get` gives them). A web `Headers` validates and
 * lowercases on every `set` and sorts on every iteration; a call's headers
 * are made once and read once, by the transport.
 */
export type HttpFields = Record<string, string>;

/** An HttpRequest with its headers as HttpFields (see httpSendFields). */
export interface HttpFieldsRequest extends Omit<HttpRequest, "header"> {
  /** The transport's to use as it likes (node:http2 sends this object itself). */
  readonly fields: HttpFields;
}

/**
 * The key of an HttpClient's optional second entry point, taking the headers
 * as HttpFields: `client[httpSendFields](request)`. The node:http2 transport
 * has one and sends the record as it is, so the protocols make no `Headers`
 * for it; any other client, a wrapper of it included, gets a `Headers`
 * (httpSend). fetch has none: it would make a Headers of a record anyway,
 * and browser bundles are smaller without a second entry point. A
 * registered symbol, as httpReadWhole.
 */
export const httpSendFields: unique symbol = Symbol.for(
  "connect-standalone.httpSendFields",
);

/** An HttpClient with the entry point of httpSendFields. */
export interface HttpFieldsClient extends HttpClient {
  [httpSendFields](request: HttpFieldsRequest): Promise<HttpResponse>;
}

/** Sends a request through `client`: as HttpFields when it takes them, else with a `Headers`. */
export function httpSend(
  client: HttpClient,
  request: HttpFieldsRequest,
): Promise<HttpResponse> {
  const sendFields = (client as Partial<HttpFieldsClient>)[httpSendFields];
  if (sendFields !== undefined) return sendFields(request);
  return client({
    url: request.url,
    method: request.method,
    header: httpFieldsHeaders(request.fields),
    body: request.body,
    signal: request.signal,
  });
}

/**
 * The key of the header fields of a response as its transport received them,
 * on responses that make their `header` only when it is read: names
 * lowercase, a name's several values joined with ", " (an array for
 * set-cookie). The node:http2 transport's responses to httpSendFields have
 * it (Node's own object). A registered symbol, as httpReadWhole.
 */
export const httpResponseFields: unique symbol = Symbol.for(
  "connect-standalone.httpResponseFields",
);

/**
 * The key of a response's trailer fields as its transport received them, as
 * httpResponseFields; undefined until they have all come (the body read to
 * its end), or once the response's `trailer` has been made.
 */
export const httpTrailerFields: unique symbol = Symbol.for(
  "connect-standalone.httpTrailerFields",
);

/** Header fields as a transport received them (see httpResponseFields). */
type HttpReceivedFields = Readonly<
  Record<string, string | readonly string[] | undefined>
>;

/** A response that may carry httpResponseFields and httpTrailerFields. */
interface HttpFieldsResponse extends HttpResponse {
  readonly [httpResponseFields]?: HttpReceivedFields;
  readonly [httpTrailerFields]?: HttpReceivedFields;
}

/**
 * A response header's value as `Headers.get` gives it, from the fields the
 * transport received where it has them, so that reading the content type
 * does not make the response's `Headers`.
 */
export function httpHeaderGet(
  response: HttpResponse,
  name: string,
): string | null {
  const fields = (response as HttpFieldsResponse)[httpResponseFields];
  return fields === undefined
    ? response.header.get(name)
    : httpReceivedGet(fields, name);
}

/** A response trailer's value, as httpHeaderGet; the body must have been read to its end. */
export function httpTrailerGet(
  response: HttpResponse,
  name: string,
): string | null {
  const fields = (response as HttpFieldsResponse)[httpTrailerFields];
  return fields === undefined
    ? response.trailer.get(name)
    : httpReceivedGet(fields, name);
}

function httpReceivedGet(
  fields: HttpReceivedFields,
  name: string,
): string | null {
  const value = fields[name];
  if (value === undefined) return null;
  return typeof value === "string" ? value : value.join(", ");
}

/**
 * HttpFields as a `Headers`, name by name: Node's Headers constructor reads a
 * record through a plain object of its own, and drops a "__proto__" header.
 */
export function httpFieldsHeaders(fields: HttpFields): Headers {
  const header = new Headers();
  for (const name in fields) header.append(name, fields[name]!);
  return header;
}

/**
 * A `Headers` as HttpFields. "__proto__" is a header name like any other:
 * defined as an own property, not taken for the record's prototype.
 */
export function httpFieldsOf(header: Headers): HttpFields {
  const fields: HttpFields = {};
  header.forEach((value, name) => {
    if (name === "__proto__") {
      Object.defineProperty(fields, name, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else {
      fields[name] = value;
    }
  });
  return fields;
}

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
