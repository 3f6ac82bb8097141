import type {
  OutgoingHttpHeaders,
  ServerResponse as NodeHttpResponse,
} from "node:http";
import type { Http2ServerResponse, ServerHttp2Stream } from "node:http2";
import type { ServerResponse } from "../server/handler.ts";
import type { NodeCallSignal } from "./call-signal.ts";
import type { NodeRequestBody } from "./request.ts";
import type { NodeCallTracker } from "./shutdown.ts";
import { nodeWriteChunks } from "./writable.ts";

/** Where a response goes: an HTTP/1.1 response, or an HTTP/2 stream. */
export type NodeResponseTarget = NodeHttpResponse | ServerHttp2Stream;

/**
 * Writes a call's response to Node: whole, or a promise while a streamed
 * body is still going (a whole one is written at once, without a promise
 * and a microtask to wait for it).
 */
export function nodeRespond(
  response: NodeResponseTarget,
  result: ServerResponse,
  compat: Http2ServerResponse | undefined,
  call: NodeCallSignal,
  tracker: NodeCallTracker | undefined,
  request: NodeRequestBody,
): Promise<void> | undefined {
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
      call,
      tracker,
      compat,
      request,
    );
  }
  // A shutdown has begun: the client is to open a new connection.
  if (tracker?.closing === true) outgoing.connection = "close";
  return nodeRespondHttp1(response, result, outgoing, call, tracker);
}

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
