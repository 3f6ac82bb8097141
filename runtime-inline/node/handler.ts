import type {
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse as NodeHttpResponse,
} from "node:http";
import type {
  Http2ServerRequest,
  Http2ServerResponse,
  IncomingHttpHeaders,
  ServerHttp2Stream,
} from "node:http2";
import { readBody } from "../core/body.ts";
import {
  handlerNotFound,
  type ServerRequest,
  type ServerResponse,
  type ServiceHandler,
  type ServiceHandlers,
} from "../server/handler.ts";
import { fetchHandler, type FetchServiceHandler } from "../web/handler.ts";
import { nodeBody, nodeParsedBody, nodeReadBody } from "./body.ts";
import { NodeCallSignal } from "./call-signal.ts";
import { nodeCallTracker, type NodeCallTracker } from "./shutdown.ts";
import { nodeWriteChunks } from "./writable.ts";

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

/** What a request's body is read from. */
type NodeRequestBody = IncomingMessage | Http2ServerRequest | ServerHttp2Stream;

/** Where a response goes: an HTTP/1.1 response, or an HTTP/2 stream. */
type NodeResponseTarget = NodeHttpResponse | ServerHttp2Stream;

/**
 * One call served by a Node entry point, from routing to the response's
 * end: its signal (NodeCallSignal), the handler that serves it, and where
 * its response goes. A class with continuations rather than an async
 * function: a unary call whose response is written whole waits for the
 * handler's promise only, with no frame, promise or microtask of its own
 * (an async function here was a twentieth of a small call's allocation).
 */
class NodeCall extends NodeCallSignal {
  readonly #handlers: readonly ServiceHandler[];
  readonly #response: NodeResponseTarget;
  readonly #compat: Http2ServerResponse | undefined;
  readonly #next: ((error?: unknown) => void) | undefined;
  /** The server's calls in flight, for shutdownGracefully. */
  readonly #tracker: NodeCallTracker | undefined;
  #request: NodeServerRequest | undefined = undefined;
  /** The first handler not yet asked. */
  #handler = 0;

  constructor(
    handlers: readonly ServiceHandler[],
    response: NodeResponseTarget,
    compat: Http2ServerResponse | undefined,
    next: ((error?: unknown) => void) | undefined,
    server: object | undefined,
  ) {
    super(response);
    this.#handlers = handlers;
    this.#response = response;
    this.#compat = compat;
    this.#next = next;
    // A map entry per call: the server's tracker is shared with the entry
    // points of every generated file.
    const tracker = server === undefined ? undefined : nodeCallTracker(server);
    this.#tracker = tracker;
    if (tracker !== undefined) {
      tracker.calls.set(this, response);
      // Past a shutdown's grace period (HTTP/1.1: HTTP/2 refuses new streams).
      if (tracker.reason !== undefined) this.abort(tracker.reason);
    }
  }

  /** Asks the handlers in turn, each whose path prefixes the request's. */
  serve(request: NodeServerRequest): void {
    this.#request = request;
    const handlers = this.#handlers;
    while (this.#handler < handlers.length) {
      const handler = handlers[this.#handler++]!;
      // A handler answers undefined for a path not its own: not asking
      // those saves a promise each.
      if (!request.path.startsWith(handler.path)) continue;
      let answer: Promise<ServerResponse | undefined>;
      try {
        answer = handler.handle(request);
      } catch (error) {
        this.#fail(error);
        return;
      }
      answer.then(
        (response) => this.#answer(response),
        (error: unknown) => this.#fail(error),
      );
      return;
    }
    this.#answer(undefined);
  }

  #answer(result: ServerResponse | undefined): void {
    const request = this.#request!;
    if (result === undefined) {
      if (this.#handler < this.#handlers.length) {
        this.serve(request);
        return;
      }
      if (this.#next !== undefined) {
        this.#end();
        this.#next();
        return;
      }
      result = handlerNotFound(request.path);
    }
    let streaming: Promise<void> | undefined;
    try {
      streaming = this.#respond(result, request);
    } catch (error) {
      this.#fail(error);
      return;
    }
    if (streaming === undefined) {
      this.#end();
    } else {
      streaming.then(
        () => this.#end(),
        (error: unknown) => this.#fail(error),
      );
    }
  }

