import {
  create,
  isMessage,
  type DescMessage,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { bodyDefaultReadMaxBytes, readBody } from "./body.ts";
import { Code } from "./code.ts";
import {
  codecBinary,
  codecJson,
  type Codec,
  type JsonOptions,
} from "./codec.ts";
import {
  compressionAcceptHeader,
  compressionFind,
  type Compression,
} from "./compression.ts";
import { deadlineStart } from "./deadline.ts";
import { ConnectError } from "./errors.ts";
import type { HttpClient, HttpResponse } from "./http-client.ts";
import {
  applyInterceptors,
  type Interceptor,
  type UnaryNext,
  type UnaryResponse,
} from "./interceptors.ts";
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

/**
 * Options of one call.
 * @public
 */
export interface CallOptions {
  /** Deadline for the call; the server sees it too. */
  readonly timeoutMs?: number;
  readonly headers?: HeadersInit;
  /** Aborting cancels the call (and the server's handler): the call fails with `canceled`. */
  readonly signal?: AbortSignal;
  /** "gzip", "br", "zstd" or "identity"; overrides the client's choice. */
  readonly sendCompression?: string;
  readonly onHeader?: (header: Headers) => void;
  readonly onTrailer?: (trailer: Headers) => void;
}

/**
 * Options of a client, for every call it makes.
 * @public
 */
export interface ClientOptions {
  /** Binary protobuf (default) or JSON. */
  readonly binary?: boolean;
  /** Call methods marked `NO_SIDE_EFFECTS` with HTTP GET, so that they can be cached. */
  readonly useHttpGet?: boolean;
  /** Compression for requests: "gzip", "br", "zstd" or "identity" (default). */
  readonly sendCompression?: string;
  /** Compressions offered for responses; defaults to all the platform has. */
  readonly compressions?: readonly Compression[];
  /** Requests smaller than this are sent uncompressed. Default 1024. */
  readonly compressMinBytes?: number;
  /** Largest response message accepted, after decompression. Default 4 MiB. */
  readonly readMaxBytes?: number;
  readonly interceptors?: readonly Interceptor[];
  /** Deadline for every call that does not set its own. */
  readonly timeoutMs?: number;
  /** Headers sent with every call. */
  readonly headers?: HeadersInit;
  readonly jsonOptions?: JsonOptions;
  /** Sends the HTTP requests; defaults to fetch. */
  readonly httpClient?: HttpClient;
}

/**
 * A response message with the headers and trailers it came with.
 * @public
 */
export interface UnaryResult<Output> {
  readonly message: Output;
  readonly header: Headers;
  readonly trailer: Headers;
}

/** Makes one unary call of any method; generated clients wrap it in typed methods. */
export type UnaryCaller = (
  method: MethodInfo,
  input: MessageInitShape<DescMessage>,
  options: CallOptions | undefined,
) => Promise<UnaryResponse>;

/**
 * What a generated file plugs into the shared client code, so that it
 * carries only what it uses (see ServerFeatures).
 */
export interface ClientFeatures {
  readonly compressions: readonly Compression[];
  readonly getQuery?: ConnectGetQueryEncoder;
}

/** The signature of connectGetQuery, named so that referring to it does not pull in its code. */
export type ConnectGetQueryEncoder = (
  message: Uint8Array,
  binary: boolean,
  compression: string | undefined,
) => string;

/** ClientOptions resolved once per client, shared by its unary and streaming calls. */
export interface ClientConfig {
  /** The base URL without a trailing slash. */
  readonly baseUrl: string;
  readonly options: ClientOptions;
  readonly httpClient: HttpClient;
  readonly compressions: readonly Compression[];
  /** The compressions offered for responses, as a header value ("" for none). */
  readonly acceptEncoding: string;
  readonly codec: Codec;
  readonly readMaxBytes: number;
  readonly compressMinBytes: number;
  readonly getQuery: ConnectGetQueryEncoder | undefined;
}

export function createClientConfig(
  baseUrl: string,
  options: ClientOptions,
  httpClient: HttpClient,
  features: ClientFeatures,
): ClientConfig {
  const compressions = options.compressions ?? features.compressions;
  return {
    baseUrl: baseUrl.endsWith("/") ? baseUrl.slice(0, -1) : baseUrl,
    options,
    httpClient,
    compressions,
    acceptEncoding: compressionAcceptHeader(compressions),
    codec:
      options.binary === false ? codecJson(options.jsonOptions) : codecBinary,
    readMaxBytes: options.readMaxBytes ?? bodyDefaultReadMaxBytes,
    compressMinBytes: options.compressMinBytes ?? 1024,
    getQuery: features.getQuery,
  };
}

/** What every call sets up before it goes out: its headers, its compression and its deadline. */
export function clientCallStart(
  config: ClientConfig,
  callOptions: CallOptions,
) {
  const options = config.options;
  const sendCompression = clientSendCompression(
    config.compressions,
    callOptions.sendCompression ?? options.sendCompression,
  );
  const header = new Headers(options.headers);
  new Headers(callOptions.headers).forEach((value, key) =>
    header.set(key, value),
  );
  const timeoutMs = callOptions.timeoutMs ?? options.timeoutMs;
  if (timeoutMs !== undefined) {
    header.set(connectHeaderTimeout, String(Math.max(0, Math.ceil(timeoutMs))));
  }
  return {
    header,
    sendCompression,
    deadline: deadlineStart(timeoutMs, callOptions.signal),
  };
}

/** The unary caller of the Connect protocol. */
export function createConnectUnaryCaller(config: ClientConfig): UnaryCaller {
  const { options, httpClient, compressions, acceptEncoding, codec } = config;
  const { readMaxBytes, compressMinBytes, getQuery } = config;
  return async (method, input, callOptions = {}) => {
    const { header, sendCompression, deadline } = clientCallStart(
      config,
      callOptions,
    );
    const next: UnaryNext = async (request) => {
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
    };
    try {
      const response = await applyInterceptors(
        next,
        options.interceptors,
      )({
        stream: false,
        method,
        url: config.baseUrl + method.path,
        header,
        signal: deadline.signal,
        message: isMessage(input, method.input)
          ? input
          : create(method.input, input),
      });
      callOptions.onHeader?.(response.header);
      callOptions.onTrailer?.(response.trailer);
      return response;
    } catch (e) {
      throw deadline.signal.aborted
        ? ConnectError.from(deadline.signal.reason, Code.Canceled)
        : ConnectError.from(e);
    } finally {
      deadline.cleanup();
    }
  };
}

export async function clientSend(
  httpClient: HttpClient,
  request: Parameters<HttpClient>[0],
): Promise<HttpResponse> {
  try {
    return await httpClient(request);
  } catch (e) {
    if (request.signal.aborted) {
      throw ConnectError.from(request.signal.reason, Code.Canceled);
    }
    throw ConnectError.from(e, Code.Unavailable);
  }
}

async function connectReadUnaryResponse(
  method: MethodInfo,
  response: HttpResponse,
  codec: Codec,
  compressions: readonly Compression[],
  readMaxBytes: number,
): Promise<UnaryResponse> {
  const [header, trailer] = connectSplitTrailers(response.header);
  const encoding = response.contentDecoded
    ? null
    : response.header.get("content-encoding");
  const compression = compressionFind(compressions, encoding);
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
      Code.Internal,
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

function clientSendCompression(
  compressions: readonly Compression[],
  name: string | undefined,
): Compression | undefined {
  if (name === undefined) return undefined;
  const found = compressionFind(compressions, name);
  if (found === undefined) {
    throw new ConnectError(
      `unknown send compression "${name}": available are ${compressions.map((c) => c.name).join(", ")}`,
      Code.InvalidArgument,
    );
  }
  return found ?? undefined;
}
