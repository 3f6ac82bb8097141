import type { Message } from "@bufbuild/protobuf";
import { Code } from "../core/code.ts";
import {
  compressionFind,
  compressionNegotiate,
  compressionUnknown,
} from "../core/compression.ts";
import { deadlineForRequest } from "../core/deadline.ts";
import {
  envelopeCompress,
  envelopeEncode,
  envelopeFlagTrailers,
  type Envelope,
} from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import {
  handlerSingleRequest,
  type HandlerContext,
  type MethodHandler,
  type ServerRequest,
  type ServerResponse,
  type StreamMethodHandler,
} from "./handler.ts";
import {
  grpcContentTypeDefault,
  grpcContentTypeJson,
  grpcContentTypeProto,
  grpcHeaderAcceptEncoding,
  grpcHeaderEncoding,
  grpcHeaderTimeout,
  grpcParseContentType,
  grpcParseTimeout,
  grpcStatusToTrailers,
} from "../protocol/grpc.ts";
import {
  serverCodec,
  serverUnsupportedMediaType,
  type ServerConfig,
} from "./config.ts";
import type { ServerProtocol } from "./protocol.ts";
import { serverRunUnary, type UnaryResult } from "./unary.ts";
import {
  serverReadRequests,
  serverStartStream,
  serverWriteStream,
} from "./stream.ts";

/**
 * What sets gRPC and gRPC-Web apart on the server: their content types, and
 * where the status goes. Everything else (envelopes, headers, timeouts,
 * status encoding) they share.
 */
export interface GrpcVariant {
  readonly name: Exclude<HandlerContext["protocol"], "connect">;
  /** The Content-Types it serves: `contentType`, with or without a codec. */
  readonly accepts: RegExp;
  readonly contentType: string;
  readonly parseContentType: (
    value: string | null,
  ) => { binary: boolean } | undefined;
  readonly contentTypeProto: string;
  readonly contentTypeJson: string;
  /**
   * gRPC-Web writes the status and trailers as the last envelope of the
   * body, which any HTTP version can carry; without this, they are HTTP
   * trailers, which need HTTP/2 (gRPC).
   */
  readonly encodeTrailers?: (trailer: Headers) => Uint8Array;
}

const grpcVariant: GrpcVariant = {
  name: "grpc",
  // application/grpc[+codec], not application/grpc-web.
  accepts: /^application\/grpc(?![-\w])/i,
  contentType: grpcContentTypeDefault,
  parseContentType: grpcParseContentType,
  contentTypeProto: grpcContentTypeProto,
  contentTypeJson: grpcContentTypeJson,
};

/**
 * The gRPC protocol of a service. `stream` is grpcServeStream in files with
 * streaming methods.
 */
export function grpcServer(stream?: GrpcStreamServer): ServerProtocol {
  return grpcServerOf(grpcVariant, stream);
}

/** gRPC or gRPC-Web as a ServerProtocol. */
export function grpcServerOf(
  variant: GrpcVariant,
  stream: GrpcStreamServer | undefined,
): ServerProtocol {
  return {
    name: variant.name,
    accepts: (contentType) => variant.accepts.test(contentType ?? ""),
    contentTypes: variant.contentType,
    unary: (handler, request, config) =>
      grpcServe(variant, handler, request, config, undefined),
    stream:
      stream === undefined
        ? undefined
        : (handler, request, config) =>
            grpcServe(variant, handler, request, config, stream),
    // gRPC answers an unknown method with its own status, not a 404.
    unimplemented: (request, config) =>
      grpcServe(variant, undefined, request, config, undefined),
  };
}

/**
 * Serves one gRPC or gRPC-Web call of any kind. Every call is answered with
 * HTTP 200 and its status after the messages; a gRPC call that fails before
 * its first message gets a trailers-only response, the status in its headers.
 */
