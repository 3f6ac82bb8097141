import type { DescMessage, Message } from "@bufbuild/protobuf";
import { clientStreamCaller, clientUnaryCaller } from "./call.ts";
import {
  clientSend,
  type ClientConfig,
  type ClientTimeoutHeader,
  type ClientUnaryCall,
  type StreamCaller,
  type UnaryCaller,
} from "./config.ts";
import { Code, codeFromHttpStatus } from "../core/code.ts";
import type { Codec } from "../core/codec.ts";
import { compressionFind, type Compression } from "../core/compression.ts";
import {
  envelopeAt,
  envelopeDecompress,
  envelopeEncodeMessage,
  envelopeFlagCompressed,
  envelopeFlagTrailers,
  envelopeRead,
  envelopeWatch,
} from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import {
  httpHeaderGet,
  httpReadBody,
  httpTrailerGet,
  type HttpFields,
  type HttpResponse,
} from "./http-client.ts";
import type { UnaryResponse } from "../core/interceptors.ts";
import type { MethodInfo } from "../core/method.ts";
import {
  grpcContentTypeJson,
  grpcContentTypeProto,
  grpcFormatTimeout,
  grpcHeaderAcceptEncoding,
  grpcHeaderEncoding,
  grpcHeaderStatus,
  grpcHeaderTimeout,
  grpcParseContentType,
  grpcStatusFromTrailers,
} from "../protocol/grpc.ts";

/**
 * What sets gRPC and gRPC-Web clients apart: content types, the headers
 * each requires, and where the status arrives.
 */
export interface GrpcClientProtocol {
  readonly contentTypeProto: string;
  readonly contentTypeJson: string;
  readonly parseContentType: (
    value: string | null,
  ) => { binary: boolean } | undefined;
  /**
   * Matches the protocol's content types, whatever the codec: a response
   * with another is no response of this protocol at all (Unknown, as gRPC
   * and connect-go have it), one with an unexpected codec is Internal.
   */
  readonly contentTypeFamily: RegExp;
  readonly requestHeader: Readonly<Record<string, string>>;
  /**
   * gRPC-Web reads the status and trailers from the body's last envelope;
   * without this, they are the HTTP trailers (gRPC).
   */
  readonly decodeTrailers?: (data: Uint8Array) => Headers;
}

const grpcClientProtocol: GrpcClientProtocol = {
  contentTypeProto: grpcContentTypeProto,
  contentTypeJson: grpcContentTypeJson,
  parseContentType: grpcParseContentType,
  contentTypeFamily: /^application\/grpc(?:$|[+;])/i,
  // Required by the spec; proxies use it to tell that trailers are wanted.
  requestHeader: { te: "trailers" },
};

export const grpcClientTimeoutHeader: ClientTimeoutHeader = {
  name: grpcHeaderTimeout,
  format: grpcFormatTimeout,
  // 99999999H (8 digits of the largest unit) in milliseconds, written out:
  // bundlers keep an unused object whose initializer multiplies.
  maxMs: 359_999_996_400_000,
};

/** The unary caller of the gRPC protocol (HTTP/2 only). */
export function createGrpcUnaryCaller(config: ClientConfig): UnaryCaller {
  return grpcUnaryCaller(grpcClientProtocol, config);
}

/** The streaming caller of the gRPC protocol (HTTP/2 only), for every kind. */
export function createGrpcStreamCaller(config: ClientConfig): StreamCaller {
  return grpcStreamCaller(grpcClientProtocol, config);
}

/**
 * A unary call over gRPC or gRPC-Web: one envelope each way. The response
 * body is collected whole and its envelopes parsed from the one buffer,
 * with no async generator of envelopes or of messages per call; yet each
 * envelope is judged as its header arrives, so that a second message fails
 * the call at once rather than when a server that streams ends (connect-go
 * and grpc-go fail there too, status unread). Otherwise the status decides,
 * then the response must have held its message.
 */
