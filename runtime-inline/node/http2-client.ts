import {
  connect as http2Connect,
  constants as http2Constants,
  type ClientHttp2Session,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type SecureClientSessionOptions,
} from "node:http2";
import { Readable } from "node:stream";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import { http2KeepAlive, keepaliveCheckMs } from "./keepalive.ts";
import { nodeDrained } from "./writable.ts";
import { bodyTooLarge } from "../core/body.ts";
import {
  httpClientError,
  httpFieldsOf,
  httpReadWhole,
  httpResponseFields,
  httpSendFields,
  httpTrailerFields,
  type HttpClient,
  type HttpFieldsClient,
  type HttpFieldsRequest,
  type HttpResponse,
  type HttpWholeBody,
} from "../client/http-client.ts";
import {
  clientNeverAborted,
  type ClientOptions,
  type ClientProtocol,
} from "../client/config.ts";
import { createFetchHttpClient } from "../web/fetch-client.ts";

/** @public */
export interface Http2ClientOptions {
  /** Passed to `http2.connect`: TLS material (`ca`, `cert`, `key`), settings and so on. */
  readonly sessionOptions?: SecureClientSessionOptions;
  /**
   * Keepalive: send an HTTP/2 PING on a session that has received nothing
   * for this many milliseconds, so that a connection that went dead
   * without a word (a load balancer dropped it) is found, rather than
   * leaving calls on it waiting forever. Off by default, as in gRPC. A gRPC
   * server answers pings more frequent than its policy allows with GOAWAY
   * (grpc-go: one per 5 minutes, and none with no call in flight, unless
   * configured otherwise).
   */
  readonly pingIntervalMs?: number;
  /**
   * How long a PING may go unacknowledged before the session is taken for
   * dead and destroyed: calls in flight on it fail with `unavailable`, and
   * the next call opens a new session. Default 20 seconds, as in gRPC.
   * Applies only with `pingIntervalMs`.
   */
  readonly pingTimeoutMs?: number;
  /**
   * Close a session once it has had no call in flight for this many
   * milliseconds; a later call opens a new one. Off by default.
   */
  readonly idleTimeoutMs?: number;
}

/**
 * An HttpClient over node:http2, for `http:` (h2c) and `https:` URLs. All
 * calls share one session, opened on first use and again after it closes;
 * the session does not keep the process alive while no call is in flight.
 * Keepalive (`pingIntervalMs`) and `idleTimeoutMs` are off unless asked for.
 * @public
 */
