import { readBody } from "./body.ts";
import { clientUnaryCaller, type UnaryCaller } from "./client-call.ts";
import {
  clientSend,
  type ClientConfig,
  type ClientTimeoutHeader,
} from "./client-config.ts";
import { Code } from "./code.ts";
import type { Codec } from "./codec.ts";
import {
  compressionAcceptHeader,
  compressionFind,
  type Compression,
} from "./compression.ts";
import { ConnectError } from "./errors.ts";
import type { HttpResponse } from "./http-client.ts";
import type { UnaryResponse } from "./interceptors.ts";
import type { MethodInfo } from "./method.ts";
import {
  connectContentTypeJson,
  connectContentTypeProto,
  connectErrorFromJson,
  connectHeaderProtocolVersion,
  connectHeaderTimeout,
  connectParseUnaryContentType,
  connectSplitTrailers,
} from "./protocol-connect.ts";

/** The Content-Encodings that fetch undoes itself (the Fetch standard's, and zstd in Node 24). */
const connectFetchDecoded: ReadonlySet<string> = new Set([
  "identity",
  "gzip",
  "x-gzip",
  "deflate",
  "br",
  "zstd",
]);

/** Connect sends the deadline in whole milliseconds. */
export const connectClientTimeoutHeader: ClientTimeoutHeader = {
  name: connectHeaderTimeout,
  format: (ms) => String(Math.max(0, Math.ceil(ms))),
};

/** The unary caller of the Connect protocol: POST, or GET for NO_SIDE_EFFECTS methods when asked. */
export function createConnectUnaryCaller(config: ClientConfig): UnaryCaller {
  const { options, httpClient, compressions, codec } = config;
  const { readMaxBytes, compressMinBytes, getQuery } = config;
  const acceptEncoding = compressionAcceptHeader(compressions);
  return clientUnaryCaller(
    config,
    connectClientTimeoutHeader,
    async (request, sendCompression) => {
      const method = request.method;
      let body = codec.encode(method.input, request.message);
      let compressed: Compression | undefined;
      if (
        sendCompression !== undefined &&
        body.byteLength >= compressMinBytes
      ) {
        body = await sendCompression.compress(body);
        compressed = sendCompression;
      }
      const httpHeader = new Headers(request.header);
      if (acceptEncoding !== "") {
        httpHeader.set("accept-encoding", acceptEncoding);
      }
      const get =
        getQuery !== undefined &&
        options.useHttpGet === true &&
        method.noSideEffects;
      if (!get) {
        httpHeader.set(
          "content-type",
          codec.binary ? connectContentTypeProto : connectContentTypeJson,
        );
        httpHeader.set(connectHeaderProtocolVersion, "1");
        if (compressed !== undefined) {
          httpHeader.set("content-encoding", compressed.name);
        }
      }
      const response = await clientSend(httpClient, {
        url: get
          ? request.url + getQuery(body, codec.binary, compressed?.name)
          : request.url,
        method: get ? "GET" : "POST",
        header: httpHeader,
        body: get ? undefined : body,
        signal: request.signal,
      });
      return connectReadUnaryResponse(
        method,
        response,
        codec,
        compressions,
        readMaxBytes,
      );
    },
  );
}

async function connectReadUnaryResponse(
  method: MethodInfo,
  response: HttpResponse,
  codec: Codec,
  compressions: readonly Compression[],
  readMaxBytes: number,
): Promise<UnaryResponse> {
  const [header, trailer] = connectSplitTrailers(response.header);
  const encoding = response.header.get("content-encoding");
  // fetch decodes what it knows and passes anything else through as it is.
  const compression = response.contentDecoded
    ? connectFetchDecoded.has(encoding?.toLowerCase() ?? "identity")
      ? null
      : undefined
    : compressionFind(compressions, encoding);
  if (compression === undefined) {
    throw new ConnectError(
      `response uses unsupported compression "${encoding}"`,
      Code.Internal,
    );
  }
  let body = await readBody(response.body, readMaxBytes);
  if (compression !== null && body.byteLength > 0) {
    body = await compression.decompress(body, readMaxBytes);
  }
  if (response.status !== 200) {
    const metadata = new Headers(header);
    trailer.forEach((value, key) => metadata.append(key, value));
    throw connectErrorFromJson(body, response.status, metadata);
  }
  const contentType = connectParseUnaryContentType(
    response.header.get("content-type"),
  );
  if (contentType === undefined || contentType.binary !== codec.binary) {
    throw new ConnectError(
      `unexpected response content type "${response.header.get("content-type")}"`,
      // Not Connect at all is Unknown; the other codec is Internal.
      contentType === undefined ? Code.Unknown : Code.Internal,
    );
  }
  return {
    stream: false,
    method,
    header,
    trailer,
    message: codec.decode(method.output, body),
  };
}
