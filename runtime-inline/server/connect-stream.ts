import {
  compressionFind,
  compressionNegotiate,
  compressionUnknown,
} from "../core/compression.ts";
import { deadlineForRequest } from "../core/deadline.ts";
import {
  envelopeCompress,
  envelopeEncode,
  envelopeFlagEndStream,
} from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import {
  type ServerRequest,
  type ServerResponse,
  type StreamMethodHandler,
} from "./handler.ts";
import {
  connectHeaderTimeout,
  connectParseTimeout,
} from "../protocol/connect.ts";
import {
  connectEndStreamToJson,
  connectHeaderAcceptEncoding,
  connectHeaderContentEncoding,
  connectParseStreamContentType,
  connectStreamContentTypeJson,
  connectStreamContentTypeProto,
} from "../protocol/connect-stream.ts";
import {
  serverCodec,
  serverUnsupportedMediaType,
  type ServerConfig,
} from "./config.ts";
import {
  serverReadRequests,
  serverStartStream,
  serverWriteStream,
} from "./stream.ts";

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
    request.header("content-type"),
  );
  const codec = serverCodec(config, contentType);
  if (contentType === undefined || codec === undefined) {
    return serverUnsupportedMediaType(
      config,
      connectStreamContentTypeProto,
      `${connectStreamContentTypeJson}, ${connectStreamContentTypeProto}`,
    );
  }
  const header = new Headers({
    "content-type": contentType.binary
      ? connectStreamContentTypeProto
      : connectStreamContentTypeJson,
  });
  const responseCompression = compressionNegotiate(
    config.compressions,
    request.header(connectHeaderAcceptEncoding),
  );
  if (responseCompression !== undefined) {
    header.set(connectHeaderContentEncoding, responseCompression.name);
  }
  const encoding = request.header(connectHeaderContentEncoding);
  const requestCompression = compressionFind(config.compressions, encoding);
  const timeoutMs = connectParseTimeout(request.header(connectHeaderTimeout));
  if (timeoutMs instanceof ConnectError || requestCompression === undefined) {
    const refused =
      timeoutMs instanceof ConnectError
        ? timeoutMs
        : compressionUnknown(encoding, config.compressions);
    return {
      status: 200,
      header,
      body: envelopeEncode(
        envelopeFlagEndStream,
        connectEndStreamToJson(refused, new Headers()),
      ),
    };
  }

  const deadline = deadlineForRequest(timeoutMs, request.signal);
  const start = await serverStartStream(
    handler,
    request,
    config,
    "connect",
    deadline,
    serverReadRequests(
      request,
      requestCompression,
      codec,
      method.input,
      config,
    ),
  );
  start.header.forEach((value, key) => header.append(key, value));
  if (!start.ok) {
    return {
      status: 200,
      header,
      body: envelopeEncode(
        envelopeFlagEndStream,
        connectEndStreamToJson(start.error, start.trailer),
      ),
    };
  }
  return {
    status: 200,
    header,
    body: serverWriteStream(
      start,
      deadline,
      (message) =>
        envelopeCompress(
          codec.encode(method.output, message),
          responseCompression,
          config.compressMinBytes,
        ),
      (error) =>
        envelopeEncode(
          envelopeFlagEndStream,
          connectEndStreamToJson(error, start.trailer),
        ),
    ),
  };
}
