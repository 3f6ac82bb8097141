import { create, isMessage, type Message } from "@bufbuild/protobuf";
import { bodyTooLarge, readBody } from "../core/body.ts";
import { Code } from "../core/code.ts";
import type { Codec } from "../core/codec.ts";
import {
  compressionFind,
  compressionNegotiate,
  compressionUnknown,
  type Compression,
} from "../core/compression.ts";
import { deadlineForRequest } from "../core/deadline.ts";
import type { DecompressGate } from "../core/decompress-gate.ts";
import { ConnectError, isConnectError } from "../core/errors.ts";
import {
  handlerUnsupportedMediaType,
  type HandlerContext,
  type HandlerOptions,
  type ServerRequest,
  type ServerResponse,
  type UnaryMethodHandler,
} from "./handler.ts";
import {
  applyInterceptors,
  type Interceptor,
  type UnaryNext,
} from "../core/interceptors.ts";
import {
  connectCodeToHttpStatus,
  connectContentTypeJson,
  connectContentTypeProto,
  connectErrorToJson,
  connectHeaderProtocolVersion,
  connectHeaderTimeout,
  connectParseTimeout,
  connectParseUnaryContentType,
  connectTrailersToHeaders,
} from "../protocol/connect.ts";
import { ServerCallContext, ServerInterceptorRequest } from "./context.ts";
import type { GrpcStreamServer } from "./grpc.ts";

/** HandlerOptions with every default filled in, resolved once per service. */
export interface ServerConfig {
  readonly interceptors: readonly Interceptor[];
  readonly readMaxBytes: number;
  readonly compressions: readonly Compression[];
  /** Their names joined by "," without spaces (grpc-js splits on "," alone), for grpc-accept-encoding. */
  readonly compressionNames: string;
  readonly compressMinBytes: number;
  readonly binaryCodec: Codec;
  /** Undefined in files generated with json=false. */
  readonly jsonCodec: Codec | undefined;
  readonly requireConnectProtocolHeader: boolean;
  /** Present only in files with NO_SIDE_EFFECTS methods, so that others carry no GET code. */
  readonly parseGetQuery: ConnectGetQueryParser | undefined;
  /** Present only in files with streaming methods that serve gRPC or gRPC-Web. */
  readonly grpcStream: GrpcStreamServer | undefined;
  readonly onError: HandlerOptions["onError"];
  /** Shared by all calls of the handler: bounds decompressions in progress. */
  readonly decompressGate: DecompressGate;
  readonly redactErrors: boolean;
}

/**
 * The codec of a request's parsed content type: undefined for no content
 * type the protocol knows, and for JSON in files generated with json=false.
 */
export function serverCodec(
  config: ServerConfig,
  contentType: { binary: boolean } | undefined,
): Codec | undefined {
  if (contentType === undefined) return undefined;
  return contentType.binary ? config.binaryCodec : config.jsonCodec;
}

/**
 * 415 for a request no codec of the file reads, naming the content types it
 * does: `binaryOnly` in files generated with json=false, else `all`.
 */
export function serverUnsupportedMediaType(
  config: ServerConfig,
  binaryOnly: string,
  all: string,
): ServerResponse {
  return handlerUnsupportedMediaType(
    config.jsonCodec === undefined ? binaryOnly : all,
  );
}

/** The signature of connectParseGetQuery, named so that referring to it does not pull in its code. */
export type ConnectGetQueryParser = (
  query: URLSearchParams,
) =>
  | { message: Uint8Array; binary: boolean; compression: string | undefined }
  | ConnectError;

const serverTextEncoder = new TextEncoder();

/** Serves one unary Connect call, POST or GET. Never throws: failures become error responses. */
export async function connectHandleUnary(
  handler: UnaryMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
): Promise<ServerResponse> {
  const method = handler.method;
  const isGet = request.method === "GET";
  const parseGetQuery = config.parseGetQuery;
  if (
    request.method !== "POST" &&
    !(isGet && method.noSideEffects && parseGetQuery !== undefined)
  ) {
    return {
      status: 405,
      header: new Headers({
        allow: method.noSideEffects ? "GET, POST" : "POST",
      }),
    };
  }
  const responseHeaders = new Headers();
  const responseTrailers = new Headers();
  let binary = true;
  try {
    let encoding: string | null;
    let body: Uint8Array | undefined;
    if (isGet && parseGetQuery !== undefined) {
      const params = new URLSearchParams(request.search);
      const getEncoding = params.get("encoding");
      if (
        getEncoding !== "proto" &&
        (getEncoding !== "json" || config.jsonCodec === undefined)
      ) {
        return { status: 415, header: new Headers() };
      }
      const query = parseGetQuery(params);
      if (query instanceof ConnectError) {
        throw query;
      }
      binary = query.binary;
      encoding = query.compression ?? null;
      body = query.message;
    } else {
      const contentType = connectParseUnaryContentType(
        request.header("content-type"),
      );
      if (
        contentType === undefined ||
        serverCodec(config, contentType) === undefined
      ) {
        return serverUnsupportedMediaType(
          config,
          connectContentTypeProto,
          `${connectContentTypeJson}, ${connectContentTypeProto}`,
        );
      }
      binary = contentType.binary;
      encoding = request.header("content-encoding");
      connectCheckProtocolVersion(
        request.header(connectHeaderProtocolVersion),
        config,
      );
    }
    const timeoutMs = connectParseTimeout(request.header(connectHeaderTimeout));
    if (timeoutMs instanceof ConnectError) {
      throw timeoutMs;
    }
    const compression = compressionFind(config.compressions, encoding);
    if (compression === undefined) {
      throw compressionUnknown(encoding, config.compressions);
    }
    if (body === undefined) {
      const declaredLength = Number(request.header("content-length") ?? 0);
      if (compression === null && declaredLength > config.readMaxBytes) {
        throw bodyTooLarge(config.readMaxBytes);
      }
      body = await readBody(request.body, config.readMaxBytes);
    }
    // An empty body is never compressed, whatever the header says (Connect spec).
    if (compression !== null && body.byteLength > 0) {
      body = await config.decompressGate.decompress(
        compression,
        body,
        config.readMaxBytes,
        request.signal,
      );
    } else if (body.byteLength > config.readMaxBytes) {
      throw bodyTooLarge(config.readMaxBytes);
    }
    // Never undefined here: JSON requests were refused above without it.
    const codec = binary ? config.binaryCodec : config.jsonCodec!;
    const input = codec.decode(method.input, body);

    const output = await serverRunUnary(
      handler,
      request,
      config,
      "connect",
      input,
      timeoutMs,
      responseHeaders,
      responseTrailers,
    );
    let responseBody = codec.encode(method.output, output.message);
    // The call's own response headers, sent as they are: no copy per request.
    const header = output.header;
    header.set(
      "content-type",
      binary ? connectContentTypeProto : connectContentTypeJson,
    );
    if (responseBody.byteLength >= config.compressMinBytes) {
      const responseCompression = compressionNegotiate(
        config.compressions,
        request.header("accept-encoding"),
      );
      if (responseCompression !== undefined) {
        responseBody = await responseCompression.compress(responseBody);
        header.set("content-encoding", responseCompression.name);
      }
    }
    connectTrailersToHeaders(output.trailer, header);
    return { status: 200, header, body: responseBody };
  } catch (e) {
    return connectErrorResponse(
      ConnectError.from(e),
      responseHeaders,
      responseTrailers,
    );
  }
}

