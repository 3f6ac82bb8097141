import { bodyFromWebStream } from "./body.ts";
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
    const response = await fetchFn(request.url, {
      method: request.method,
      headers: request.header,
      // The DOM typings take only ArrayBuffer-backed views; protobuf output always is one.
      body: (request.body ?? null) as BodyInit | null,
      signal: request.signal,
      redirect: "error",
    });
    return {
      status: response.status,
      header: response.headers,
      body: bodyFromWebStream(response.body),
      trailer: new Headers(),
      contentDecoded: true,
    };
  };
}
