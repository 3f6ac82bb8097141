import type { DescMessage, Message } from "@bufbuild/protobuf";
import {
  clientStreamCaller,
  clientUnaryCaller,
  type StreamCaller,
  type UnaryCaller,
} from "./call.ts";
import {
  clientSend,
  type ClientConfig,
  type ClientTimeoutHeader,
} from "./config.ts";
import { Code, codeFromHttpStatus } from "../core/code.ts";
import type { Codec } from "../core/codec.ts";
import { compressionFind, type Compression } from "../core/compression.ts";
import {
  envelopeDecompress,
  envelopeEncodeMessage,
  envelopeFlagCompressed,
  envelopeFlagTrailers,
  envelopeRead,
} from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import type { HttpResponse } from "./http-client.ts";
import type { StreamRequest, UnaryRequest } from "../core/interceptors.ts";
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
  // 99999999H: 8 digits of the largest unit.
  maxMs: 99_999_999 * 3_600_000,
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
 * A unary call over gRPC or gRPC-Web: one envelope each way. A second
 * response message fails the call at once; otherwise the status decides,
 * then the response must have held its message.
 */
export function grpcUnaryCaller(
  protocol: GrpcClientProtocol,
  config: ClientConfig,
): UnaryCaller {
  const { codec, compressMinBytes } = config;
  const acceptEncoding = grpcAcceptEncoding(config.compressions);
  return clientUnaryCaller(
    config,
    grpcClientTimeoutHeader,
    async (request, sendCompression) => {
      const method = request.method;
      const body = await envelopeEncodeMessage(
        codec.encode(method.input, request.message),
        sendCompression,
        compressMinBytes,
      );
      const result = await grpcExchange(
        protocol,
        config,
        acceptEncoding,
        request,
        sendCompression,
        body,
      );
      let message: Message | undefined;
      for await (const m of result.message) {
        // At the second message, not at the end of a stream a server may
        // never end: leaving the loop cancels the response (connect-go
        // and grpc-go fail here too, status unread).
        if (message !== undefined) {
          throw new ConnectError(
            "protocol error: more than one response message for a unary method",
            Code.Unimplemented,
          );
        }
        message = m;
      }
      if (message === undefined) {
        throw new ConnectError(
          "protocol error: no response message for a unary method",
          Code.Unimplemented,
        );
      }
      return {
        stream: false,
        method,
        header: result.header,
        trailer: result.trailer,
        message,
      };
    },
  );
}

/** A streaming call of any kind over gRPC or gRPC-Web. */
export function grpcStreamCaller(
  protocol: GrpcClientProtocol,
  config: ClientConfig,
): StreamCaller {
  const acceptEncoding = grpcAcceptEncoding(config.compressions);
  return clientStreamCaller(
    config,
    grpcClientTimeoutHeader,
    async (request, sendCompression, body) => ({
      stream: true,
      method: request.method,
      ...(await grpcExchange(
        protocol,
        config,
        acceptEncoding,
        request,
        sendCompression,
        body,
      )),
    }),
  );
}

// No spaces: grpc-js splits this header on "," alone.
function grpcAcceptEncoding(compressions: readonly Compression[]): string {
  return compressions.map((c) => c.name).join(",");
}

/** Sends a call's request and checks its response headers; its messages are still to be read. */
async function grpcExchange(
  protocol: GrpcClientProtocol,
  config: ClientConfig,
  acceptEncoding: string,
  request: UnaryRequest | StreamRequest,
  sendCompression: Compression | undefined,
  body: Uint8Array | AsyncIterable<Uint8Array>,
) {
  const header = new Headers(request.header);
  header.set(
    "content-type",
    config.codec.binary ? protocol.contentTypeProto : protocol.contentTypeJson,
  );
  for (const key in protocol.requestHeader) {
    header.set(key, protocol.requestHeader[key]!);
  }
  if (acceptEncoding !== "") {
    header.set(grpcHeaderAcceptEncoding, acceptEncoding);
  }
  if (sendCompression !== undefined) {
    header.set(grpcHeaderEncoding, sendCompression.name);
  }
  const response = await clientSend(config.httpClient, {
    url: request.url,
    method: "POST",
    header,
    body,
    signal: request.signal,
  });
  return grpcReadResponse(protocol, config, request.method.output, response);
}

/**
 * Checks a response's headers and returns its messages, which end with the
 * call's status: an error status throws once the messages before it are read.
 * Throws at once for a response that is no gRPC response at all.
 */
function grpcReadResponse(
  protocol: GrpcClientProtocol,
  config: ClientConfig,
  desc: DescMessage,
  response: HttpResponse,
): {
  header: Headers;
  trailer: Headers;
  message: AsyncGenerator<Message>;
} {
  const header = response.header;
  if (response.status !== 200) {
    // A proxy's answer, or a server that is not gRPC: the HTTP status is all there is.
    grpcDiscard(response.body);
    throw new ConnectError(
      `HTTP status ${response.status}`,
      codeFromHttpStatus(response.status),
      { metadata: header },
    );
  }
  const trailer = new Headers();
  // A status in the headers announces a trailers-only response, which need
  // not say what a body would be like; whether it is one, only the end of
  // the body tells (grpcReadMessages).
  const statusInHeader = header.has(grpcHeaderStatus);
  let compression: Compression | null | undefined = statusInHeader
    ? (compressionFind(config.compressions, header.get(grpcHeaderEncoding)) ??
      null)
    : null;
  if (!statusInHeader) {
    const contentTypeValue = header.get("content-type");
    const contentType = protocol.parseContentType(contentTypeValue);
    if (
      contentType === undefined ||
      contentType.binary !== config.codec.binary
    ) {
      grpcDiscard(response.body);
      throw new ConnectError(
        `unexpected response content type "${contentTypeValue}"`,
        contentTypeValue !== null &&
          protocol.contentTypeFamily.test(contentTypeValue)
          ? Code.Internal
          : Code.Unknown,
        { metadata: header },
      );
    }
    const encoding = header.get(grpcHeaderEncoding);
    compression = compressionFind(config.compressions, encoding);
    if (compression === undefined) {
      grpcDiscard(response.body);
      throw new ConnectError(
        `response uses unsupported compression "${encoding}"`,
        Code.Internal,
        { metadata: header },
      );
    }
  }
  return {
    header,
    trailer,
    message: grpcReadMessages(
      protocol,
      response,
      trailer,
      compression,
      config.codec,
      desc,
      config.readMaxBytes,
    ),
  };
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
    if ((envelope.flags & ~envelopeFlagCompressed) !== 0) {
      throw new ConnectError(
        `protocol error: unexpected envelope flags ${envelope.flags}`,
        Code.Internal,
      );
    }
    yield codec.decode(desc, data);
  }
  if (decodeTrailers === undefined) {
    // HTTP trailers are complete now that the body has ended.
    response.trailer.forEach((value, key) => trailer.append(key, value));
  }
  // Trailers, where there are any, carry the status, whatever the headers
  // say; without them, a status in the headers made this a trailers-only
  // response, which must have had no body.
  const trailersOnly =
    !trailer.has(grpcHeaderStatus) && response.header.has(grpcHeaderStatus);
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
