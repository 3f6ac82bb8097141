import type { Message } from "@bufbuild/protobuf";
import { Code } from "./code.ts";
import { compressionFind, compressionNegotiate } from "./compression.ts";
import { deadlineStart } from "./deadline.ts";
import { envelopeEncodeMessage } from "./envelope.ts";
import { ConnectError } from "./errors.ts";
import {
  handlerSingleRequest,
  handlerUnsupportedMediaType,
  type MethodHandler,
  type ServerRequest,
  type ServerResponse,
} from "./handler.ts";
import { connectUnknownCompression } from "./protocol-connect.ts";
import {
  grpcContentTypeJson,
  grpcContentTypeProto,
  grpcHeaderAcceptEncoding,
  grpcHeaderEncoding,
  grpcHeaderTimeout,
  grpcParseContentType,
  grpcParseTimeout,
  grpcStatusToTrailers,
} from "./protocol-grpc.ts";
import { serverRunUnary, type ServerConfig } from "./server-connect.ts";
import {
  serverReadRequests,
  serverStartStream,
  serverWriteStream,
} from "./server-stream.ts";

/**
 * Serves one gRPC call of any kind. Every call is answered with HTTP 200 and
 * its status in trailers, or, when it fails before its first message, in
 * the headers of a trailers-only response.
 */
export async function grpcHandle(
  handler: MethodHandler | undefined,
  request: ServerRequest,
  config: ServerConfig,
): Promise<ServerResponse> {
  if (request.method !== "POST") {
    return { status: 405, header: new Headers({ allow: "POST" }) };
  }
  const contentType = grpcParseContentType(request.header.get("content-type"));
  if (contentType === undefined) {
    return handlerUnsupportedMediaType(
      `${grpcContentTypeProto}, ${grpcContentTypeJson}`,
    );
  }
  const codec = contentType.binary ? config.binaryCodec : config.jsonCodec;
  const header = new Headers({
    "content-type": contentType.binary
      ? grpcContentTypeProto
      : grpcContentTypeJson,
    // No spaces: grpc-js splits this header on "," alone.
    [grpcHeaderAcceptEncoding]: config.compressions
      .map((c) => c.name)
      .join(","),
  });
  if (handler === undefined) {
    return grpcTrailersOnly(
      header,
      new ConnectError(`no such method: ${request.path}`, Code.Unimplemented),
      new Headers(),
    );
  }
  if (request.httpVersion !== "2") {
    // gRPC needs HTTP trailers: HTTP/2, through a server that can send them.
    return grpcTrailersOnly(
      header,
      new ConnectError(
        `gRPC requires HTTP/2 with trailers (got ${request.httpVersion === "" ? "a fetch handler" : `HTTP/${request.httpVersion}`})`,
        Code.Unimplemented,
      ),
      new Headers(),
    );
  }
  const encoding = request.header.get(grpcHeaderEncoding);
  const requestCompression = compressionFind(config.compressions, encoding);
  const timeoutMs = grpcParseTimeout(request.header.get(grpcHeaderTimeout));
  if (timeoutMs instanceof ConnectError || requestCompression === undefined) {
    const refused =
      timeoutMs instanceof ConnectError
        ? timeoutMs
        : connectUnknownCompression(encoding, config.compressions);
    return grpcTrailersOnly(header, refused, new Headers());
  }
  // As grpc-go does: answer in the request's compression when it has one.
  const responseCompression =
    requestCompression ??
    compressionNegotiate(
      config.compressions,
      request.header.get(grpcHeaderAcceptEncoding),
    );
  const requests = serverReadRequests(
    request.body,
    requestCompression,
    codec,
    handler.method.input,
    config.readMaxBytes,
  );
  const encode = (message: Message) =>
    envelopeEncodeMessage(
      codec.encode(handler.method.output, message),
      responseCompression,
      config.compressMinBytes,
    );
  if (responseCompression !== undefined) {
    header.set(grpcHeaderEncoding, responseCompression.name);
  }

  if ("unary" in handler) {
    return grpcHandleUnary(
      handler,
      request,
      config,
      requests,
      timeoutMs,
      header,
      encode,
    );
  }
  const deadline = deadlineStart(timeoutMs, request.signal);
  const start = await serverStartStream(
    handler,
    request,
    config,
    "grpc",
    deadline,
    requests,
  );
  if (!start.ok) {
    return grpcTrailersOnly(
      withHeaders(header, start.header),
      start.error,
      start.trailer,
    );
  }
  const trailer = new Headers();
  return {
    status: 200,
    header: withHeaders(header, start.header),
    trailer,
    body: serverWriteStream(start, deadline, encode, (error) => {
      grpcStatusToTrailers(error, withHeaders(trailer, start.trailer));
      return undefined;
    }),
  };
}

/** A unary method runs as unary, so interceptors see it as they do over Connect. */
async function grpcHandleUnary(
  handler: Extract<MethodHandler, { unary: unknown }>,
  request: ServerRequest,
  config: ServerConfig,
  requests: AsyncIterable<Message>,
  timeoutMs: number | undefined,
  header: Headers,
  encode: (message: Message) => Promise<Uint8Array>,
): Promise<ServerResponse> {
  const responseHeaders = new Headers();
  const responseTrailers = new Headers();
  try {
    // As for Connect, reading the request ends when the client goes away.
    const input = await handlerSingleRequest(requests);
    const output = await serverRunUnary(
      handler,
      request,
      config,
      "grpc",
      input,
      timeoutMs,
      responseHeaders,
      responseTrailers,
    );
    const trailer = grpcStatusToTrailers(
      undefined,
      new Headers(output.trailer),
    );
    return {
      status: 200,
      header: withHeaders(header, output.header),
      trailer,
      body: await encode(output.message),
    };
  } catch (e) {
    return grpcTrailersOnly(
      withHeaders(header, responseHeaders),
      ConnectError.from(e),
      responseTrailers,
    );
  }
}

/** An error before any message: the status travels in the headers, and there is no body. */
function grpcTrailersOnly(
  header: Headers,
  error: ConnectError,
  trailer: Headers,
): ServerResponse {
  grpcStatusToTrailers(error, withHeaders(header, trailer));
  return { status: 200, header };
}

function withHeaders(into: Headers, from: Headers): Headers {
  from.forEach((value, key) => into.append(key, value));
  return into;
}
