import type { Message } from "@bufbuild/protobuf";
import { clientUnaryCaller } from "./call.ts";
import {
  clientSendError,
  type ClientConfig,
  type ClientTimeoutHeader,
  type ClientUnaryCall,
  type UnaryCaller,
} from "./config.ts";
import { Code } from "../core/code.ts";
import type { Codec } from "../core/codec.ts";
import {
  compressionAcceptHeader,
  compressionFind,
  type Compression,
} from "../core/compression.ts";
import { ConnectError } from "../core/errors.ts";
import {
  httpHeaderGet,
  httpReadBody,
  httpSend,
  type HttpFields,
  type HttpFieldsRequest,
  type HttpResponse,
} from "./http-client.ts";
import type { UnaryResponse } from "../core/interceptors.ts";
import type { MethodInfo } from "../core/method.ts";
import {
  connectContentTypeJson,
  connectContentTypeProto,
  connectErrorFromJson,
  connectGetQuery,
  connectHeaderProtocolVersion,
  connectHeaderTimeout,
  connectParseUnaryContentType,
  connectSplitTrailers,
} from "../protocol/connect.ts";

/** The Content-Encodings that fetch undoes itself (the Fetch standard's, and zstd in Node 24). */
const connectFetchDecoded: ReadonlySet<string> = new Set([
  "identity",
  "gzip",
  "x-gzip",
  "deflate",
  "br",
  "zstd",
]);

/** Connect sends the deadline in whole milliseconds, at most 10 digits of them. */
export const connectClientTimeoutHeader: ClientTimeoutHeader = {
  name: connectHeaderTimeout,
  format: (ms) => String(Math.max(0, Math.ceil(ms))),
  maxMs: 9_999_999_999,
};

/** The unary caller of the Connect protocol: POST, or GET for NO_SIDE_EFFECTS methods when asked. */
export function createConnectUnaryCaller(config: ClientConfig): UnaryCaller {
  const codec = config.codec;
  const acceptEncoding = compressionAcceptHeader(config.compressions);
  return clientUnaryCaller(
    config,
    connectClientTimeoutHeader,
    async (call, sendCompression, fields) => {
      const method = call.method;
      let body = codec.encode(method.input, call.message);
      const compression =
        body.byteLength < config.compressMinBytes ? undefined : sendCompression;
      if (compression !== undefined) {
        body = await compression.compress(body);
      }
      if (acceptEncoding !== "") {
        fields["accept-encoding"] = acceptEncoding;
      }
      let httpRequest =
        call.requestMethod === "GET"
          ? config.get?.(call, fields, body, codec.binary, compression?.name)
          : undefined;
      if (httpRequest === undefined) {
        fields["content-type"] = codec.binary
          ? connectContentTypeProto
          : connectContentTypeJson;
        fields[connectHeaderProtocolVersion] = "1";
        if (compression !== undefined) {
          fields["content-encoding"] = compression.name;
        }
        httpRequest = {
          url: call.url,
          method: "POST",
          fields,
          body,
          signal: call.signal,
        };
      }
      let response: HttpResponse;
      try {
        response = await httpSend(config.httpClient, httpRequest);
      } catch (e) {
        throw clientSendError(e, httpRequest.signal);
      }
      // The response is read in this async step: the checks before and
      // after reading its body are synchronous.
      const decompression = connectUnaryResponseCompression(config, response);
      let responseBody = await httpReadBody(response.body, config.readMaxBytes);
      if (decompression !== null && responseBody.byteLength > 0) {
        responseBody = await decompression.decompress(
          responseBody,
          config.readMaxBytes,
        );
      }
      return connectUnaryResponse(codec, method, response, responseBody);
    },
    config.get !== undefined,
  );
}

/**
 * A unary request as a Connect GET: the message in the query, no body and
 * none of POST's content headers. Only files with NO_SIDE_EFFECTS methods
 * carry it (ClientFeatures.get).
 */
