import { bodyFromWebStream, bodyToWebStream } from "./body.ts";
import type { ServerRequest, ServiceHandler } from "./handler.ts";
import { routerNotFound } from "./router.ts";

/**
 * A handler for runtimes built on the Fetch API: Deno, Bun, Cloudflare
 * Workers, Hono, and Node's own `Request`.
 * @public
 */
export type FetchHandler = (request: Request) => Promise<Response>;

/** @public */
export interface FetchServiceHandler extends ServiceHandler {
  readonly fetch: FetchHandler;
}

/**
 * Serves one or more services (from any generated files) as a fetch handler:
 * `export default { fetch: fetchHandler(eliza, other) }`.
 * @public
 */
export function fetchHandler(
  ...handlers: readonly ServiceHandler[]
): FetchHandler {
  return async (request) => {
    const url = new URL(request.url);
    const serverRequest: ServerRequest = {
      method: request.method,
      path: url.pathname,
      search: url.search,
      url: request.url,
      header: request.headers,
      body: bodyFromWebStream(request.body),
      signal: request.signal,
    };
    let response = undefined;
    for (const handler of handlers) {
      response = await handler.handle(serverRequest);
      if (response !== undefined) break;
    }
    response ??= routerNotFound(url.pathname);
    const body = response.body;
    return new Response(
      body === undefined || body instanceof Uint8Array
        ? // The DOM typings take only ArrayBuffer-backed views; protobuf output always is one.
          ((body ?? null) as BodyInit | null)
        : bodyToWebStream(body),
      { status: response.status, headers: response.header },
    );
  };
}

/** Adds a `fetch` entry point to a service handler. */
export function withFetchHandler(handler: ServiceHandler): FetchServiceHandler {
  return {
    path: handler.path,
    handle: handler.handle,
    fetch: fetchHandler(handler),
  };
}
