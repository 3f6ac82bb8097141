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
  envelopeFlagCompressed,
  envelopeRead,
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

/**
 * A streaming call once its implementation has produced its first message
 * (or failed first): the protocol then writes its headers and the rest.
 */
export type StreamStart =
  | {
      readonly ok: true;
      readonly header: Headers;
      readonly trailer: Headers;
      readonly first: IteratorResult<Message>;
      readonly iterator: AsyncIterator<Message>;
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
  const method = handler.method;
  const responseHeaders = new Headers();
  const responseTrailers = new Headers();
  const context = new ServerCallContext(
    method,
    protocol,
    request,
    responseHeaders,
    responseTrailers,
    deadline.signal,
    deadline.remainingMs,
    config.contextValues,
  );
  const next: StreamNext = async (req) => ({
    stream: true,
    method,
    header: responseHeaders,
    trailer: responseTrailers,
    message: serverCreateMessages(
      method.output,
      handler.stream(req.message, context),
    ),
  });
  let iterator: AsyncIterator<Message> | undefined;
  try {
    const response = await applyInterceptors(
      next,
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

/**
 * The response messages after the first, each encoded by the protocol, then
 * whatever the protocol ends the body with. When the client goes away the
 * HTTP layer stops pulling, and `finally` stops the implementation.
 */
export async function* serverWriteStream(
  start: Extract<StreamStart, { ok: true }>,
  deadline: Deadline,
  encode: (message: Message) => Promise<Uint8Array>,
  end: (error: ConnectError | undefined) => Uint8Array | undefined,
): AsyncGenerator<Uint8Array> {
  const iterator = start.iterator;
  let error: ConnectError | undefined;
  let done = false;
  try {
    let result = start.first;
    while (result.done !== true) {
      yield encode(result.value);
      result = await deadline.race(iterator.next());
    }
    done = true;
  } catch (e) {
    error = serverFail(e, start.config, start.context);
  } finally {
    deadline.cleanup();
    if (!done) {
      // Stops an implementation still running; it has its aborted signal too.
      iterator.return?.().catch(() => {});
    }
  }
  const last = end(error);
  if (last !== undefined) yield last;
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

/** Implementations may yield plain objects; the wire needs messages. */
async function* serverCreateMessages(
  desc: DescMessage,
  source: AsyncIterable<MessageInitShape<DescMessage>>,
): AsyncGenerator<Message> {
  for await (const value of source) {
    yield isMessage(value, desc) ? value : create(desc, value);
  }
}
