import { bodyFromWebStream, bodyToWebStream } from "../core/body.ts";
import { Code } from "../core/code.ts";
import { ConnectError, isConnectError } from "../core/errors.ts";
import { clientNeverAborted } from "../client/config.ts";
import { httpClientError, type HttpClient } from "../client/http-client.ts";

/**
 * An HttpClient over the Fetch API (browsers, Deno, Bun, Node). The platform
 * decodes `Content-Encoding` itself, which the response reports; a `fetchFn`
 * of your own must do the same.
 *
 * Unary and server-streaming calls send whole bodies, which go over any
 * HTTP version. Client- and bidi-streaming calls stream theirs, which a
 * browser does only over HTTP/2 (Chromium; it refuses HTTP/1.1); there they
 * fail with `unavailable`, saying so.
 * @public
 */
export function createFetchHttpClient(
  fetchFn: typeof fetch = globalThis.fetch,
): HttpClient {
  return fetchHttpClient(fetchFn, fetchStreaming);
}

/** RequestInit with `duplex`, which the DOM typings lack. */
type FetchInit = RequestInit & { duplex?: "half" };

/** Sends a request whose body is streamed; see fetchStreaming. */
type FetchStreaming = (
  fetchFn: typeof fetch,
  url: string,
  init: FetchInit,
  body: AsyncIterable<Uint8Array>,
) => Promise<Response>;

/**
 * The work of createFetchHttpClient. Without `streaming` it sends whole
 * bodies only: that is all the calls of a file without client- or
 * bidi-streaming methods send, and their default client leaves the
 * streaming code out of bundles.
 */
export function fetchHttpClient(
  fetchFn: typeof fetch,
  streaming?: FetchStreaming,
): HttpClient {
  return async (request) => {
    const body = request.body;
    const init: FetchInit = {
      method: request.method,
      headers: request.header,
      // fetch listens to a signal until the request is garbage: not to the
      // shared one of unary calls nothing can abort (clientNeverAborted).
      signal: request.signal === clientNeverAborted ? null : request.signal,
      redirect: "error",
    };
    if (body instanceof Uint8Array) {
      // The DOM typings take only ArrayBuffer-backed views; protobuf output always is one.
      init.body = body as Uint8Array<ArrayBuffer>;
    }
    const response =
      body === undefined || body instanceof Uint8Array
        ? await fetchFn(request.url, init)
        : await streaming!(fetchFn, request.url, init, body);
    return {
      status: response.status,
      header: response.headers,
      // A body cut off ("terminated" in Node) is the connection's loss.
      body: bodyFromWebStream(response.body, httpClientError),
      trailer: new Headers(),
      contentDecoded: true,
    };
  };
}

/**
 * Sends a streaming request body: a half-duplex web stream, all fetch
 * offers. Chromium sends one only over HTTP/2 and rejects the request
 * otherwise with a bare "Failed to fetch" (the console alone says
 * ERR_ALPN_NEGOTIATION_FAILED); the call's error says why instead, keeping
 * fetch's as its cause. Unavailable, as for any request that could not be
 * made (httpClientError; connect-node's code for a network failure too):
 * the call did not reach the server.
 */
async function fetchStreaming(
  fetchFn: typeof fetch,
  url: string,
  init: FetchInit,
  body: AsyncIterable<Uint8Array>,
): Promise<Response> {
  init.body = bodyToWebStream(body);
  init.duplex = "half";
  try {
    return await fetchFn(url, init);
  } catch (e) {
    // Aborts, timeouts and the errors of a fetch of the user's own are no
    // failure to send: they keep what the caller makes of them.
    if (
      init.signal?.aborted === true ||
      !(e instanceof Error) ||
      isConnectError(e) ||
      e.name === "AbortError" ||
      e.name === "TimeoutError"
    ) {
      throw e;
    }
    throw new ConnectError(
      `${httpClientError(e).rawMessage} (client- and bidi-streaming calls from a browser need HTTP/2: fetch streams a request body only over HTTP/2)`,
      Code.Unavailable,
      { cause: e },
    );
  }
}
