import { bodyTooLarge, readBody } from "../core/body.ts";
import { Code } from "../core/code.ts";
import {
  compressionFind,
  compressionNegotiate,
  compressionUnknown,
} from "../core/compression.ts";
import { ConnectError } from "../core/errors.ts";
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
import {
  serverCodec,
  serverUnsupportedMediaType,
  type ServerConfig,
} from "./config.ts";
import {
  handlerNotFound,
  ServerPlainResponse,
  type ServerRequest,
  type ServerResponse,
  type UnaryMethodHandler,
} from "./handler.ts";
import type { ServerProtocol, ServerStream } from "./protocol.ts";
import { serverRunUnary, type UnaryResult } from "./unary.ts";

// gRPC's and gRPC-Web's content types (application/grpc[+codec],
// application/grpc-web[+codec]), the only ones Connect leaves to other
// protocols: every other request, GET ones without a content type included,
// is Connect's to serve or to refuse with its own 415.
const connectNotOurs = /^application\/grpc(-web)?(?![-\w])/i;

/**
 * The Connect protocol of a service. `stream` is connectHandleStream in
 * files with streaming methods; `parseGetQuery` is connectParseGetQuery in
 * files with NO_SIDE_EFFECTS methods, which may then be called with GET.
 */
export function connectServer(
  parts: {
    readonly stream?: ServerStream;
    readonly parseGetQuery?: ConnectGetQueryParser;
  } = {},
): ServerProtocol {
  const parseGetQuery = parts.parseGetQuery;
  return {
    name: "connect",
    // Connect's own content types first, without the pattern.
    accepts: (contentType) =>
      contentType === connectContentTypeProto ||
      contentType === connectContentTypeJson ||
      !connectNotOurs.test(contentType ?? ""),
    contentTypes: `${connectContentTypeProto}, ${connectContentTypeJson}`,
    unary: (handler, request, config) =>
      connectHandleUnary(handler, request, config, parseGetQuery),
    stream: parts.stream,
    unimplemented: async (request) => handlerNotFound(request.path),
  };
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
  parseGetQuery: ConnectGetQueryParser | undefined,
): Promise<ServerResponse> {
  const method = handler.method;
  const isGet = request.method === "GET";
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
  let binary = true;
  let output: UnaryResult | undefined;
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
      body = await (request.readBody?.(config.readMaxBytes) ??
        readBody(request.body, config.readMaxBytes));
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

    output = await serverRunUnary(
      handler,
      request,
      config,
      "connect",
      input,
      timeoutMs,
    );
    if (!output.ok) throw output.error;
    let responseBody = codec.encode(method.output, output.message);
    // The protocol's own headers: lower-case names, one value each.
    const own: Record<string, string> = {
      "content-type": binary ? connectContentTypeProto : connectContentTypeJson,
    };
    if (responseBody.byteLength >= config.compressMinBytes) {
      const responseCompression = compressionNegotiate(
        config.compressions,
        request.header("accept-encoding"),
      );
      if (responseCompression !== undefined) {
        responseBody = await responseCompression.compress(responseBody);
        own["content-encoding"] = responseCompression.name;
      }
    }
    if (output.header === undefined && output.trailer === undefined) {
      return new ServerPlainResponse(200, own, responseBody);
    }
    // The call's own response headers, sent as they are: no copy per request.
    const header = output.header ?? new Headers();
    for (const name in own) header.set(name, own[name]!);
    if (output.trailer !== undefined) {
      connectTrailersToHeaders(output.trailer, header);
    }
    return { status: 200, header, body: responseBody };
  } catch (e) {
    // With the implementation's headers, unless it never ran.
    return connectErrorResponse(
      ConnectError.from(e),
      output?.header,
      output?.trailer,
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

/** An error as a unary Connect response: status from the code, JSON body, trailers as `trailer-` headers. */
export function connectErrorResponse(
  error: ConnectError,
  responseHeaders?: Headers,
  responseTrailers?: Headers,
): ServerResponse {
  const header = new Headers(responseHeaders);
  error.metadata.forEach((value, key) => header.append(key, value));
  header.set("content-type", connectContentTypeJson);
  if (responseTrailers !== undefined) {
    connectTrailersToHeaders(responseTrailers, header);
  }
  return {
    status: connectCodeToHttpStatus(error.code),
    header,
    body: serverTextEncoder.encode(connectErrorToJson(error)),
  };
}