  /** Writes the response; a promise while a streamed body is still going. */
  #respond(
    result: ServerResponse,
    request: NodeServerRequest,
  ): Promise<void> | undefined {
    // Aborted by a shutdown, the call still answers (with its error).
    if (this.clientGone()) return undefined;
    const response = this.#response;
    const compat = this.#compat;
    const tracker = this.#tracker;
    // The protocol's plain header object is this response's alone: added
    // to in place.
    const outgoing: OutgoingHttpHeaders =
      result.plainHeaderIfUnread?.() ?? nodeOutgoingHeaders(result.header);
    // Headers that middleware set before us (CORS, security headers, a
    // session cookie) go out with ours, as writeHead sends them on HTTP/1.1.
    // There writeHead merges them itself, but would let our cookies and Vary
    // replace theirs.
    if (compat !== undefined) {
      nodeMergePresetHeaders(outgoing, compat.getHeaders());
    } else if (
      !("respond" in response) &&
      ((outgoing["set-cookie"] !== undefined &&
        response.hasHeader("set-cookie")) ||
        (outgoing.vary !== undefined && response.hasHeader("vary")))
    ) {
      nodeMergePresetHeaders(outgoing, response.getHeaders());
    }
    if ("respond" in response) {
      return nodeRespondHttp2(
        response,
        result,
        outgoing,
        this,
        tracker,
        compat,
        request.source,
      );
    }
    // A shutdown has begun: the client is to open a new connection.
    if (tracker?.closing === true) outgoing.connection = "close";
    return nodeRespondHttp1(response, result, outgoing, this, tracker);
  }

  /** The response is complete (or handed to `next`): a close is no cancel now. */
  #end(): void {
    this.complete = true;
    this.#untrack();
  }

  /**
   * Writing the response failed (a header Node refuses, a stream error):
   * the connection is torn down rather than crashing the process.
   */
  #fail(error: unknown): void {
    this.#untrack();
    this.#response.destroy(error instanceof Error ? error : undefined);
  }

  #untrack(): void {
    const tracker = this.#tracker;
    if (tracker !== undefined) {
      tracker.calls.delete(this);
      tracker.ended?.();
    }
  }
}

/**
 * A Node request as the protocol code sees it. A class, so that a call
 * makes no closures for it; its URL, headers, body and signal are made on
 * first use, which for most calls is never (or, for the body, read whole
 * through `readBody` rather than iterated).
 */
class NodeServerRequest implements ServerRequest {
  readonly method: string;
  readonly path: string;
  readonly search: string;
  readonly httpVersion: string;
  /** What the body is read from. */
  readonly source: NodeRequestBody;
  /** The body as a body parser left it, when one read the stream before us. */
  readonly #parsed: AsyncIterable<Uint8Array> | undefined;
  readonly #headers: NodeIncomingHeaders;
  readonly #rawHeaders: readonly string[];
  /** Path and query. */
  readonly #target: string;
  readonly #encrypted: boolean;
  readonly #call: NodeCallSignal;
  #url: string | undefined = undefined;
  #all: Headers | undefined = undefined;

  constructor(
    source: NodeRequestBody,
    parsed: AsyncIterable<Uint8Array> | undefined,
    headers: NodeIncomingHeaders,
    rawHeaders: readonly string[],
    target: string,
    method: string,
    encrypted: boolean,
    httpVersion: string,
    call: NodeCallSignal,
  ) {
    const queryStart = target.indexOf("?");
    this.method = method;
    this.path = queryStart < 0 ? target : target.slice(0, queryStart);
    this.search = queryStart < 0 ? "" : target.slice(queryStart);
    this.httpVersion = httpVersion;
    this.source = source;
    this.#parsed = parsed;
    this.#headers = headers;
    this.#rawHeaders = rawHeaders;
    this.#target = target;
    this.#encrypted = encrypted;
    this.#call = call;
  }