export function grpcUnaryCaller(
  protocol: GrpcClientProtocol,
  config: ClientConfig,
): UnaryCaller {
  const { codec, compressMinBytes } = config;
  const requestHeaders = grpcRequestHeaders(protocol, config);
  // What grpcUnaryWatch lets through: a message, and for gRPC-Web its
  // trailers, each with its 5-byte header. The watch fails a body before it
  // grows past this; the bound is for a transport that ignores the watch
  // (one of an older generated file, see httpReadWhole).
  const unaryMaxBytes =
    (protocol.decodeTrailers === undefined ? 1 : 2) * (config.readMaxBytes + 5);
  return clientUnaryCaller(
    config,
    grpcClientTimeoutHeader,
    async (call, sendCompression, fields) => {
      const method = call.method;
      const framed = envelopeEncodeMessage(
        codec.encode(method.input, call.message),
        sendCompression,
        compressMinBytes,
      );
      const response = await grpcSend(
        config,
        requestHeaders,
        call,
        fields,
        sendCompression,
        framed instanceof Promise ? await framed : framed,
      );
      const compression = grpcResponseCompression(protocol, config, response);
      const body = await httpReadBody(
        response.body,
        unaryMaxBytes,
        grpcUnaryWatch(protocol, config.readMaxBytes),
      );
      // The envelopes grpcUnaryWatch let through: at most one message, then
      // for gRPC-Web at most one of trailers.
      let message: Message | undefined;
      let webTrailer: Headers | undefined;
      for (let offset = 0; offset < body.byteLength;) {
        // grpc-go's choice for a truncated message; connect-go agrees.
        const envelope = envelopeAt(
          body,
          offset,
          config.readMaxBytes,
          Code.Internal,
        );
        offset += 5 + envelope.data.byteLength;
        const data =
          (envelope.flags & envelopeFlagCompressed) === 0
            ? envelope.data
            : await envelopeDecompress(
                envelope,
                compression,
                config.readMaxBytes,
                Code.Internal,
              );
        if (
          protocol.decodeTrailers !== undefined &&
          (envelope.flags & envelopeFlagTrailers) !== 0
        ) {
          webTrailer = protocol.decodeTrailers(data);
        } else {
          message = codec.decode(method.output, data);
        }
      }
      return grpcUnaryEnd(
        protocol,
        method,
        response,
        webTrailer,
        message,
        body.byteLength === 0,
      );
    },
  );
}

/**
 * A unary response once its body is read: the call's status, which wins
 * over a missing message, then the message. Its headers and (gRPC's HTTP)
 * trailers stay the transport's until read (GrpcUnaryResponse).
 */
function grpcUnaryEnd(
  protocol: GrpcClientProtocol,
  method: MethodInfo,
  response: HttpResponse,
  webTrailer: Headers | undefined,
  message: Message | undefined,
  bodyEmpty: boolean,
): UnaryResponse {
  // The common case of gRPC: a message and status 0 in the HTTP trailers,
  // which then decide alone.
  if (
    message !== undefined &&
    protocol.decodeTrailers === undefined &&
    httpTrailerGet(response, grpcHeaderStatus) === "0"
  ) {
    return new GrpcUnaryResponse(method, response, undefined, message);
  }
  const trailer =
    protocol.decodeTrailers === undefined
      ? response.trailer
      : (webTrailer ?? new Headers());
  grpcCheckStatus(response, trailer, bodyEmpty);
  if (message === undefined) {
    throw new ConnectError(
      "protocol error: no response message for a unary method",
      Code.Unimplemented,
    );
  }
  return new GrpcUnaryResponse(method, response, trailer, message);
}

/**
 * A successful unary response whose headers, and trailers unless gRPC-Web
 * decoded its own, are the HTTP response's, read only when asked for: the
 * transport makes them only then (see Http2Response). Interceptors get a
 * plain copy (clientUnaryPlain).
 */
class GrpcUnaryResponse implements UnaryResponse {
  readonly stream = false;
  readonly method: MethodInfo;
  readonly message: Message;
  #response: HttpResponse;
  #trailer: Headers | undefined;

  constructor(
    method: MethodInfo,
    response: HttpResponse,
    trailer: Headers | undefined,
    message: Message,
  ) {
    this.method = method;
    this.#response = response;
    this.#trailer = trailer;
    this.message = message;
  }

  get header(): Headers {
    return this.#response.header;
  }

  get trailer(): Headers {
    return this.#trailer ?? this.#response.trailer;
  }
}

/**
 * What a unary response's envelopes may be, checked header by header as
 * they arrive: one message, then for gRPC-Web the trailers, nothing after,
 * none declared longer than the limit. So the body is bounded too.
 */
