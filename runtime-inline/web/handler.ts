import { bodyFromWebStream, bodyToWebStream } from "../core/body.ts";
import type { ServerStreamBody } from "../server/stream.ts";
import {
  handlerBodyFailed,
  handlerClientGone,
  handlerNotFound,
  type ServerRequest,
  type ServiceHandler,
  type ServiceHandlers,
} from "../server/handler.ts";

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
  ...services: readonly ServiceHandlers[]
): FetchHandler {
  const handlers: readonly ServiceHandler[] = services.flat();
  return async (request) => {
    const url = new URL(request.url);
    // The client goes away when the request's signal aborts, and also when
    // it cancels the response body (in process, or a runtime that cancels
    // the body of a dropped connection).
    const controller = new AbortController();
    const abort = () =>
      controller.abort(handlerClientGone(request.signal.reason));
    if (request.signal.aborted) abort();
    else request.signal.addEventListener("abort", abort, { once: true });
    const serverRequest: ServerRequest = {
      method: request.method,
      path: url.pathname,
      search: url.search,
      url: request.url,
      header: (name) => request.headers.get(name),
      headers: () => request.headers,
      body: bodyFromWebStream(request.body, handlerBodyFailed),
      signal: controller.signal,
      // A Response cannot carry HTTP trailers, whatever the connection is.
      httpVersion: "",
    };
    let response = undefined;
    for (const handler of handlers) {
      response = await handler.handle(serverRequest);
      if (response !== undefined) break;
    }
    response ??= handlerNotFound(url.pathname);
    const body = response.body;
    return new Response(
      body === undefined || body instanceof Uint8Array
        ? // The DOM typings take only ArrayBuffer-backed views; protobuf output always is one.
          ((body ?? null) as BodyInit | null)
        : fetchIsStreamBody(body)
          ? body.toWebStream(() => controller.abort(handlerClientGone()))
          : bodyToWebStream(fetchAbortOnCancel(body, controller)),
      {
        status: response.status,
        headers: response.plainHeaderIfUnread?.() ?? response.header,
      },
    );
  };
}

// By its shape: naming serverWriteStream here would copy the streaming
// code into every generated file that serves fetch.
function fetchIsStreamBody(
  body: AsyncIterable<Uint8Array>,
): body is ServerStreamBody {
  return typeof (body as Partial<ServerStreamBody>).toWebStream === "function";
}

/**
 * Aborts the call's signal when the response body is cancelled, before
 * stopping the body: an implementation waiting on the signal wakes up, where
 * stopping alone would wait for its next message.
 */
function fetchAbortOnCancel(
  body: AsyncIterable<Uint8Array>,
  controller: AbortController,
): AsyncIterable<Uint8Array> {
  return {
    [Symbol.asyncIterator]() {
      const iterator = body[Symbol.asyncIterator]();
      return {
        next: () => iterator.next(),
        async return() {
          controller.abort(handlerClientGone());
          return (
            (await iterator.return?.()) ?? { done: true, value: undefined }
          );
        },
      };
    },
  };
}

/** Adds a `fetch` entry point to a service handler. */
export function withFetchHandler(handler: ServiceHandler): FetchServiceHandler {
  return {
    path: handler.path,
    service: handler.service,
    handle: handler.handle,
    fetch: fetchHandler(handler),
  };
}
