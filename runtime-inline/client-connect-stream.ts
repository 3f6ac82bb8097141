import {
  create,
  isMessage,
  type DescMessage,
  type Message,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { readBody } from "./body.ts";
import {
  clientCallStart,
  clientSend,
  type CallOptions,
  type ClientConfig,
} from "./client-connect.ts";
import { Code } from "./code.ts";
import type { Codec } from "./codec.ts";
import { compressionFind, type Compression } from "./compression.ts";
import type { Deadline } from "./deadline.ts";
import {
  envelopeDecompress,
  envelopeEncodeMessage,
  envelopeFlagEndStream,
  envelopeRead,
} from "./envelope.ts";
import { ConnectError } from "./errors.ts";
import {
  applyInterceptors,
  type StreamNext,
  type StreamResponse,
} from "./interceptors.ts";
import type { MethodInfo } from "./method.ts";
import {
  connectErrorFromJson,
  connectHeaderProtocolVersion,
} from "./protocol-connect.ts";
import {
  connectEndStreamFromJson,
  connectHeaderAcceptEncoding,
  connectHeaderContentEncoding,
  connectParseStreamContentType,
  connectStreamContentTypeJson,
  connectStreamContentTypeProto,
} from "./protocol-connect-stream.ts";

/** Request messages of a streaming call: any iterable, sync or async, of messages or their fields. */
export type StreamInput =
  | AsyncIterable<MessageInitShape<DescMessage>>
  | Iterable<MessageInitShape<DescMessage>>;

/** Makes one streaming call of any kind; generated clients wrap it in typed methods. */
export type StreamCaller = (
  method: MethodInfo,
  input: StreamInput,
  options: CallOptions | undefined,
) => Promise<StreamResponse>;

/**
 * The streaming caller of the Connect protocol. The response's messages
 * end with the end-of-stream message; leaving them early cancels the call.
 */
export function createConnectStreamCaller(config: ClientConfig): StreamCaller {
  const { options, httpClient, compressions, acceptEncoding, codec } = config;
  const { readMaxBytes, compressMinBytes } = config;
  return async (method, input, callOptions = {}) => {
    const { header, sendCompression, deadline } = clientCallStart(
      config,
      callOptions,
    );
    // Closed once the call is over: a server may answer before reading every
    // request, and the rest is not sent (nor produced).
    let requestBody: AsyncGenerator<Uint8Array> | undefined;
    const closeRequests = () => {
      requestBody?.return(undefined).catch(() => {});
    };
    const next: StreamNext = async (request) => {
      const httpHeader = new Headers(request.header);
      httpHeader.set(
        "content-type",
        codec.binary
          ? connectStreamContentTypeProto
          : connectStreamContentTypeJson,
      );
      httpHeader.set(connectHeaderProtocolVersion, "1");
      if (acceptEncoding !== "") {
        httpHeader.set(connectHeaderAcceptEncoding, acceptEncoding);
      }
      if (sendCompression !== undefined) {
        httpHeader.set(connectHeaderContentEncoding, sendCompression.name);
      }
      requestBody = connectEncodeRequests(
        request.message,
        codec,
        method.input,
        sendCompression,
        compressMinBytes,
      );
      const response = await clientSend(httpClient, {
        url: request.url,
        method: "POST",
        header: httpHeader,
        body: requestBody,
        signal: request.signal,
      });
      if (response.status !== 200) {
        const body = await readBody(response.body, readMaxBytes);
        throw connectErrorFromJson(body, response.status, response.header);
      }
      const contentType = connectParseStreamContentType(
        response.header.get("content-type"),
      );
      if (contentType === undefined || contentType.binary !== codec.binary) {
        throw new ConnectError(
          `unexpected response content type "${response.header.get("content-type")}"`,
          Code.Internal,
        );
      }
      const encoding = response.header.get(connectHeaderContentEncoding);
      const compression = compressionFind(compressions, encoding);
      if (compression === undefined) {
        throw new ConnectError(
          `response uses unsupported compression "${encoding}"`,
          Code.Internal,
        );
      }
      const trailer = new Headers();
      return {
        stream: true,
        method,
        header: response.header,
        trailer,
        message: connectReadResponses(
          response.body,
          response.header,
          trailer,
          compression,
          codec,
          method.output,
          readMaxBytes,
        ),
      };
    };
    let response: StreamResponse;
    try {
      response = await applyInterceptors(
        next,
        options.interceptors,
      )({
        stream: true,
        method,
        url: config.baseUrl + method.path,
        header,
        signal: deadline.signal,
        message: clientCreateMessages(method.input, input),
      });
    } catch (e) {
      closeRequests();
      deadline.cleanup();
      throw clientCallError(e, deadline);
    }
    callOptions.onHeader?.(response.header);
    return {
      ...response,
      message: clientFinishStream(
        response,
        deadline,
        callOptions,
        closeRequests,
      ),
    };
  };
}

async function* connectEncodeRequests(
  messages: AsyncIterable<Message>,
  codec: Codec,
  desc: DescMessage,
  compression: Compression | undefined,
  compressMinBytes: number,
): AsyncGenerator<Uint8Array> {
  for await (const message of messages) {
    yield await envelopeEncodeMessage(
      codec.encode(desc, message),
      compression,
      compressMinBytes,
    );
  }
}

async function* connectReadResponses(
  body: AsyncIterable<Uint8Array>,
  header: Headers,
  trailer: Headers,
  compression: Compression | null,
  codec: Codec,
  desc: DescMessage,
  readMaxBytes: number,
): AsyncGenerator<Message> {
  let ended = false;
  for await (const envelope of envelopeRead(
    body,
    readMaxBytes,
    Code.InvalidArgument,
  )) {
    if (ended) {
      throw new ConnectError(
        "protocol error: data after the end-of-stream message",
        Code.Internal,
      );
    }
    const data = await envelopeDecompress(
      envelope,
      compression,
      readMaxBytes,
      Code.Internal,
    );
    if ((envelope.flags & envelopeFlagEndStream) === 0) {
      yield codec.decode(desc, data);
      continue;
    }
    ended = true;
    const end = connectEndStreamFromJson(data);
    end.trailer.forEach((value, key) => trailer.append(key, value));
    if (end.error !== undefined) {
      header.forEach((value, key) => end.error!.metadata.append(key, value));
      throw end.error;
    }
  }
  if (!ended) {
    throw new ConnectError(
      "protocol error: missing end-of-stream message",
      Code.Internal,
    );
  }
}

/**
 * The messages as the caller reads them: errors become ConnectErrors (the
 * deadline's or the cancellation's when the signal fired), trailers are
 * reported at the end, leaving early cancels the call, and either way the
 * request messages are closed.
 */
async function* clientFinishStream(
  response: StreamResponse,
  deadline: Deadline,
  callOptions: CallOptions,
  closeRequests: () => void,
): AsyncGenerator<Message> {
  let complete = false;
  try {
    yield* response.message;
    complete = true;
  } catch (e) {
    throw clientCallError(e, deadline);
  } finally {
    if (!complete) deadline.cancel();
    deadline.cleanup();
    closeRequests();
  }
  callOptions.onTrailer?.(response.trailer);
}

function clientCallError(error: unknown, deadline: Deadline): ConnectError {
  return deadline.signal.aborted
    ? ConnectError.from(deadline.signal.reason, Code.Canceled)
    : ConnectError.from(error);
}

async function* clientCreateMessages(
  desc: DescMessage,
  input: StreamInput,
): AsyncGenerator<Message> {
  for await (const value of input) {
    yield isMessage(value, desc) ? value : create(desc, value);
  }
}
