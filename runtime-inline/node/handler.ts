import type {
  IncomingMessage,
  ServerResponse as NodeHttpResponse,
} from "node:http";
import type {
  Http2ServerRequest,
  Http2ServerResponse,
  IncomingHttpHeaders,
  ServerHttp2Stream,
} from "node:http2";
import type { ServiceHandler, ServiceHandlers } from "../server/handler.ts";
import { fetchHandler, type FetchServiceHandler } from "../web/handler.ts";
import { nodeParsedBody } from "./body.ts";
import { NodeCall } from "./call.ts";
import { NodeServerRequest, nodeWithoutContentEncoding } from "./request.ts";

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

/**
 * A `"stream"` listener for a `node:http2` server: serves HTTP/2 streams
 * without Node's compatibility layer (no request and response objects per
 * call), the fastest way to serve HTTP/2. It cannot serve HTTP/1.1, so a
 * server with `allowHTTP1` takes the `NodeHandler` instead.
 * @public
 */
export type Http2StreamHandler = (
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  flags: number,
  rawHeaders: string[],
) => void;

/** @public */
export interface NodeServiceHandler extends FetchServiceHandler {
  readonly node: NodeHandler;
  readonly http2Stream: Http2StreamHandler;
  /** A Fastify plugin serving the service: `await app.register(eliza.fastify)`. */
  readonly fastify: FastifyPlugin;
}

/**
 * A Fastify plugin: `await app.register(plugin)`. Typed without Fastify
 * (generated files do not depend on it); a `FastifyInstance` fits.
 * @public
 */
export type FastifyPlugin = (app: FastifyInstanceLike) => Promise<void>;

/**
 * What the Fastify plugin uses of a Fastify instance.
 * @public
 */
export interface FastifyInstanceLike {
  removeAllContentTypeParsers(): void;
  addContentTypeParser(
    contentType: string,
    parser: (
      request: unknown,
      payload: unknown,
      done: (error: null, body?: undefined) => void,
    ) => void,
  ): void;
  route(options: {
    method: string[];
    url: string;
    handler: (
      request: { readonly raw: IncomingMessage | Http2ServerRequest },
      reply: {
        readonly raw: NodeHttpResponse | Http2ServerResponse;
        getHeaders(): Record<string, number | string | string[] | undefined>;
        hijack(): void;
      },
    ) => void;
  }): unknown;
}

/**
 * Serves one or more services (from any generated files) in a Fastify app:
 * `await app.register(fastifyPlugin(eliza, other))`. The plugin's routes
 * take the services' paths; in its own context, request bodies are left
 * unread for the services (Fastify's parsers keep serving the other routes).
 * Register it without a `prefix`: services are served at their own paths.
 * @public
 */
export function fastifyPlugin(
  ...services: readonly ServiceHandlers[]
): FastifyPlugin {
  const handlers: readonly ServiceHandler[] = services.flat();
  const node = nodeHandler(...handlers);
  return async (app) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", (_request, _payload, done) => done(null));
    for (const { path } of handlers) {
      app.route({
        // OPTIONS for CORS preflights, GET for Connect's GET.
        method: ["POST", "GET", "OPTIONS"],
        url: `${path}*`,
        handler: (request, reply) => {
          // Headers that hooks set (CORS plugins do) live on the reply
          // until Fastify sends it, which after hijack() it does not.
          const headers = reply.getHeaders();
          for (const name in headers) {
            const value = headers[name];
            if (value !== undefined) reply.raw.setHeader(name, value);
          }
          reply.hijack();
          node(request.raw, reply.raw);
        },
      });
    }
  };
}

/**
 * Serves one or more services (from any generated files) on a Node server:
 * `http2.createServer(nodeHandler(eliza, other))`.
 * @public
 */
export function nodeHandler(
  ...services: readonly ServiceHandlers[]
): NodeHandler {
  const handlers: readonly ServiceHandler[] = services.flat();
  return (request, response, next) => {
    // On HTTP/2 the response goes straight to the stream: the compatibility
    // response costs a few microseconds more per call, and cannot send a
    // trailers-only response (it ends every stream with a DATA frame).
    const compat = "stream" in response ? response : undefined;
    const stream = compat?.stream;
    // A body parser that read the stream before us (express.json()) has
    // undone Content-Encoding too: the service must not decompress again.
    const parsed = nodeParsedBody(request);
    const call = new NodeCall(
      handlers,
      stream ?? (response as NodeHttpResponse),
      compat,
      next,
      // Through the stream on HTTP/2: the compatibility socket is a proxy.
      stream !== undefined
        ? (stream.session as { server?: object } | undefined)?.server
        : (request.socket as { server?: object }).server,
    );
    call.serve(
      new NodeServerRequest(
        request,
        parsed,
        parsed === undefined
          ? request.headers
          : { ...request.headers, "content-encoding": undefined },
        parsed === undefined
          ? request.rawHeaders
          : nodeWithoutContentEncoding(request.rawHeaders),
        request.url ?? "/",
        request.method ?? "GET",
        "encrypted" in request.socket && request.socket.encrypted === true,
        request.httpVersionMajor === 2 ? "2" : request.httpVersion,
        call,
      ),
    );
  };
}

/**
 * Serves one or more services as a `"stream"` listener of a `node:http2`
 * server: `http2.createServer().on("stream", http2StreamHandler(eliza, other))`.
 * @public
 */
export function http2StreamHandler(
  ...services: readonly ServiceHandlers[]
): Http2StreamHandler {
  const handlers: readonly ServiceHandler[] = services.flat();
  return (stream, headers, _flags, rawHeaders) => {
    // Without a listener, a stream error (a reset with an error code) would
    // be thrown as an uncaught exception; the call sees it as a closed stream.
    stream.on("error", nodeIgnoreError);
    const call = new NodeCall(
      handlers,
      stream,
      undefined,
      undefined,
      (stream.session as { server?: object } | undefined)?.server,
    );
    call.serve(
      new NodeServerRequest(
        stream,
        undefined,
        headers,
        rawHeaders,
        nodeHeaderString(headers[":path"]) ?? "/",
        nodeHeaderString(headers[":method"]) ?? "GET",
        headers[":scheme"] === "https",
        "2",
        call,
      ),
    );
  };
}

function nodeIgnoreError(): void {}

function nodeHeaderString(
  value: string | string[] | undefined,
): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** Adds `node`, `http2Stream`, `fastify` and `fetch` entry points to a service handler. */
export function withNodeHandler(handler: ServiceHandler): NodeServiceHandler {
  return {
    path: handler.path,
    service: handler.service,
    handle: handler.handle,
    fetch: fetchHandler(handler),
    node: nodeHandler(handler),
    http2Stream: http2StreamHandler(handler),
    fastify: fastifyPlugin(handler),
  };
}
