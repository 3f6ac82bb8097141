import { bodyFromWebStream, bodyToWebStream } from "./body.ts";
import type { HttpClient } from "./http-client.ts";

/**
 * An HttpClient over the Fetch API (browsers, Deno, Bun, Node). The platform
 * decodes `Content-Encoding` itself, which the response reports; a `fetchFn`
 * of your own must do the same.
 * @public
 */
export function createFetchHttpClient(
  fetchFn: typeof fetch = globalThis.fetch,
): HttpClient {
  return async (request) => {
    const body = request.body;
    const init: RequestInit & { duplex?: "half" } = {
      method: request.method,
      headers: request.header,
      // The DOM typings take only ArrayBuffer-backed views; protobuf output always is one.
      body:
        body === undefined || body instanceof Uint8Array
          ? ((body ?? null) as BodyInit | null)
          : bodyToWebStream(body),
      signal: request.signal,
      redirect: "error",
    };
    if (body !== undefined && !(body instanceof Uint8Array)) {
      // Streaming request bodies: half duplex is all fetch offers.
      init.duplex = "half";
    }
    const response = await fetchFn(request.url, init);
    return {
      status: response.status,
      header: response.headers,
      body: bodyFromWebStream(response.body),
      trailer: new Headers(),
      contentDecoded: true,
    };
  };
}