function grpcUnaryWatch(
  protocol: GrpcClientProtocol,
  readMaxBytes: number,
): (chunk: Uint8Array) => void {
  const webTrailers = protocol.decodeTrailers !== undefined;
  let messageSeen = false;
  let trailersSeen = false;
  return envelopeWatch(readMaxBytes, (flags) => {
    if (trailersSeen) {
      throw new ConnectError(
        "protocol error: data after the trailers",
        Code.Internal,
      );
    }
    if (webTrailers && (flags & envelopeFlagTrailers) !== 0) {
      trailersSeen = true;
      return;
    }
    grpcCheckMessageFlags(flags);
    if (messageSeen) {
      throw new ConnectError(
        "protocol error: more than one response message for a unary method",
        Code.Unimplemented,
      );
    }
    messageSeen = true;
  });
}

/** A streaming call of any kind over gRPC or gRPC-Web. */
export function grpcStreamCaller(
  protocol: GrpcClientProtocol,
  config: ClientConfig,
): StreamCaller {
  const requestHeaders = grpcRequestHeaders(protocol, config);
  return clientStreamCaller(
    config,
    grpcClientTimeoutHeader,
    async (request, sendCompression, fields, body) => {
      const response = await grpcSend(
        config,
        requestHeaders,
        request,
        fields,
        sendCompression,
        body,
      );
      const compression = grpcResponseCompression(protocol, config, response);
      const trailer = new Headers();
      return {
        stream: true,
        method: request.method,
        header: response.header,
        trailer,
        message: grpcReadMessages(
          protocol,
          response,
          trailer,
          compression,
          config.codec,
          request.method.output,
          config.readMaxBytes,
        ),
      };
    },
  );
}

/**
 * The headers every request of a client sends, worked out once per client:
 * the content type, the protocol's own, the encodings it accepts.
 */
function grpcRequestHeaders(
  protocol: GrpcClientProtocol,
  config: ClientConfig,
): readonly (readonly [string, string])[] {
  const headers: [string, string][] = [
    [
      "content-type",
      config.codec.binary
        ? protocol.contentTypeProto
        : protocol.contentTypeJson,
    ],
  ];
  for (const key in protocol.requestHeader) {
    headers.push([key, protocol.requestHeader[key]!]);
  }
  // No spaces: grpc-js splits this header on "," alone.
  const acceptEncoding = config.compressions.map((c) => c.name).join(",");
  if (acceptEncoding !== "") {
    headers.push([grpcHeaderAcceptEncoding, acceptEncoding]);
  }
  return headers;
}

/** Sends a call's request; its response is still to be checked. */
function grpcSend(
  config: ClientConfig,
  requestHeaders: readonly (readonly [string, string])[],
  call: Pick<ClientUnaryCall, "url" | "signal">,
  /** The call's headers (see UnarySend), which the protocol's are added to. */
  fields: HttpFields,
  sendCompression: Compression | undefined,
  body: Uint8Array | AsyncIterable<Uint8Array>,
): Promise<HttpResponse> {
  for (const [key, value] of requestHeaders) {
    fields[key] = value;
  }
  if (sendCompression !== undefined) {
    fields[grpcHeaderEncoding] = sendCompression.name;
  }
  return clientSend(config.httpClient, {
    url: call.url,
    method: "POST",
    fields,
    body,
    signal: call.signal,
  });
}

/**
 * Checks a response's headers and returns the compression of its messages
 * (null for none). Throws at once, releasing the body, for a response that
 * is no gRPC response at all, or one in a compression the client lacks.
 */