  get url(): string {
    return (this.#url ??= `${this.#encrypted ? "https" : "http"}://${this.header("host") ?? "localhost"}${this.#target}`);
  }

  get body(): AsyncIterable<Uint8Array> {
    return this.#parsed ?? nodeBody(this.source);
  }

  get signal(): AbortSignal {
    return this.#call.signal;
  }

  header(name: string): string | null {
    return nodeHeader(this.#headers, name);
  }

  headers(): Headers {
    return (this.#all ??= nodeRequestHeaders(this.#rawHeaders));
  }

  readBody(maxBytes: number): Promise<Uint8Array> {
    const parsed = this.#parsed;
    return parsed === undefined
      ? nodeReadBody(this.source, maxBytes)
      : readBody(parsed, maxBytes);
  }
}

// The responders return a promise only for a streamed body: a whole one
// is written at once, without a promise and a microtask to wait for it.

function nodeRespondHttp1(
  response: NodeHttpResponse,
  result: ServerResponse,
  outgoing: OutgoingHttpHeaders,
  call: NodeCallSignal,
  shutdown: NodeCallTracker | undefined,
): Promise<void> | undefined {
  const body = result.body;
  if (body !== undefined && !(body instanceof Uint8Array)) {
    response.writeHead(result.status, outgoing);
    return nodeStreamHttp1(response, result, body, call, shutdown);
  }
  if (body !== undefined && result.trailer === undefined) {
    // Else Node sends the whole body chunked: writeHead commits the headers
    // before end() sees how long it is.
    outgoing["content-length"] = body.byteLength;
  }
  response.writeHead(result.status, outgoing);
  nodeEndHttp1(response, result, body);
  return undefined;
}

async function nodeStreamHttp1(
  response: NodeHttpResponse,
  result: ServerResponse,
  body: AsyncIterable<Uint8Array>,
  call: NodeCallSignal,
  shutdown: NodeCallTracker | undefined,
): Promise<void> {
  if (await nodeWriteChunks(response, body, call.signal, shutdown)) {
    nodeEndHttp1(response, result, undefined);
  }
}

function nodeEndHttp1(
  response: NodeHttpResponse,
  result: ServerResponse,
  body: Uint8Array | undefined,
): void {
  // Read only now: a streamed body fills its trailers in as it ends.
  const trailer = result.trailer;
  if (trailer !== undefined) {
    response.addTrailers(nodeHeaderObject(trailer));
  }
  response.end(body);
}

function nodeRespondHttp2(
  stream: ServerHttp2Stream,
  result: ServerResponse,
  outgoing: OutgoingHttpHeaders,
  call: NodeCallSignal,
  shutdown: NodeCallTracker | undefined,
  compat: Http2ServerResponse | undefined,
  request: NodeRequestBody,
): Promise<void> | undefined {
  // The client may have reset the stream meanwhile: respond() would throw.
  if (stream.destroyed || stream.closed) return undefined;
  outgoing[":status"] = result.status;
  const body = result.body;
  if (body === undefined && result.trailer === undefined) {
    // One HEADERS frame that ends the stream: what gRPC calls a
    // trailers-only response. Not followed by RST_STREAM(NO_ERROR) for a
    // client still uploading: it can overtake the HEADERS frame, and the
    // client would get no status.
    stream.respond(outgoing, { endStream: true });
    return undefined;
  }
  // A response without trailers that is sent while the client is still
  // uploading (a request refused before it was read, a stream that ends
  // first) ends with its last DATA frame: a client that reads a complete
  // Connect or gRPC-Web message may stop its upload at once, and a body
  // shorter than its Content-Length makes nghttp2 reset the stream with
  // PROTOCOL_ERROR before a separate trailers frame could end it.
  const endWithData = result.trailer === undefined && !request.readableEnded;
  // Otherwise always ended by a trailers frame, empty if need be, as the
  // compatibility API does: ending with the last DATA frame lets the stream
  // close while that write is still in flight, and Node then builds an
  // error (stack trace included) for every response, a tenth of a small
  // call's CPU time.
  stream.respond(outgoing, { waitForTrailers: !endWithData });
  if (body !== undefined && !(body instanceof Uint8Array)) {
    return nodeStreamHttp2(
      stream,
      result,
      body,
      call,
      shutdown,
      compat,
      request,
      endWithData,
    );
  }
  nodeEndHttp2(stream, result, body, compat, request, endWithData);
  return undefined;
}

async function nodeStreamHttp2(
  stream: ServerHttp2Stream,
  result: ServerResponse,
  body: AsyncIterable<Uint8Array>,
  call: NodeCallSignal,
  shutdown: NodeCallTracker | undefined,
  compat: Http2ServerResponse | undefined,
  request: NodeRequestBody,
  endWithData: boolean,
): Promise<void> {
  if (await nodeWriteChunks(stream, body, call.signal, shutdown)) {
    nodeEndHttp2(stream, result, undefined, compat, request, endWithData);
  }
}

function nodeEndHttp2(
  stream: ServerHttp2Stream,
  result: ServerResponse,
  body: Uint8Array | undefined,
  compat: Http2ServerResponse | undefined,
  request: NodeRequestBody,
  endWithData: boolean,
): void {
  if (endWithData) {
    stream.end(body);
    nodeStopUpload(stream, request);
    return;
  }
  // Read only now: a streamed body fills its trailers in as it ends. A
  // client still uploading is not asked to stop after trailers: Node sends
  // RST_STREAM(NO_ERROR) once the body is flushed, before the trailers, and
  // a gRPC client would get no status. The trailers end the call for it.
  const trailer = result.trailer;
  if (compat !== undefined) {
    // The compatibility layer answers "wantTrailers" itself, with what it
    // was given (none by default).
    if (trailer !== undefined) compat.addTrailers(nodeHeaderObject(trailer));
  } else if (trailer === undefined) {
    stream.once("wantTrailers", nodeSendNoTrailers);
  } else {
    const trailers = nodeHeaderObject(trailer);
    stream.once("wantTrailers", () => stream.sendTrailers(trailers));
  }
  stream.end(body);
}

// One listener for every stream that ends with empty trailers.
function nodeSendNoTrailers(this: ServerHttp2Stream): void {
  this.sendTrailers({});
}

/**
 * Adds the headers a response object already holds to ours. Ours win a
 * conflict (the protocol's content type, its status headers), except for
 * the lists that independent layers each add to: a middleware's session
 * cookie and the implementation's own are both meant to be set, and a
 * cache must vary on what either varies on.
 */
function nodeMergePresetHeaders(
  outgoing: OutgoingHttpHeaders,
  preset: OutgoingHttpHeaders,
): void {
  for (const key in preset) {
    const value = preset[key];
    if (value === undefined) continue;
    const ours = outgoing[key];
    if (ours === undefined) {
      outgoing[key] = value;
    } else if (key === "set-cookie") {
      outgoing[key] = [value, ours].flat().map(String);
    } else if (key === "vary") {
      outgoing[key] = [value, ours].flat().join(", ");
    }
  }
}

/**
 * After a complete response, asks a client that is still uploading to stop,
 * with RST_STREAM(NO_ERROR) as RFC 9113 section 8.1 describes (Node sends it
 * once the response has been flushed). Go's HTTP/2 server does the same.
 */
function nodeStopUpload(
  stream: ServerHttp2Stream,
  request: NodeRequestBody,
): void {
  if (!request.readableEnded && !stream.closed) {
    stream.close(0 /* NGHTTP2_NO_ERROR */);
    // Node frees a stream closed with NO_ERROR only once its request body
    // has been read to the end: what the implementation left unread, in a
    // body paused for backpressure, is discarded.
    request.removeAllListeners("data");
    request.resume();
  }
}

/** Drops Content-Encoding: a body parser has undone it. */
function nodeWithoutContentEncoding(rawHeaders: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() === "content-encoding") continue;
    kept.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  return kept;
}

/** Node's parsed request headers: lower-case names, HTTP/2 pseudo-headers included. */
type NodeIncomingHeaders = Readonly<
  Record<string, string | string[] | undefined>
>;

// Node has parsed the headers already (node:http lazily, node:http2 before
// the stream event): reading a few of them costs a property lookup, where a
// `Headers` validates and copies every one.
function nodeHeader(headers: NodeIncomingHeaders, name: string): string | null {
  const value =
    headers[name] ?? (name === "host" ? headers[":authority"] : undefined);
  if (value === undefined) return null;
  return typeof value === "string" ? value : value.join(", ");
}

function nodeOutgoingHeaders(header: Headers): OutgoingHttpHeaders {
  const outgoing: OutgoingHttpHeaders = {};
  header.forEach((value, key) => {
    outgoing[key] = key === "set-cookie" ? header.getSetCookie() : value;
  });
  return outgoing;
}

function nodeHeaderObject(header: Headers): Record<string, string> {
  const object: Record<string, string> = {};
  header.forEach((value, key) => (object[key] = value));
  return object;
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