export async function grpcServe(
  protocol: GrpcVariant,
  handler: MethodHandler | undefined,
  request: ServerRequest,
  config: ServerConfig,
  stream: GrpcStreamServer | undefined,
): Promise<ServerResponse> {
  if (request.method !== "POST") {
    return { status: 405, header: new Headers({ allow: "POST" }) };
  }
  const contentType = protocol.parseContentType(request.header("content-type"));
  const codec = serverCodec(config, contentType);
  if (contentType === undefined || codec === undefined) {
    return serverUnsupportedMediaType(
      config,
      protocol.contentTypeProto,
      `${protocol.contentTypeProto}, ${protocol.contentTypeJson}`,
    );
  }
  const header = new Headers({
    "content-type": contentType.binary
      ? protocol.contentTypeProto
      : protocol.contentTypeJson,
    [grpcHeaderAcceptEncoding]: config.compressionNames,
  });
  // An error before any message: the whole response is its status.
  const fail = (
    error: ConnectError,
    responseHeader?: Headers,
    trailer = new Headers(),
  ) => grpcFailEarly(protocol, header, responseHeader, error, trailer);
  if (handler === undefined) {
    return fail(
      new ConnectError(`no such method: ${request.path}`, Code.Unimplemented),
    );
  }
  if (protocol.encodeTrailers === undefined && request.httpVersion !== "2") {
    return fail(
      new ConnectError(
        `gRPC requires HTTP/2 with trailers (got ${request.httpVersion === "" ? "a fetch handler" : `HTTP/${request.httpVersion}`}); gRPC-Web works over any HTTP version`,
        Code.Unimplemented,
      ),
    );
  }
  const encoding = request.header(grpcHeaderEncoding);
  const requestCompression = compressionFind(config.compressions, encoding);
  const timeoutMs = grpcParseTimeout(request.header(grpcHeaderTimeout));
  if (timeoutMs instanceof ConnectError) {
    return fail(timeoutMs);
  }
  if (requestCompression === undefined) {
    return fail(compressionUnknown(encoding, config.compressions));
  }
  // As grpc-go does: answer in the request's compression when it has one.
  const responseCompression =
    requestCompression ??
    compressionNegotiate(
      config.compressions,
      request.header(grpcHeaderAcceptEncoding),
    );
  if (responseCompression !== undefined) {
    header.set(grpcHeaderEncoding, responseCompression.name);
  }
  const requests = serverReadRequests(
    request,
    requestCompression,
    codec,
    handler.method.input,
    config,
  );
  const encode = (message: Message) =>
    envelopeCompress(
      codec.encode(handler.method.output, message),
      responseCompression,
      config.compressMinBytes,
    );

  if ("unary" in handler) {
    // A unary method runs as unary, so interceptors see it as they do over Connect.
    let output: UnaryResult | undefined;
    try {
      // As for Connect, reading the request ends when the client goes away.
      const input = await handlerSingleRequest(requests);
      output = await serverRunUnary(
        handler,
        request,
        config,
        protocol.name,
        input,
        timeoutMs,
      );
      if (!output.ok) throw output.error;
      const envelope = await encode(output.message);
      const message = envelopeEncode(envelope.flags, envelope.data);
      const trailer = grpcStatusToTrailers(
        undefined,
        new Headers(output.trailer),
      );
      return {
        status: 200,
        header:
          output.header === undefined
            ? header
            : withHeaders(header, output.header),
        ...(protocol.encodeTrailers === undefined
          ? { trailer, body: message }
          : {
              body: grpcConcat(
                message,
                grpcWebTrailerEnvelope(protocol.encodeTrailers, trailer),
              ),
            }),
      };
    } catch (e) {
      return fail(ConnectError.from(e), output?.header, output?.trailer);
    }
  }

  // Only files with streaming methods have the streaming part.
  return stream === undefined
    ? fail(new ConnectError("streaming is not served", Code.Internal))
    : stream(protocol, handler, request, config, {
        header,
        timeoutMs,
        requests,
        encode,
        fail,
      });
}

