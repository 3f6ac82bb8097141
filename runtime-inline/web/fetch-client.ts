import { bodyFromWebStream, bodyToWebStream } from "../core/body.ts";
import { httpClientError, type HttpClient } from "../client/http-client.ts";

/**
 * An HttpClient over the Fetch API (browsers, Deno, Bun, Node). The platform
 * decodes `Content-Encoding` itself, which the response reports; a `fetchFn`
 * of your own must do the same.
 * @public
 */
export function createFetchHttpClient(
  fetchFn: typeof fetch = globalThis.fetch,
): HttpClient {
  return fetchHttpClient(fetchFn, bodyToWebStream);
}

/**
 * The work of createFetchHttpClient. Without `toWebStream` it sends whole
 * bodies only: that is all the calls of a file without streaming methods
 * send, and their default client leaves the streaming code out of bundles.
 */
export function fetchHttpClient(
  fetchFn: typeof fetch,
  toWebStream?: (body: AsyncIterable<Uint8Array>) => ReadableStream<Uint8Array>,
): HttpClient {
  return async (request) => {
    const body = request.body;
    const init: RequestInit & { duplex?: "half" } = {
      method: request.method,
      headers: request.header,
      signal: request.signal,
      redirect: "error",
    };
    if (body instanceof Uint8Array) {
      // The DOM typings take only ArrayBuffer-backed views; protobuf output always is one.
      init.body = body as Uint8Array<ArrayBuffer>;
    } else if (body !== undefined) {
      init.body = toWebStream!(body);
      // Streaming request bodies: half duplex is all fetch offers.
      init.duplex = "half";
    }
    const response = await fetchFn(request.url, init);
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
