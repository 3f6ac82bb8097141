import {
  create,
  isMessage,
  type DescMessage,
  type Message,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { Code } from "./code.ts";
import type { Codec } from "./codec.ts";
import {
  compressionFind,
  compressionNegotiate,
  type Compression,
} from "./compression.ts";
import { deadlineStart, type Deadline } from "./deadline.ts";
import {
  envelopeDecompress,
  envelopeEncode,
  envelopeFlagEndStream,
  envelopeRead,
} from "./envelope.ts";
import { ConnectError } from "./errors.ts";
import {
  handlerUnsupportedMediaType,
  type HandlerContext,
  type ServerRequest,
  type ServerResponse,
  type StreamMethodHandler,
} from "./handler.ts";
import { applyInterceptors, type StreamNext } from "./interceptors.ts";
import {
  connectHeaderTimeout,
  connectParseTimeout,
  connectUnknownCompression,
} from "./protocol-connect.ts";
import {
  connectEncodeMessage,
  connectEndStreamToJson,
  connectHeaderAcceptEncoding,
  connectHeaderContentEncoding,
  connectParseStreamContentType,
  connectStreamContentTypeJson,
  connectStreamContentTypeProto,
} from "./protocol-connect-stream.ts";
import type { ServerConfig } from "./server-connect.ts";

/**
 * Serves one streaming Connect call of any kind. The response status is 200
 * once the call is accepted; errors travel in the end-of-stream message.
 */
export async function connectHandleStream(
  handler: StreamMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
): Promise<ServerResponse> {
  const method = handler.method;
  if (request.method !== "POST") {
    return { status: 405, header: new Headers({ allow: "POST" }) };
  }
  const contentType = connectParseStreamContentType(
    request.header.get("content-type"),
  );
  if (contentType === undefined) {
    return handlerUnsupportedMediaType(
      `${connectStreamContentTypeJson}, ${connectStreamContentTypeProto}`,
    );
  }
  const codec = contentType.binary ? config.binaryCodec : config.jsonCodec;
  const header = new Headers({
    "content-type": contentType.binary
      ? connectStreamContentTypeProto
      : connectStreamContentTypeJson,
  });
  const responseCompression = compressionNegotiate(
    config.compressions,
    request.header.get(connectHeaderAcceptEncoding),
  );
  if (responseCompression !== undefined) {
    header.set(connectHeaderContentEncoding, responseCompression.name);
  }
  const encoding = request.header.get(connectHeaderContentEncoding);
  const requestCompression = compressionFind(config.compressions, encoding);
  const timeoutMs = connectParseTimeout(
    request.header.get(connectHeaderTimeout),
  );
  if (timeoutMs instanceof ConnectError || requestCompression === undefined) {
    const refused =
      timeoutMs instanceof ConnectError
        ? timeoutMs
        : connectUnknownCompression(encoding, config.compressions);
    return {
      status: 200,
      header,
      body: envelopeEncode(
        envelopeFlagEndStream,
        connectEndStreamToJson(refused, new Headers()),
      ),
    };
  }

  const deadline = deadlineStart(timeoutMs, request.signal);
  const responseHeaders = new Headers();
  const responseTrailers = new Headers();
  const context: HandlerContext = {
    method,
    protocol: "connect",
    requestHeaders: request.header,
    responseHeaders,
    responseTrailers,
    signal: deadline.signal,
    timeoutMs: deadline.remainingMs,
  };
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
  let first: IteratorResult<Message>;
  let trailer = responseTrailers;
  try {
    const response = await applyInterceptors(
      next,
      config.interceptors,
    )({
      stream: true,
      method,
      url: request.url,
      header: request.header,
      signal: deadline.signal,
      message: connectReadRequests(
        request.body,
        requestCompression,
        codec,
        method.input,
        config.readMaxBytes,
      ),
    });
    trailer = response.trailer;
    iterator = response.message[Symbol.asyncIterator]();
    // Headers the implementation sets before its first message go out with it.
    first = await Promise.race([iterator.next(), deadline.aborted()]);
    response.header.forEach((value, key) => header.append(key, value));
  } catch (e) {
    deadline.cleanup();
    // When the deadline or a cancel beat the first message, the
    // implementation is still running: stop it at its next yield.
    iterator?.return?.().catch(() => {});
    const error = ConnectError.from(e);
    responseHeaders.forEach((value, key) => header.append(key, value));
    return {
      status: 200,
      header,
      body: envelopeEncode(
        envelopeFlagEndStream,
        connectEndStreamToJson(error, responseTrailers),
      ),
    };
  }
  return {
    status: 200,
    header,
    body: connectWriteResponses(
      first,
      iterator,
      trailer,
      codec,
      method.output,
      responseCompression,
      config.compressMinBytes,
      deadline,
    ),
  };
}

/** Decodes the request envelopes; a malformed one fails the implementation's iteration. */
async function* connectReadRequests(
  body: AsyncIterable<Uint8Array>,
  compression: Compression | null,
  codec: Codec,
  desc: DescMessage,
  readMaxBytes: number,
): AsyncGenerator<Message> {
  for await (const envelope of envelopeRead(
    body,
    readMaxBytes,
    Code.InvalidArgument,
  )) {
    if ((envelope.flags & envelopeFlagEndStream) !== 0) {
      throw new ConnectError(
        "protocol error: end-of-stream flag in a request",
        Code.InvalidArgument,
      );
    }
    const data = await envelopeDecompress(
      envelope,
      compression,
      readMaxBytes,
      Code.InvalidArgument,
    );
    yield codec.decode(desc, data);
  }
}

/**
 * The response body: each message as an envelope, then the end-of-stream
 * message with the error, if any, and the trailers. When the client goes
 * away the HTTP layer stops pulling, and `finally` stops the implementation.
 */
async function* connectWriteResponses(
  first: IteratorResult<Message>,
  iterator: AsyncIterator<Message>,
  trailer: Headers,
  codec: Codec,
  desc: DescMessage,
  compression: Compression | undefined,
  compressMinBytes: number,
  deadline: Deadline,
): AsyncGenerator<Uint8Array> {
  let error: ConnectError | undefined;
  let done = false;
  try {
    let result = first;
    while (result.done !== true) {
      yield await connectEncodeMessage(
        codec.encode(desc, result.value),
        compression,
        compressMinBytes,
      );
      result = await Promise.race([iterator.next(), deadline.aborted()]);
    }
    done = true;
  } catch (e) {
    error = ConnectError.from(e);
  } finally {
    deadline.cleanup();
    if (!done) {
      // Stops an implementation still running; it has its aborted signal too.
      iterator.return?.().catch(() => {});
    }
  }
  yield envelopeEncode(
    envelopeFlagEndStream,
    connectEndStreamToJson(error, trailer),
  );
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