function grpcResponseCompression(
  protocol: GrpcClientProtocol,
  config: ClientConfig,
  response: HttpResponse,
): Compression | null {
  if (response.status !== 200) {
    // A proxy's answer, or a server that is not gRPC: the HTTP status is all there is.
    grpcDiscard(response.body);
    throw new ConnectError(
      `HTTP status ${response.status}`,
      codeFromHttpStatus(response.status),
      { metadata: response.header },
    );
  }
  const encoding = httpHeaderGet(response, grpcHeaderEncoding);
  // A status in the headers announces a trailers-only response, which need
  // not say what a body would be like; whether it is one, only the end of
  // the body tells (grpcCheckStatus).
  if (httpHeaderGet(response, grpcHeaderStatus) !== null) {
    return compressionFind(config.compressions, encoding) ?? null;
  }
  const contentTypeValue = httpHeaderGet(response, "content-type");
  const contentType = protocol.parseContentType(contentTypeValue);
  if (contentType === undefined || contentType.binary !== config.codec.binary) {
    grpcDiscard(response.body);
    throw new ConnectError(
      `unexpected response content type "${contentTypeValue}"`,
      contentTypeValue !== null &&
        protocol.contentTypeFamily.test(contentTypeValue)
        ? Code.Internal
        : Code.Unknown,
      { metadata: response.header },
    );
  }
  const compression = compressionFind(config.compressions, encoding);
  if (compression === undefined) {
    grpcDiscard(response.body);
    throw new ConnectError(
      `response uses unsupported compression "${encoding}"`,
      Code.Internal,
      { metadata: response.header },
    );
  }
  return compression;
}

/** Only the compressed flag may be set on a message's envelope. */
function grpcCheckMessageFlags(flags: number): void {
  if ((flags & ~envelopeFlagCompressed) !== 0) {
    throw new ConnectError(
      `protocol error: unexpected envelope flags ${flags}`,
      Code.Internal,
    );
  }
}

async function* grpcReadMessages(
  protocol: GrpcClientProtocol,
  response: HttpResponse,
  trailer: Headers,
  compression: Compression | null,
  codec: Codec,
  desc: DescMessage,
  readMaxBytes: number,
): AsyncGenerator<Message> {
  const decodeTrailers = protocol.decodeTrailers;
  let trailersRead = false;
  let bodyEmpty = true;
  for await (const envelope of envelopeRead(
    response.body,
    readMaxBytes,
    // grpc-go's choice for a truncated message; connect-go agrees.
    Code.Internal,
  )) {
    bodyEmpty = false;
    if (trailersRead) {
      throw new ConnectError(
        "protocol error: data after the trailers",
        Code.Internal,
      );
    }
    const data = await envelopeDecompress(
      envelope,
      compression,
      readMaxBytes,
      Code.Internal,
    );
    if (
      decodeTrailers !== undefined &&
      (envelope.flags & envelopeFlagTrailers) !== 0
    ) {
      decodeTrailers(data).forEach((value, key) => trailer.append(key, value));
      trailersRead = true;
      continue;
    }
    grpcCheckMessageFlags(envelope.flags);
    yield codec.decode(desc, data);
  }
  if (decodeTrailers === undefined) {
    // HTTP trailers are complete now that the body has ended.
    response.trailer.forEach((value, key) => trailer.append(key, value));
  }
  grpcCheckStatus(response, trailer, bodyEmpty);
}

/**
 * Throws the call's error status once its body is read. Trailers, where
 * there are any, carry the status, whatever the headers say; without them,
 * a status in the headers made this a trailers-only response, which must
 * have had no body, and whose headers are then the trailers too (appended
 * to `trailer`).
 */
function grpcCheckStatus(
  response: HttpResponse,
  trailer: Headers,
  bodyEmpty: boolean,
): void {
  // The common case: status 0 in the trailers, which then decide alone.
  // One lookup instead of four (Headers' are not cheap).
  if (trailer.get(grpcHeaderStatus) === "0") {
    return;
  }
  const trailersOnly =
    !trailer.has(grpcHeaderStatus) &&
    httpHeaderGet(response, grpcHeaderStatus) !== null;
  if (trailersOnly) {
    if (!bodyEmpty) {
      throw new ConnectError(
        "protocol error: a trailers-only response has a body",
        Code.Internal,
      );
    }
    response.header.forEach((value, key) => trailer.append(key, value));
  }
  // No status at all (trailers missing) is an error of its own: Internal.
  const error = grpcStatusFromTrailers(
    trailer,
    trailersOnly ? undefined : response.header,
  );
  if (error !== undefined) {
    throw error;
  }
}

/**
 * Releases a body that will not be read: the HTTP client frees the stream
 * when its iteration is stopped (an iteration never started has nothing to
 * stop, hence the first read).
 */
function grpcDiscard(body: AsyncIterable<Uint8Array>): void {
  const iterator = body[Symbol.asyncIterator]();
  iterator.next().then(
    () => iterator.return?.(),
    () => {},
  );
}