export function createHttp2HttpClient(
  options: Http2ClientOptions = {},
): HttpClient {
  const sessions = new Map<string, ClientHttp2Session>();
  // Calls in flight per session: a session holds the process open only while it has some.
  const inFlight = new Map<ClientHttp2Session, number>();
  const { pingIntervalMs, idleTimeoutMs } = options;
  for (const name of [
    "pingIntervalMs",
    "pingTimeoutMs",
    "idleTimeoutMs",
  ] as const) {
    const value = options[name];
    if (value !== undefined) keepaliveCheckMs(name, value);
  }
  // Undefined unless idleTimeoutMs is set: no per-call cost without it.
  const idleTimers =
    idleTimeoutMs === undefined
      ? undefined
      : new Map<ClientHttp2Session, ReturnType<typeof setTimeout>>();
  const sessionFor = (origin: string): ClientHttp2Session => {
    const existing = sessions.get(origin);
    if (existing !== undefined && !existing.closed && !existing.destroyed) {
      return existing;
    }
    const session = http2Connect(origin, options.sessionOptions);
    sessions.set(origin, session);
    const forget = () => {
      if (sessions.get(origin) === session) sessions.delete(origin);
    };
    // A session error fails the streams on it; the next call opens a new session.
    session.on("error", forget);
    session.on("goaway", forget);
    session.on("close", forget);
    if (pingIntervalMs !== undefined) {
      const timeoutMs = options.pingTimeoutMs ?? 20_000;
      http2KeepAlive(session, pingIntervalMs, timeoutMs, () =>
        session.destroy(
          new ConnectError(
            `HTTP/2 PING not acknowledged within ${timeoutMs} ms: connection presumed dead`,
            Code.Unavailable,
          ),
        ),
      );
    }
    if (idleTimers !== undefined) {
      session.once("close", () => {
        clearTimeout(idleTimers.get(session));
        idleTimers.delete(session);
      });
    }
    return session;
  };
  const acquire = (session: ClientHttp2Session) => {
    const calls = inFlight.get(session) ?? 0;
    inFlight.set(session, calls + 1);
    // Its first call holds the process open; the others find it held (a
    // ref per call would reach into the socket's handle each time).
    if (calls > 0) return;
    session.ref();
    if (idleTimers !== undefined) {
      clearTimeout(idleTimers.get(session));
      idleTimers.delete(session);
    }
  };
  const release = (session: ClientHttp2Session) => {
    const left = (inFlight.get(session) ?? 1) - 1;
    if (left > 0) {
      inFlight.set(session, left);
      return;
    }
    inFlight.delete(session);
    if (session.destroyed) return;
    session.unref();
    if (idleTimers !== undefined && !session.closed) {
      const timer = setTimeout(() => {
        idleTimers.delete(session);
        // Graceful: a call that took the session meanwhile would have
        // cleared this timer, so there is none to wait for.
        session.close();
      }, idleTimeoutMs);
      timer.unref();
      idleTimers.set(session, timer);
    }
  };

  const send = (request: HttpFieldsRequest): Promise<HttpResponse> => {
    const signal = request.signal;
    if (signal.aborted) {
      return Promise.reject(ConnectError.from(signal.reason, Code.Canceled));
    }
    const target = http2Target(request.url);
    const session = sessionFor(target.origin);
    acquire(session);
    // The request's record is ours to send as it is (HttpFieldsRequest).
    const outgoing: OutgoingHttpHeaders = request.fields;
    outgoing[":method"] = request.method;
    outgoing[":path"] = target.path;
    let stream: ClientHttp2Stream;
    try {
      stream = session.request(outgoing, {
        endStream: request.body === undefined,
      });
    } catch (e) {
      release(session);
      return Promise.reject(ConnectError.from(e, Code.Unavailable));
    }
    (stream as Http2EndAware).push = http2Push;
    // A call without a deadline or a caller's signal has the shared signal
    // that never aborts: adding and removing a listener per call is dear.
    const onAbort =
      signal === clientNeverAborted
        ? undefined
        : () => stream.close(http2Constants.NGHTTP2_CANCEL);
    if (onAbort !== undefined) {
      signal.addEventListener("abort", onAbort, { once: true });
    }
    const body = request.body;
    if (body instanceof Uint8Array) {
      stream.end(body);
    } else if (body !== undefined) {
      void http2WriteBody(stream, body);
    }
    return new Promise<HttpResponse>((resolve, reject) => {
      const exchange = new Http2Exchange(
        stream,
        session,
        signal,
        onAbort,
        release,
        resolve,
        reject,
      );
      (stream as Http2Exchanging)[http2Exchange] = exchange;
      // Before the response, an error fails the call; after it, the body's
      // reader reports it. This listener stays, so that no error goes unhandled.
      stream.on("error", http2ExchangeOnError);
      stream.on("close", http2ExchangeOnClose);
      stream.on("response", http2ExchangeOnResponse);
    });
  };
  // Requests from outside the generated code (a wrapper of this client)
  // come with a Headers, and get a plain response, which they may spread.
  const client = ((request) =>
    send({
      url: request.url,
      method: request.method,
      fields: httpFieldsOf(request.header),
      body: request.body,
      signal: request.signal,
    }).then((response): HttpResponse => ({
      status: response.status,
      header: response.header,
      body: response.body,
      trailer: response.trailer,
      contentDecoded: false,
    }))) as HttpFieldsClient;
  client[httpSendFields] = send;
  return client;
}

/** A stream of a request in flight, which holds its Http2Exchange. */
type Http2Exchanging = ClientHttp2Stream & {
  [http2Exchange]?: Http2Exchange | undefined;
};
export const http2Exchange = Symbol("exchange");

/**
 * One request of the node:http2 client until its stream closes: what the
 * stream's listeners (module functions, called with the stream as `this`)
 * need, in one object rather than a closure per listener and call.
 */
