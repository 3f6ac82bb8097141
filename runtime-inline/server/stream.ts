import {
  create,
  isMessage,
  type DescMessage,
  type Message,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { Code } from "../core/code.ts";
import type { Codec } from "../core/codec.ts";
import type { Compression } from "../core/compression.ts";
import type { Deadline } from "../core/deadline.ts";
import {
  envelopeDecompress,
  envelopeEncode,
  envelopeFlagCompressed,
  envelopeHeader,
  envelopeRead,
  type Envelope,
} from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import type {
  HandlerContext,
  ServerRequest,
  StreamMethodHandler,
} from "./handler.ts";
import { applyInterceptors, type StreamNext } from "../core/interceptors.ts";
import type { ServerConfig } from "./config.ts";
import { serverFail } from "./fail.ts";
import { ServerCallContext, serverInterceptorRequest } from "./context.ts";

// Payloads up to this size are copied into their envelope (see serverPushStream).
const serverStreamCopyMaxBytes = 512;
/**
 * A streaming call once its implementation has produced its first message
 * (or failed first): the protocol then writes its headers and the rest.
 */
export type StreamStart =
  | {
      readonly ok: true;
      readonly header: Headers;
      readonly trailer: Headers;
      /** What the implementation yields: messages, or their init shapes. */
      readonly first: IteratorResult<MessageInitShape<DescMessage>>;
      readonly iterator: AsyncIterator<MessageInitShape<DescMessage>>;
      /** For errors raised after the first message. */
      readonly config: ServerConfig;
      readonly context: HandlerContext;
    }
  | {
      readonly ok: false;
      readonly header: Headers;
      readonly trailer: Headers;
      readonly error: ConnectError;
    };

/**
 * Runs the interceptors and the implementation of a streaming call of any
 * protocol, up to its first message, so that headers the implementation sets
 * before it go out with it.
 */
export async function serverStartStream(
  handler: StreamMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
  protocol: HandlerContext["protocol"],
  deadline: Deadline,
  requests: AsyncIterable<Message>,
): Promise<StreamStart> {
  const context = new ServerCallContext(
    handler.method,
    protocol,
    request,
    deadline,
    config.contextValues,
  );
  const responseHeaders = context.responseHeaders;
  const responseTrailers = context.responseTrailers;
  let iterator: AsyncIterator<MessageInitShape<DescMessage>> | undefined;
  try {
    // Without interceptors the implementation's own iterator is read, and
    // the write loop makes messages of what it yields; interceptors are
    // promised messages.
    const response =
      config.interceptors.length === 0
        ? {
            header: responseHeaders,
            trailer: responseTrailers,
            message: handler.stream(requests, context),
          }
        : await applyInterceptors(
            serverStreamNext(
              handler,
              context,
              responseHeaders,
              responseTrailers,
            ),
            config.interceptors,
          )(serverInterceptorRequest(true, request, context, requests));
    iterator = response.message[Symbol.asyncIterator]();
    const first = await deadline.race(iterator.next());
    return {
      ok: true,
      header: response.header,
      trailer: response.trailer,
      first,
      iterator,
      config,
      context,
    };
  } catch (e) {
    deadline.cleanup();
    // When the deadline or a cancel beat the first message, the
    // implementation is still running: stop it at its next yield.
    iterator?.return?.().catch(() => {});
    return {
      ok: false,
      header: responseHeaders,
      trailer: responseTrailers,
      error: serverFail(e, config, context),
    };
  }
}

/** The end of the interceptor chain of a streaming call: its implementation. */
function serverStreamNext(
  handler: StreamMethodHandler,
  context: HandlerContext,
  header: Headers,
  trailer: Headers,
): StreamNext {
  const method = handler.method;
  return async (req) => ({
    stream: true,
    method,
    header,
    trailer,
    message: serverCreateMessages(
      method.output,
      handler.stream(req.message, context),
    ),
  });
}

/**
 * Where a pushed response body goes: a Node writable, or a web stream's
 * controller (see serverStreamToWeb).
 */
export interface ServerBodySink {
  /** Takes a chunk; false asks the producer to wait for `drained()` before the next. */
  write(chunk: Uint8Array): boolean;
  drained(): Promise<void>;
  /** True once the sink takes nothing more (the client went away, the call was aborted). */
  stopped(): boolean;
}

/**
 * A streamed response body: one loop (`pushTo`) writes each message as the
 * implementation yields it and waits only when the sink is full; a chain of
 * async generators between the implementation and the socket cost several
 * promise round trips per message. The Node writer pushes to its writable,
 * the fetch handler reads `toWebStream()`, and the tests iterate it (a
 * reader of the same web stream). Either is used once.
 */
export interface ServerStreamBody extends AsyncIterable<Uint8Array> {
  /**
   * Writes every chunk to `sink`, the body's end last; false when the sink
   * stopped first (nothing is left to end then). Never rejects: an error of
   * the implementation ends the body, as `end` encodes it.
   */
  pushTo(sink: ServerBodySink): Promise<boolean>;
  /**
   * The body as a web stream, written as its reader pulls. Cancelling it
   * calls `onCancel` first (the fetch handler aborts the call's signal, so
   * that an implementation waiting on it wakes up), then stops the loop.
   */
  toWebStream(onCancel?: () => void): ReadableStream<Uint8Array>;
}

/**
 * The response messages after the first, each encoded (and compressed) by the
 * protocol and framed here, then whatever the protocol ends the body with. When the client goes away the
 * HTTP layer stops pulling (or the sink reports it stopped), and the
 * implementation is stopped. `encode` returns a promise only when it
 * compresses: the common message is sent without a round trip through the
 * microtask queue.
 */
export function serverWriteStream(
  start: Extract<StreamStart, { ok: true }>,
  deadline: Deadline,
  encode: (message: Message) => Envelope | Promise<Envelope>,
  end: (error: ConnectError | undefined) => Uint8Array | undefined,
): ServerStreamBody {
  const pushTo = (sink: ServerBodySink) =>
    serverPushStream(start, deadline, encode, end, sink);
  const toWebStream = (onCancel?: () => void) =>
    serverStreamToWeb(pushTo, onCancel);
  return {
    pushTo,
    toWebStream,
    [Symbol.asyncIterator]() {
      const reader = toWebStream().getReader();
      return {
        next: () => reader.read() as Promise<IteratorResult<Uint8Array>>,
        async return() {
          await reader.cancel();
          return { done: true, value: undefined };
        },
      };
    },
  };
}

/**
 * Drives the push loop from a web stream's pulls. With no high-water mark
 * the controller wants more only while a read waits: each message waits for
 * its read, as a pulled body did, so a slow reader holds back the
 * implementation.
 */
function serverStreamToWeb(
  pushTo: (sink: ServerBodySink) => Promise<boolean>,
  onCancel: (() => void) | undefined,
): ReadableStream<Uint8Array> {
  let running: Promise<boolean> | undefined;
  let cancelled = false;
  let wake: (() => void) | undefined;
  const resume = () => {
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const run = (controller: ReadableStreamDefaultController<Uint8Array>) => {
    const loop = pushTo({
      write(chunk) {
        controller.enqueue(chunk);
        return (controller.desiredSize ?? 0) > 0;
      },
      drained: () => new Promise<void>((resolve) => (wake = resolve)),
      stopped: () => cancelled,
    });
    loop.then(
      (ended) => {
        // A cancel may come between the end's write and here.
        if (ended && !cancelled) controller.close();
      },
      // The loop fails only if encoding the end does: the reader gets the
      // error, rather than the process an unhandled rejection.
      (error: unknown) => {
        if (!cancelled) controller.error(error);
      },
    );
    return loop;
  };
  let controllerOf: ReadableStreamDefaultController<Uint8Array>;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        controllerOf = controller;
      },
      pull(controller) {
        if (running === undefined) running = run(controller);
        else resume();
      },
      cancel() {
        onCancel?.();
        cancelled = true;
        resume();
        // Cancelled before its first read, the loop still runs, to stop
        // the implementation (it writes nothing). Resolves once it has.
        running ??= run(controllerOf);
        return running.then(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

async function serverPushStream(
  start: Extract<StreamStart, { ok: true }>,
  deadline: Deadline,
  encode: (message: Message) => Envelope | Promise<Envelope>,
  end: (error: ConnectError | undefined) => Uint8Array | undefined,
  sink: ServerBodySink,
): Promise<boolean> {
  const iterator = start.iterator;
  const desc = start.context.method.output;
  let error: ConnectError | undefined;
  let done = false;
  try {
    let result = start.first;
    while (result.done !== true) {
      const encoded = encode(serverMessage(desc, result.value));
      const envelope = encoded instanceof Promise ? await encoded : encoded;
      if (sink.stopped()) return false;
      // A large payload goes as a chunk of its own after its header, rather
      // than copied beside it; a small one is framed whole, so that the
      // sink queues one chunk per message, not two.
      const data = envelope.data;
      let room: boolean;
      if (data.byteLength <= serverStreamCopyMaxBytes) {
        room = sink.write(envelopeEncode(envelope.flags, data));
      } else {
        sink.write(envelopeHeader(envelope.flags, data.byteLength));
        room = sink.write(data);
      }
      if (!room) {
        await sink.drained();
        if (sink.stopped()) return false;
      }
      result = await deadline.race(iterator.next());
    }
    done = true;
  } catch (e) {
    error = serverFail(e, start.config, start.context);
  } finally {
    serverStopStream(deadline, iterator, done);
  }
  const last = end(error);
  if (last !== undefined) {
    if (sink.stopped()) return false;
    sink.write(last);
  }
  return true;
}

/**
 * Releases the deadline's watch and, unless the implementation finished,
 * stops it (it has its aborted signal too).
 */
function serverStopStream(
  deadline: Deadline,
  iterator: AsyncIterator<unknown>,
  done: boolean,
): void {
  deadline.cleanup();
  if (!done) iterator.return?.().catch(() => {});
}

/**
 * Decodes request envelopes; anything but a message (compressed or not) is
 * a protocol error, which fails the implementation's iteration.
 */
export async function* serverReadRequests(
  request: ServerRequest,
  compression: Compression | null,
  codec: Codec,
  desc: DescMessage,
  config: ServerConfig,
): AsyncGenerator<Message> {
  const readMaxBytes = config.readMaxBytes;
  for await (const envelope of envelopeRead(
    request.body,
    readMaxBytes,
    Code.InvalidArgument,
  )) {
    if ((envelope.flags & ~envelopeFlagCompressed) !== 0) {
      throw new ConnectError(
        `protocol error: unexpected envelope flags ${envelope.flags} in a request`,
        Code.InvalidArgument,
      );
    }
    const data =
      compression !== null &&
      (envelope.flags & envelopeFlagCompressed) !== 0 &&
      envelope.data.byteLength > 0
        ? // Through the handler's gate, which bounds decompressions at once.
          await config.decompressGate.decompress(
            compression,
            envelope.data,
            readMaxBytes,
            request.signal,
          )
        : await envelopeDecompress(
            envelope,
            compression,
            readMaxBytes,
            // What the conformance suite expects of every protocol.
            Code.Internal,
          );
    yield codec.decode(desc, data);
  }
}

/**
 * The response messages as interceptors see them. A mapping iterator rather than an async generator: that took a promise
 * round trip of its own per message on top of the implementation's.
 * `return` goes straight to the implementation, as a for-await loop's exit
 * would.
 */
function serverCreateMessages(
  desc: DescMessage,
  source: AsyncIterable<MessageInitShape<DescMessage>>,
): AsyncIterable<Message> {
  const toMessage = (
    result: IteratorResult<MessageInitShape<DescMessage>>,
  ): IteratorResult<Message> =>
    result.done === true
      ? result
      : {
          done: false,
          value: serverMessage(desc, result.value),
        };
  return {
    [Symbol.asyncIterator]() {
      const iterator = source[Symbol.asyncIterator]();
      return {
        next: () => iterator.next().then(toMessage),
        return: (value?: unknown) =>
          iterator.return === undefined
            ? Promise.resolve({ done: true, value })
            : iterator.return(value).then(toMessage),
      };
    },
  };
}

/** Implementations may yield plain objects; the wire needs messages. */
function serverMessage(
  desc: DescMessage,
  value: MessageInitShape<DescMessage>,
): Message {
  return isMessage(value, desc) ? value : create(desc, value);
}
