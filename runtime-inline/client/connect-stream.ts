import type { DescMessage, Message } from "@bufbuild/protobuf";
import { readBody } from "../core/body.ts";
import { clientStreamCaller } from "./call.ts";
import { clientSend, type ClientConfig, type StreamCaller } from "./config.ts";
import { connectClientTimeoutHeader } from "./connect.ts";
import { Code } from "../core/code.ts";
import type { Codec } from "../core/codec.ts";
import {
  compressionAcceptHeader,
  compressionFind,
  type Compression,
} from "../core/compression.ts";
import {
  envelopeDecompress,
  envelopeFlagEndStream,
  envelopeRead,
} from "../core/envelope.ts";
import { ConnectError } from "../core/errors.ts";
import {
  connectErrorFromJson,
  connectHeaderProtocolVersion,
} from "../protocol/connect.ts";
import {
  connectEndStreamFromJson,
  connectHeaderAcceptEncoding,
  connectHeaderContentEncoding,
  connectParseStreamContentType,
  connectStreamContentTypeJson,
  connectStreamContentTypeProto,
} from "../protocol/connect-stream.ts";

/**
 * The streaming caller of the Connect protocol. The response's messages
 * end with the end-of-stream message; leaving them early cancels the call.
 */
export function createConnectStreamCaller(config: ClientConfig): StreamCaller {
  const { httpClient, compressions, codec, readMaxBytes } = config;
  const acceptEncoding = compressionAcceptHeader(compressions);
  return clientStreamCaller(
    config,
    connectClientTimeoutHeader,
    async (request, sendCompression, fields, body) => {
      const method = request.method;
      fields["content-type"] = codec.binary
        ? connectStreamContentTypeProto
        : connectStreamContentTypeJson;
      fields[connectHeaderProtocolVersion] = "1";
      if (acceptEncoding !== "") {
        fields[connectHeaderAcceptEncoding] = acceptEncoding;
      }
      if (sendCompression !== undefined) {
        fields[connectHeaderContentEncoding] = sendCompression.name;
      }
      const response = await clientSend(httpClient, {
        url: request.url,
        method: "POST",
        fields,
        body,
        signal: request.signal,
      });
      if (response.status !== 200) {
        const errorBody = await readBody(response.body, readMaxBytes);
        throw connectErrorFromJson(errorBody, response.status, response.header);
      }
      const contentType = connectParseStreamContentType(
        response.header.get("content-type"),
      );
      if (contentType === undefined || contentType.binary !== codec.binary) {
        const value = response.header.get("content-type");
        throw new ConnectError(
          `unexpected response content type "${value}"`,
          // As connect-go (and the unary call): not "application/connect+..."
          // is no Connect stream at all, Unknown; another codec is Internal.
          value !== null && /^application\/connect\+/i.test(value)
            ? Code.Internal
            : Code.Unknown,
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
    },
  );
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
    // A response cut short is the server's fault: Internal, as the
    // conformance suite expects (it is InvalidArgument on the server side).
    Code.Internal,
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