function connectCheckProtocolVersion(
  version: string | null,
  config: ServerConfig,
): void {
  if (version === null) {
    if (config.requireConnectProtocolHeader) {
      throw new ConnectError(
        `missing required header: set ${connectHeaderProtocolVersion} to "1"`,
        Code.InvalidArgument,
      );
    }
  } else if (version !== "1") {
    throw new ConnectError(
      `${connectHeaderProtocolVersion} must be "1": got "${version}"`,
      Code.InvalidArgument,
    );
  }
}

/**
 * Runs the interceptors and the implementation with a signal that aborts on
 * client cancellation or at the deadline; the deadline answers the call at
 * once even if the implementation ignores its signal.
 */
export async function serverRunUnary(
  handler: UnaryMethodHandler,
  request: ServerRequest,
  config: ServerConfig,
  protocol: HandlerContext["protocol"],
  input: Message,
  timeoutMs: number | undefined,
  responseHeaders: Headers,
  responseTrailers: Headers,
) {
  const method = handler.method;
  // A client that goes away surfaces as the request's signal aborting.
  const deadline = deadlineForRequest(timeoutMs, request.signal);
  const signal = deadline.signal;
  const context = new ServerCallContext(
    method,
    protocol,
    request,
    responseHeaders,
    responseTrailers,
    signal,
    deadline.remainingMs,
  );
  const next: UnaryNext = async (req) => {
    const result = await handler.unary(req.message, context);
    const message = isMessage(result, method.output)
      ? result
      : create(method.output, result);
    return {
      stream: false,
      method,
      header: responseHeaders,
      trailer: responseTrailers,
      message,
    };
  };
  try {
    const call = applyInterceptors(
      next,
      config.interceptors,
    )(new ServerInterceptorRequest(false, method, request, signal, input));
    // Without a timeout, the race would only answer a client that has gone
    // away, to whom nothing is sent: not worth a promise and a listener.
    return timeoutMs === undefined ? await call : await deadline.race(call);
  } catch (e) {
    throw serverFail(e, config, context);
  } finally {
    deadline.cleanup();
  }
}

/** The message sent instead of that of an error which is not a ConnectError. */
export const serverRedactedMessage = "internal error (details withheld)";

/**
 * What a call that failed after its implementation started sends: reports
 * the error to `onError` (which cannot break the call by throwing or
 * rejecting), and withholds the message of anything not a ConnectError
 * unless `redactErrors` is off.
 */
export function serverFail(
  reason: unknown,
  config: ServerConfig,
  context: HandlerContext,
): ConnectError {
  const known = isConnectError(reason);
  const redact = !known && config.redactErrors;
  const onError = config.onError;
  try {
    if (onError !== undefined) {
      const result: unknown = onError(reason, context);
      if (result instanceof Promise) result.catch(() => {});
    } else if (redact) {
      console.error(
        `${context.method.path}: ${serverRedactedMessage}:`,
        reason,
      );
    }
  } catch {
    // A logger that throws must not change what the client gets.
  }
  const error = ConnectError.from(reason);
  return redact
    ? new ConnectError(serverRedactedMessage, error.code, {
        metadata: error.metadata,
      })
    : error;
}

/** An error as a unary Connect response: status from the code, JSON body, trailers as `trailer-` headers. */
export function connectErrorResponse(
  error: ConnectError,
  responseHeaders: Headers,
  responseTrailers: Headers,
): ServerResponse {
  const header = new Headers(responseHeaders);
  error.metadata.forEach((value, key) => header.append(key, value));
  header.set("content-type", connectContentTypeJson);
  connectTrailersToHeaders(responseTrailers, header);
  return {
    status: connectCodeToHttpStatus(error.code),
    header,
    body: serverTextEncoder.encode(connectErrorToJson(error)),
  };
}