export function connectGetRequest(
  call: ClientUnaryCall,
  fields: HttpFields,
  message: Uint8Array,
  binary: boolean,
  compression: string | undefined,
): HttpFieldsRequest {
  return {
    url: call.url + connectGetQuery(message, binary, compression),
    method: "GET",
    fields,
    body: undefined,
    signal: call.signal,
  };
}

/**
 * The compression of a unary response's body: null for none (or one that
 * fetch already undid); Internal for one the client does not have.
 */
function connectUnaryResponseCompression(
  config: ClientConfig,
  response: HttpResponse,
): Compression | null {
  const encoding = httpHeaderGet(response, "content-encoding");
  // fetch decodes what it knows and passes anything else through as it is.
  const compression = response.contentDecoded
    ? connectFetchDecoded.has(encoding?.toLowerCase() ?? "identity")
      ? null
      : undefined
    : compressionFind(config.compressions, encoding);
  if (compression === undefined) {
    throw new ConnectError(
      `response uses unsupported compression "${encoding}"`,
      Code.Internal,
    );
  }
  return compression;
}

/** A unary response, given its whole (decompressed) body: its message, or its error. */
function connectUnaryResponse(
  codec: Codec,
  method: MethodInfo,
  response: HttpResponse,
  body: Uint8Array,
): UnaryResponse {
  if (response.status !== 200) {
    const [header, trailer] = connectSplitHeader(response.header);
    // The error's metadata: the headers, then the trailers.
    trailer.forEach((value, key) => header.append(key, value));
    throw connectErrorFromJson(body, response.status, header);
  }
  const contentType = httpHeaderGet(response, "content-type");
  const binary = connectParseUnaryContentType(contentType)?.binary;
  if (binary !== codec.binary) {
    throw new ConnectError(
      `unexpected response content type "${contentType}"`,
      // As connect-go: not even "application/..." is no Connect response at
      // all, Unknown; another codec (or one it does not know) is Internal.
      contentType !== null && /^application\//i.test(contentType)
        ? Code.Internal
        : Code.Unknown,
    );
  }
  return new ConnectUnaryResponse(
    method,
    response,
    codec.decode(method.output, body),
  );
}

/**
 * A successful unary response whose headers are taken from the HTTP
 * response, and split from its trailers (`trailer-` names), only when
 * either is first read: a call whose caller reads neither (the typed method
 * without onHeader or onTrailer) is spared making a Headers of them (see
 * Http2Response), a walk over them, which a Headers sorts first, and a
 * Headers for the trailers (together about 7 % of a small call's
 * allocation). Interceptors get a plain copy (clientUnaryPlain), which they
 * may spread.
 */
class ConnectUnaryResponse implements UnaryResponse {
  readonly stream = false;
  readonly method: MethodInfo;
  readonly message: Message;
  #response: HttpResponse;
  #split: [Headers, Headers] | undefined;

  constructor(method: MethodInfo, response: HttpResponse, message: Message) {
    this.method = method;
    this.#response = response;
    this.message = message;
  }

  get header(): Headers {
    return (this.#split ??= connectSplitHeader(this.#response.header))[0];
  }

  get trailer(): Headers {
    return (this.#split ??= connectSplitHeader(this.#response.header))[1];
  }
}

/** A unary response's headers and its trailers (`trailer-` names, unprefixed). */
function connectSplitHeader(header: Headers): [Headers, Headers] {
  return connectHasTrailers(header)
    ? connectSplitTrailers(header)
    : // Most responses carry no trailers: the transport's headers are the
      // response's as they are, rather than copied.
      [header, new Headers()];
}

/** Whether unary response headers carry trailers (`trailer-` names, as connectSplitTrailers splits them). */
function connectHasTrailers(header: Headers): boolean {
  for (const key of header.keys()) {
    if (key.startsWith("trailer-")) return true;
  }
  return false;
}