class Http2Exchange {
  readonly stream: ClientHttp2Stream;
  readonly #session: ClientHttp2Session;
  readonly signal: AbortSignal;
  readonly #onAbort: (() => void) | undefined;
  /** The client's: the session has one call in flight fewer. */
  readonly #release: (session: ClientHttp2Session) => void;
  readonly #resolve: (response: HttpResponse) => void;
  readonly #reject: (error: unknown) => void;
  #responded = false;
  #response: Http2Response | undefined;

  constructor(
    stream: ClientHttp2Stream,
    session: ClientHttp2Session,
    signal: AbortSignal,
    onAbort: (() => void) | undefined,
    release: (session: ClientHttp2Session) => void,
    resolve: (response: HttpResponse) => void,
    reject: (error: unknown) => void,
  ) {
    this.stream = stream;
    this.#session = session;
    this.signal = signal;
    this.#onAbort = onAbort;
    this.#release = release;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  responded(headers: IncomingHttpHeaders): void {
    if (this.#responded) return;
    this.#responded = true;
    this.#response = new Http2Response(
      headers,
      new Http2Body(this.stream, this.signal),
    );
    // Trailers come after the response's headers, never before. "on", not
    // "once": a stream has one trailers block, and once's wrapper costs per
    // call.
    this.stream.on("trailers", http2ExchangeOnTrailers);
    this.#resolve(this.#response);
  }

  trailers(fields: IncomingHttpHeaders): void {
    this.#response?.receivedTrailers(fields);
  }

  failed(error: unknown): void {
    if (this.#responded) return;
    this.#responded = true;
    this.#reject(
      this.signal.aborted
        ? ConnectError.from(this.signal.reason, Code.Canceled)
        : http2StreamError(this.stream, error),
    );
  }