/** A gRPC or gRPC-Web call as far as grpcServe takes it before the implementation runs. */
export interface GrpcCall {
  readonly header: Headers;
  readonly timeoutMs: number | undefined;
  readonly requests: AsyncIterable<Message>;
  /** A message's payload and flags; the caller frames it. */
  readonly encode: (message: Message) => Envelope | Promise<Envelope>;
  readonly fail: (
    error: ConnectError,
    header: Headers,
    trailer: Headers,
  ) => ServerResponse;
}

/** The signature of grpcServeStream, named so that referring to it does not pull in its code. */
export type GrpcStreamServer = (
  protocol: GrpcVariant,
  handler: StreamMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
  call: GrpcCall,
) => Promise<ServerResponse>;

/** Runs a streaming call of any kind and streams its response, the status last. */
export async function grpcServeStream(
  protocol: GrpcVariant,
  handler: StreamMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
  call: GrpcCall,
): Promise<ServerResponse> {
  const deadline = deadlineForRequest(call.timeoutMs, request.signal);
  const start = await serverStartStream(
    handler,
    request,
    config,
    protocol.name,
    deadline,
    call.requests,
  );
  if (!start.ok) {
    return call.fail(start.error, start.header, start.trailer);
  }
  const encodeTrailers = protocol.encodeTrailers;
  const trailer = new Headers();
  return {
    status: 200,
    header: withHeaders(call.header, start.header),
    ...(encodeTrailers === undefined ? { trailer } : {}),
    body: serverWriteStream(start, deadline, call.encode, (error) => {
      grpcStatusToTrailers(error, withHeaders(trailer, start.trailer));
      return encodeTrailers === undefined
        ? undefined
        : grpcWebTrailerEnvelope(encodeTrailers, trailer);
    }),
  };
}

/**
 * The response of a call that failed before its first message. gRPC sends a
 * trailers-only response, the status in its headers and no body, unless the
 * implementation set response headers: those go out as headers of their own,
 * followed by the status as trailers, because clients such as grpc-go report
 * no response headers for a trailers-only response. gRPC-Web sends the status
 * as the body's only envelope, which every gRPC-Web client reads (some do not
 * look for it in headers).
 */
function grpcFailEarly(
  protocol: GrpcVariant,
  header: Headers,
  responseHeader: Headers | undefined,
  error: ConnectError,
  trailer: Headers,
): ServerResponse {
  const hasResponseHeader =
    responseHeader !== undefined && !grpcHeadersEmpty(responseHeader);
  if (hasResponseHeader) withHeaders(header, responseHeader);
  if (protocol.encodeTrailers === undefined) {
    if (hasResponseHeader) {
      return {
        status: 200,
        header,
        trailer: grpcStatusToTrailers(error, new Headers(trailer)),
      };
    }
    grpcStatusToTrailers(error, withHeaders(header, trailer));
    return { status: 200, header };
  }
  return {
    status: 200,
    header,
    body: grpcWebTrailerEnvelope(
      protocol.encodeTrailers,
      grpcStatusToTrailers(error, new Headers(trailer)),
    ),
  };
}

function grpcHeadersEmpty(header: Headers): boolean {
  for (const _ of header.keys()) return false;
  return true;
}

function grpcWebTrailerEnvelope(
  encodeTrailers: (trailer: Headers) => Uint8Array,
  trailer: Headers,
): Uint8Array {
  return envelopeEncode(envelopeFlagTrailers, encodeTrailers(trailer));
}

function grpcConcat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const joined = new Uint8Array(a.byteLength + b.byteLength);
  joined.set(a, 0);
  joined.set(b, a.byteLength);
  return joined;
}

function withHeaders(into: Headers, from: Headers): Headers {
  from.forEach((value, key) => into.append(key, value));
  return into;
}
