import type {
  IncomingMessage,
  ServerResponse as NodeHttpResponse,
} from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { ServerRequest, ServiceHandler } from "./handler.ts";
import { fetchHandler, type FetchServiceHandler } from "./handler-fetch.ts";
import { nodeDrained } from "./node-writable.ts";
import { routerNotFound } from "./router.ts";

/**
 * A request listener for `node:http`, `node:https` and `node:http2` (h2c or
 * TLS, `allowHTTP1` included), usable as Express / Connect middleware: when no
 * service matches the path it calls `next()` if given, else answers 404.
 * @public
 */
export type NodeHandler = (
  request: IncomingMessage | Http2ServerRequest,
  response: NodeHttpResponse | Http2ServerResponse,
  next?: (error?: unknown) => void,
) => void;

/** @public */
export interface NodeServiceHandler extends FetchServiceHandler {
  readonly node: NodeHandler;
}

/**
 * Serves one or more services (from any generated files) on a Node server:
 * `http2.createServer(nodeHandler(eliza, other))`.
 * @public
 */
export function nodeHandler(
  ...handlers: readonly ServiceHandler[]
): NodeHandler {
  return (request, response, next) => {
    nodeServe(handlers, request, response, next).catch((error: unknown) => {
      // Only a failure to write the response gets here; the connection is
      // torn down rather than crashing the process.
      response.destroy(error instanceof Error ? error : undefined);
    });
  };
}

async function nodeServe(
  handlers: readonly ServiceHandler[],
  request: IncomingMessage | Http2ServerRequest,
  response: NodeHttpResponse | Http2ServerResponse,
  next: ((error?: unknown) => void) | undefined,
): Promise<void> {
  const target = request.url ?? "/";
  const queryStart = target.indexOf("?");
  const path = queryStart < 0 ? target : target.slice(0, queryStart);
  const controller = new AbortController();
  // writableEnded, not writableFinished: on HTTP/2 the latter is true as soon
  // as the client resets the stream, so a cancel would go unnoticed.
  response.once("close", () => {
    if (!response.writableEnded) controller.abort();
  });
  const header = nodeRequestHeaders(request.rawHeaders);
  const scheme =
    "encrypted" in request.socket && request.socket.encrypted
      ? "https"
      : "http";
  const serverRequest: ServerRequest = {
    method: request.method ?? "GET",
    path,
    search: queryStart < 0 ? "" : target.slice(queryStart),
    url: `${scheme}://${header.get("host") ?? "localhost"}${target}`,
    header,
    body: request,
    signal: controller.signal,
    httpVersion: request.httpVersionMajor === 2 ? "2" : request.httpVersion,
  };
  let result = undefined;
  for (const handler of handlers) {
    result = await handler.handle(serverRequest);
    if (result !== undefined) break;
  }
  if (result === undefined) {
    if (next !== undefined) {
      next();
      return;
    }
    result = routerNotFound(path);
  }
  if (controller.signal.aborted) {
    return;
  }
  const outgoing: Record<string, string | string[]> = {};
  result.header.forEach((value, key) => {
    outgoing[key] = key === "set-cookie" ? result.header.getSetCookie() : value;
  });
  // Both response classes have these methods; TypeScript cannot call through their union.
  const body = result.body;
  if (
    body === undefined &&
    result.trailer === undefined &&
    "stream" in response
  ) {
    // One HEADERS frame that ends the stream: what gRPC calls a trailers-only
    // response, which the compatibility API cannot send (it adds an empty
    // DATA frame to end the stream).
    response.stream.respond(
      { ...outgoing, ":status": result.status },
      { endStream: true },
    );
    return;
  }
  const res = response as NodeHttpResponse;
  res.writeHead(result.status, outgoing);
  if (body !== undefined && !(body instanceof Uint8Array)) {
    if (!(await nodeWriteStream(res, body, controller.signal))) return;
  }
  // Read only now: a streamed body fills its trailers in as it ends.
  const trailer = result.trailer;
  if (trailer !== undefined) {
    const trailers: Record<string, string> = {};
    trailer.forEach((value, key) => (trailers[key] = value));
    res.addTrailers(trailers);
  }
  if (body instanceof Uint8Array) {
    res.end(body);
  } else {
    res.end();
  }
}

/**
 * Writes chunks as they come, waiting for the socket to drain before asking
 * for more, so a slow client holds back the producer instead of filling
 * memory. Stopping the loop early (client gone) stops the producer; false
 * then, as there is nothing left to end.
 */
async function nodeWriteStream(
  res: NodeHttpResponse,
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal,
): Promise<boolean> {
  for await (const chunk of body) {
    if (signal.aborted) return false;
    if (!res.write(chunk)) {
      await nodeDrained(res);
      if (signal.aborted) return false;
    }
  }
  return true;
}

// rawHeaders keeps repeated headers apart; HTTP/2 pseudo-headers are not
// valid Headers names and are dropped, except that :authority stands in for Host.
function nodeRequestHeaders(rawHeaders: readonly string[]): Headers {
  const header = new Headers();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    if (name.charCodeAt(0) === 58 /* ":" */) {
      if (name === ":authority" && !header.has("host"))
        header.set("host", value);
      continue;
    }
    header.append(name, value);
  }
  return header;
}

/** Adds `node` and `fetch` entry points to a service handler. */
export function withNodeHandler(handler: ServiceHandler): NodeServiceHandler {
  return {
    path: handler.path,
    handle: handler.handle,
    fetch: fetchHandler(handler),
    node: nodeHandler(handler),
  };
}