  closed(): void {
    // Nothing is reported after close. The stream may have lived through a
    // young-generation collection and been promoted; then, dead, it would
    // keep this exchange and the response alive through every scavenge
    // until the next full collection.
    (this.stream as Http2Exchanging)[http2Exchange] = undefined;
    // Node closes the streams of a connection that is lost (the peer went
    // away, the socket closed, the session was destroyed) as if reset with
    // CANCEL, and the session is destroyed by the time they report it.
    if (this.#session.destroyed) http2MarkLost(this.stream);
    this.#release(this.#session);
    if (this.#onAbort !== undefined) {
      this.signal.removeEventListener("abort", this.#onAbort);
    }
    if (this.#responded) return;
    this.#responded = true;
    // Made only now: a ConnectError captures a stack trace, too dear to
    // make per call.
    this.#reject(
      this.signal.aborted
        ? ConnectError.from(this.signal.reason, Code.Canceled)
        : http2ClosedError(this.stream, "before the response began"),
    );
  }
}

function http2ExchangeOnResponse(
  this: Http2Exchanging,
  headers: IncomingHttpHeaders,
): void {
  this[http2Exchange]?.responded(headers);
}

function http2ExchangeOnTrailers(
  this: Http2Exchanging,
  fields: IncomingHttpHeaders,
): void {
  this[http2Exchange]?.trailers(fields);
}

function http2ExchangeOnError(this: Http2Exchanging, error: unknown): void {
  this[http2Exchange]?.failed(error);
}

function http2ExchangeOnClose(this: Http2Exchanging): void {
  this[http2Exchange]?.closed();
}

/**
 * A response as the protocols get it: its `header` and `trailer` are made
 * from Node's objects when first read, and until then the protocols read
 * those (httpHeaderGet, httpTrailerGet), so that a call whose caller reads
 * no headers makes no `Headers` of them (a Headers validates every name and
 * value it is given). A `trailer` read before the trailers came is filled
 * in when they do.
 */
class Http2Response implements HttpResponse {
  readonly status: number;
  readonly body: Http2Body;
  readonly contentDecoded = false;
  readonly [httpResponseFields]: IncomingHttpHeaders;
  #header: Headers | undefined;
  #trailer: Headers | undefined;
  #trailerFields: IncomingHttpHeaders | undefined;

  constructor(fields: IncomingHttpHeaders, body: Http2Body) {
    this.status = Number(fields[":status"]);
    this.body = body;
    this[httpResponseFields] = fields;
  }

  get header(): Headers {
    if (this.#header === undefined) {
      this.#header = new Headers();
      http2CopyHeaders(this[httpResponseFields], this.#header);
    }
    return this.#header;
  }

  get trailer(): Headers {
    if (this.#trailer === undefined) {
      this.#trailer = new Headers();
      if (this.#trailerFields !== undefined) {
        http2CopyHeaders(this.#trailerFields, this.#trailer);
      }
    }
    return this.#trailer;
  }

  /** Node's trailers, while no `trailer` has been made of them. */
  get [httpTrailerFields](): IncomingHttpHeaders | undefined {
    return this.#trailer === undefined ? this.#trailerFields : undefined;
  }

  receivedTrailers(fields: IncomingHttpHeaders): void {
    if (this.#trailer !== undefined) http2CopyHeaders(fields, this.#trailer);
    else this.#trailerFields = fields;
  }
}

/**
 * A response body: read as it streams (iterated: http2ResponseBody), or
 * whole by a unary call (httpReadWhole: http2ReadWhole), once either way.
 */
class Http2Body implements HttpWholeBody {
  readonly #stream: ClientHttp2Stream;
  readonly #signal: AbortSignal;

  constructor(stream: ClientHttp2Stream, signal: AbortSignal) {
    this.#stream = stream;
    this.#signal = signal;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return http2ResponseBody(this.#stream, this.#signal);
  }

  [httpReadWhole](
    maxBytes: number,
    watch?: (chunk: Uint8Array) => void,
  ): Promise<Uint8Array> {
    return http2ReadWhole(this.#stream, this.#signal, maxBytes, watch);
  }
}

/**
 * The whole body of a stream, through "data" listeners: no promise per
 * chunk. Ends as http2ReadChunks does (both finish through
 * Http2BodyWatch), and fails ResourceExhausted past `maxBytes`, or with
 * what `watch` throws when given a chunk; frees the stream when it stops
 * reading early, or when the server answered before reading the whole
 * request.
 */
export function http2ReadWhole(
  stream: ClientHttp2Stream,
  signal: AbortSignal,
  maxBytes: number,
  watch?: (chunk: Uint8Array) => void,
): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    new Http2WholeRead(
      stream,
      signal,
      maxBytes,
      watch,
      resolve,
      reject,
    ).start();
  });
}

/** A stream whose body an Http2BodyWatch watches. */
type Http2Watched = ClientHttp2Stream & {
  [http2BodyWatch]?: Http2BodyWatch | undefined;
};
const http2BodyWatch = Symbol("bodyWatch");

/**
 * Watches a response body's stream until no more of it comes, for both
 * readers (http2ReadWhole, http2ReadChunks), and calls `finished` once:
 * without an error when the body ended with END_STREAM; with the call's
 * error when the stream failed, or when it was cut short (a reset with
 * NO_ERROR or CANCEL, which Node does not report as an error, ends the body
 * too) - Canceled once the signal aborted, else by what the close tells
 * (http2ClosedError). One object per body, which its stream's listeners
 * (module functions, called with the stream as `this`) find on the stream:
 * no closure per listener and call. `start()` once constructed, since it
 * may finish at once.
 */
abstract class Http2BodyWatch {
  protected readonly stream: ClientHttp2Stream;
  protected readonly signal: AbortSignal;
  #settled = false;
  #closeSeen = false;

  constructor(stream: ClientHttp2Stream, signal: AbortSignal) {
    this.stream = stream;
    this.signal = signal;
  }

  /** Told once: undefined for a body that ended with END_STREAM, else the call's error. */
  protected abstract finished(error: ConnectError | undefined): void;

  start(): void {
    const stream = this.stream as Http2Watched;
    stream[http2BodyWatch] = this;
    stream.on("end", http2WatchOnEnd);
    stream.on("close", http2WatchOnClose);
    stream.on("error", http2WatchOnError);
    // Node holds back "end" until the body is read; Deno's node:http2 emits
    // it (and "close") for a response without DATA frames, a gRPC
    // trailers-only error, before anyone reads, so they are over by the
    // time we listen.
    if (stream.closed) this.closed();
    else if (stream.readableEnded) this.ended();
  }

  /** Stops watching; the transport's own error listener stays, so no error goes unhandled. */
  stop(): void {
    const stream = this.stream as Http2Watched;
    stream.off("end", http2WatchOnEnd);
    stream.off("close", http2WatchOnClose);
    stream.off("error", http2WatchOnError);
    if (stream[http2BodyWatch] === this) stream[http2BodyWatch] = undefined;
  }

  ended(): void {
    // A body cut short ends before its stream closes, and only the close
    // tells a lost connection (Unavailable) from a reset: wait for it.
    if (http2EndedStream(this.stream) || this.#closeSeen) this.#finish();
  }

  closed(): void {
    this.#closeSeen = true;
    // Deno's node:http2 may close a stream whose END_STREAM came while part
    // of the body waits unread: its "end" follows once that is read.
    if (http2EndedStream(this.stream) && !this.stream.readableEnded) return;
    this.#finish();
  }

  failed(error: unknown): void {
    this.#settle(http2StreamError(this.stream, error));
  }

  #finish(): void {
    this.#settle(
      http2EndedStream(this.stream)
        ? undefined
        : http2ClosedError(this.stream, "before the response ended"),
    );
  }

  #settle(error: ConnectError | undefined): void {
    if (this.#settled) return;
    this.#settled = true;
    this.finished(
      error !== undefined && this.signal.aborted
        ? ConnectError.from(this.signal.reason, Code.Canceled)
        : error,
    );
  }
}

function http2WatchOnEnd(this: Http2Watched): void {
  this[http2BodyWatch]?.ended();
}

function http2WatchOnClose(this: Http2Watched): void {
  this[http2BodyWatch]?.closed();
}

function http2WatchOnError(this: Http2Watched, error: unknown): void {
  this[http2BodyWatch]?.failed(error);
}

/** http2ReadWhole's read: the chunks so far, and the promise to settle. */
class Http2WholeRead extends Http2BodyWatch {
  readonly #maxBytes: number;
  readonly #watch: ((chunk: Uint8Array) => void) | undefined;
  readonly #resolve: (body: Uint8Array) => void;
  readonly #reject: (error: unknown) => void;
  readonly #chunks: Uint8Array[] = [];
  #length = 0;
  #done = false;

  constructor(
    stream: ClientHttp2Stream,
    signal: AbortSignal,
    maxBytes: number,
    watch: ((chunk: Uint8Array) => void) | undefined,
    resolve: (body: Uint8Array) => void,
    reject: (error: unknown) => void,
  ) {
    super(stream, signal);
    this.#maxBytes = maxBytes;
    this.#watch = watch;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  override start(): void {
    this.stream.on("data", http2WholeOnData);
    super.start();
  }

  data(chunk: Uint8Array): void {
    if (this.#done) return;
    try {
      this.#watch?.(chunk);
    } catch (e) {
      this.#fail(e);
      return;
    }
    this.#length += chunk.byteLength;
    if (this.#length > this.#maxBytes) {
      this.#fail(bodyTooLarge(this.#maxBytes));
      return;
    }
    this.#chunks.push(chunk);
  }

  protected finished(error: ConnectError | undefined): void {
    if (this.#done) return;
    if (error !== undefined) {
      this.#fail(error);
      return;
    }
    this.#done = true;
    if (!this.stream.writableFinished) {
      this.stream.close(http2Constants.NGHTTP2_CANCEL);
    }
    this.#resolve(http2Join(this.#chunks, this.#length));
  }

  #fail(error: unknown): void {
    this.#done = true;
    this.stream.close(http2Constants.NGHTTP2_CANCEL);
    this.#reject(error);
  }
}

function http2WholeOnData(this: Http2Watched, chunk: Uint8Array): void {
  (this[http2BodyWatch] as Http2WholeRead | undefined)?.data(chunk);
}

/** An Http2BodyWatch that tells a callback (http2ReadChunks). */
class Http2CallbackWatch extends Http2BodyWatch {
  readonly #finished: (error: ConnectError | undefined) => void;

  constructor(
    stream: ClientHttp2Stream,
    signal: AbortSignal,
    finished: (error: ConnectError | undefined) => void,
  ) {
    super(stream, signal);
    this.#finished = finished;
  }

  protected finished(error: ConnectError | undefined): void {
    this.#finished(error);
  }
}

/**
 * Chunks as one Uint8Array: a plain view, not a Buffer, which would
 * otherwise end up as the bytes fields of decoded messages (as readBody).
 */
function http2Join(chunks: readonly Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) {
    const only = chunks[0]!;
    return new Uint8Array(only.buffer, only.byteOffset, only.byteLength);
  }
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined;
}

interface Http2Target {
  readonly origin: string;
  /** `:path`: path and query. */
  readonly path: string;
}

// A client calls a handful of URLs (one per method) over and over: parsing
// each once saves a URL parse per call. Connect GET URLs carry the message,
// so URLs with a query are parsed every time rather than filling the cache.
const http2Targets = new Map<string, Http2Target>();
const http2TargetsMax = 1024;

function http2Target(url: string): Http2Target {
  let target = http2Targets.get(url);
  if (target === undefined) {
    const parsed = new URL(url);
    target = { origin: parsed.origin, path: parsed.pathname + parsed.search };
    if (parsed.search === "") {
      if (http2Targets.size >= http2TargetsMax) http2Targets.clear();
      http2Targets.set(url, target);
    }
  }
  return target;
}

/**
 * Sends a streaming request body alongside the response (full duplex),
 * waiting on drain so a slow server holds back the producer. A failing
 * producer fails the call with its error.
 */
async function http2WriteBody(
  stream: ClientHttp2Stream,
  body: AsyncIterable<Uint8Array>,
): Promise<void> {
  try {
    for await (const chunk of body) {
      if (stream.destroyed || stream.closed) return;
      if (!stream.write(chunk)) {
        await nodeDrained(stream);
      }
    }
    if (!stream.destroyed) stream.end();
  } catch (e) {
    stream.destroy(e instanceof Error ? e : new Error(String(e)));
  }
}

async function* http2ResponseBody(
  stream: ClientHttp2Stream,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  let complete = false;
  try {
    yield* http2ReadChunks(stream, signal);
    complete = true;
  } finally {
    // The caller stopped reading (limit exceeded, or it gave up), or the
    // body failed: free the stream. So too after a complete response while
    // the request is still being sent: the server answered without reading
    // all of it, and will not.
    if (!complete || !stream.writableFinished) {
      stream.close(http2Constants.NGHTTP2_CANCEL);
    }
  }
}

/** Set on a stream once its response ended with END_STREAM. */
const http2EndStream = Symbol("endStream");
/** Set on a stream closed because its connection was lost. */
const http2Lost = Symbol("lost");

type Http2EndAware = ClientHttp2Stream & {
  [http2EndStream]?: true;
  [http2Lost]?: true;
};

/**
 * A stream's push, telling END_STREAM from RST_STREAM(NO_ERROR). Node ends
 * the readable side for both, and reports the same rstCode (0) for both,
 * but in a different order: END_STREAM (on DATA or trailers) pushes the end
 * while the stream is open, a reset closes the stream first. A response
 * reset without END_STREAM is cut short, whatever the reset's code.
 */
export function http2Push(
  this: Http2EndAware,
  chunk: unknown,
  encoding?: BufferEncoding,
): boolean {
  if (chunk === null && !this.closed) this[http2EndStream] = true;
  return Readable.prototype.push.call(this, chunk, encoding);
}

/** Marks a stream as closed because its connection was lost (see http2ClosedError). */
export function http2MarkLost(stream: ClientHttp2Stream): void {
  (stream as Http2EndAware)[http2Lost] = true;
}

/** Whether http2Push saw the response's END_STREAM. */
function http2EndedStream(stream: ClientHttp2Stream): boolean {
  return (stream as Http2EndAware)[http2EndStream] === true;
}

// Read ahead of the caller up to this much, about what Node buffers itself.
const http2ReadAheadBytes = 64 * 1024;

/**
 * The chunks of a stream, read through its events. Node's own async
 * iterator over an HTTP/2 stream reports a premature close when the stream
 * closed normally with data still buffered (Node 24.20+, nodejs/node#65677):
 * a small response that arrived whole before the caller began to read
 * failed now and then. The stream is paused once `http2ReadAheadBytes` wait
 * unread, and flows again when the reading stops, so that Node can end and
 * free it. Ends as http2ReadWhole does (Http2BodyWatch): after the last
 * chunk, returns when the body ended with END_STREAM and throws the call's
 * error when it did not.
 */
export async function* http2ReadChunks(
  stream: ClientHttp2Stream,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array, void> {
  const chunks: Uint8Array[] = [];
  let outcome: { error: ConnectError | undefined } | undefined;
  let wake: (() => void) | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let buffered = 0;
  const onData = (chunk: Uint8Array) => {
    chunks.push(chunk);
    buffered += chunk.byteLength;
    if (buffered >= http2ReadAheadBytes) stream.pause();
    notify();
  };
  stream.on("data", onData);
  const bodyWatch = new Http2CallbackWatch(stream, signal, (error) => {
    outcome = { error };
    notify();
  });
  bodyWatch.start();
  try {
    for (;;) {
      const chunk = chunks.shift();
      if (chunk !== undefined) {
        buffered -= chunk.byteLength;
        yield chunk;
        continue;
      }
      if (outcome !== undefined) {
        if (outcome.error !== undefined) throw outcome.error;
        return;
      }
      if (stream.isPaused()) stream.resume();
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    stream.off("data", onData);
    bodyWatch.stop();
    // A paused stream never ends, and Node frees it only once it has.
    stream.resume();
  }
}

function http2CopyHeaders(from: IncomingHttpHeaders, to: Headers): void {
  for (const key in from) {
    if (key.charCodeAt(0) === 58 /* ":" */) continue;
    const value = from[key];
    if (value === undefined) continue;
    if (Array.isArray(value)) {
      for (const v of value) to.append(key, v);
    } else {
      to.append(key, value);
    }
  }
}

/**
 * Client options on Node: the common options plus the choice of transport.
 * @public
 */
export interface NodeClientOptions extends ClientOptions {
  /**
   * "fetch" (HTTP/1.1, or whatever the global fetch speaks) or "http2" (h2c
   * or TLS). The default is "http2" for gRPC, which needs it, else "fetch".
   */
  readonly transport?: "fetch" | "http2";
  readonly http2?: Http2ClientOptions;
}

/** The HttpClient a Node client speaking `protocol` uses when the user gives none. */
export function nodeClientHttpClient(
  options: NodeClientOptions,
  protocol: ClientProtocol,
): HttpClient {
  if (options.httpClient !== undefined) return options.httpClient;
  const grpc = protocol.name === "grpc";
  if (grpc && options.transport === "fetch") {
    throw new Error(
      'gRPC needs HTTP/2 trailers, which fetch cannot read: use transport "http2", or grpcWebProtocol',
    );
  }
  return options.transport === "http2" ||
    (grpc && options.transport === undefined)
    ? createHttp2HttpClient(options.http2)
    : createFetchHttpClient();
}

/** A stream's failure: a reset by its HTTP/2 code, anything else (the connection) Unavailable. */
function http2StreamError(
  stream: ClientHttp2Stream,
  error: unknown,
): ConnectError {
  const reset =
    error instanceof Error &&
    (error as { code?: unknown }).code === "ERR_HTTP2_STREAM_ERROR" &&
    stream.rstCode !== undefined;
  return reset ? http2ResetError(stream.rstCode, "") : httpClientError(error);
}

/**
 * The error of a stream that closed without a complete response: its
 * connection's loss is Unavailable (the call did not fail on the server,
 * and the caller did not cancel it), a reset by the server is by its code.
 */
function http2ClosedError(
  stream: ClientHttp2Stream,
  when: string,
): ConnectError {
  return (stream as Http2EndAware)[http2Lost] === true
    ? new ConnectError(`HTTP/2 connection lost ${when}`, Code.Unavailable)
    : http2ResetError(stream.rstCode, when);
}

/**
 * The error of a stream reset by the server, by its HTTP/2 error code, as
 * the gRPC and Connect specifications map them.
 */
function http2ResetError(rstCode: number, when: string): ConnectError {
  const code =
    rstCode === http2Constants.NGHTTP2_CANCEL
      ? Code.Canceled
      : rstCode === http2Constants.NGHTTP2_REFUSED_STREAM
        ? Code.Unavailable
        : rstCode === http2Constants.NGHTTP2_ENHANCE_YOUR_CALM
          ? Code.ResourceExhausted
          : rstCode === http2Constants.NGHTTP2_INADEQUATE_SECURITY
            ? Code.PermissionDenied
            : Code.Internal;
  return new ConnectError(
    `HTTP/2 stream reset with code ${rstCode} ${when}`,
    code,
  );
}
