import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { bodyDefaultReadMaxBytes } from "../core/body.ts";
import { Code } from "../core/code.ts";
import { codecBinary, type Codec } from "../core/codec.ts";
import { compressionFind, type Compression } from "../core/compression.ts";
import { deadlineWatch } from "../core/deadline.ts";
import { ConnectError } from "../core/errors.ts";
import {
  httpClientError,
  httpFieldsOf,
  httpSend,
  type HttpClient,
  type HttpFields,
  type HttpFieldsRequest,
  type HttpResponse,
} from "./http-client.ts";
import type { ContextValues } from "../core/context-values.ts";
import type {
  Interceptor,
  StreamResponse,
  UnaryRequest,
  UnaryResponse,
} from "../core/interceptors.ts";
import type { MethodInfo } from "../core/method.ts";

/**
 * Options of one call.
 * @public
 */
export interface CallOptions {
  /**
   * Deadline for the call; the server sees it too. 0 or more (else the call
   * fails with `invalid_argument`); beyond what the protocol's header
   * carries, the longest it does.
   */
  readonly timeoutMs?: number;
  readonly headers?: HeadersInit;
  /** Aborting cancels the call (and the server's handler): the call fails with `canceled`. */
  readonly signal?: AbortSignal;
  /** "gzip", "br", "zstd" or "identity"; overrides the client's choice. */
  readonly sendCompression?: string;
  readonly onHeader?: (header: Headers) => void;
  readonly onTrailer?: (trailer: Headers) => void;
  /** Values for the client's interceptors: their `request.contextValues`. */
  readonly contextValues?: ContextValues;
}

/** Makes one unary call of any method; generated clients wrap it in typed methods. */
export type UnaryCaller = (
  method: MethodInfo,
  input: MessageInitShape<DescMessage>,
  options: CallOptions | undefined,
) => Promise<UnaryResponse>;

/** Request messages of a streaming call: any iterable, sync or async, of messages or their fields. */
export type StreamInput =
  | AsyncIterable<MessageInitShape<DescMessage>>
  | Iterable<MessageInitShape<DescMessage>>;

/** Makes one streaming call of any kind; generated clients wrap it in typed methods. */
export type StreamCaller = (
  method: MethodInfo,
  input: StreamInput,
  options: CallOptions | undefined,
) => Promise<StreamResponse>;

/**
 * A protocol a client speaks, as a value to pass in the client's `protocol`
 * option. A generated file exports one for each protocol it was generated
 * with (`connectProtocol`, `grpcProtocol`, `grpcWebProtocol`), holding the
 * callers its methods need: Connect (client/connect.ts,
 * client/connect-stream.ts), gRPC (client/grpc.ts) and gRPC-Web
 * (client/grpc-web.ts) each provide the two factories. Values rather than
 * names, so that a bundler leaves out the protocols an application does not
 * import, and naming a factory copies it, so that a unary-only file
 * carries no streaming code.
 * @public
 */
export interface ClientProtocol {
  readonly name: "connect" | "grpc" | "grpc-web";
  /** Present in files with unary methods. */
  readonly unary?: (config: ClientConfig) => UnaryCaller;
  /** Present in files with streaming methods. */
  readonly stream?: (config: ClientConfig) => StreamCaller;
}

/**
 * Options of a client, for every call it makes.
 * @public
 */
export interface ClientOptions {
  /**
   * The protocol spoken: one of the protocol values the generated file
   * exports (`connectProtocol`, `grpcProtocol` for gRPC over HTTP/2,
   * `grpcWebProtocol`: those of its plugin option `protocols`). Default: the
   * first of those.
   */
  readonly protocol?: ClientProtocol;
  /**
   * Binary protobuf (default), or JSON with `jsonCodec()` (or
   * `jsonCodec({ registry })` to serialize `google.protobuf.Any` fields),
   * which files generated with `json=false` do not export.
   */
  readonly codec?: Codec;
  /** Call methods marked `NO_SIDE_EFFECTS` with HTTP GET, so that they can be cached (Connect only). */
  readonly useHttpGet?: boolean;
  /** Compression for requests: "gzip", "br", "zstd" or "identity" (default). */
  readonly sendCompression?: string;
  /**
   * The compressions the client may send with and offers for responses. On
   * Node: gzip, br and zstd (node:zlib). With `platform=web`, none unless
   * given (`[webCompressionGzip]`): fetch undoes the HTTP compression of
   * unary responses itself, and leaving gzip out keeps it out of bundles.
   */
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

/**
 * What a generated file plugs into the shared client code, so that it
 * carries only what it uses (see ServerFeatures).
 */
export interface ClientFeatures {
  /** The default compressions; absent, none. */
  readonly compressions?: readonly Compression[];
  readonly get?: ConnectGetRequest;
}

/**
 * The signature of connectGetRequest, named so that referring to it does not
 * pull in its code: a unary request as a Connect GET, given its headers so
 * far and its (compressed) message.
 */
export type ConnectGetRequest = (
  request: ClientUnaryCall,
  fields: HttpFields,
  message: Uint8Array,
  binary: boolean,
  compression: string | undefined,
) => HttpFieldsRequest;

/**
 * What a protocol needs of a unary call to send it: the UnaryRequest that
 * interceptors see, less its headers (the protocol is given those as
 * HttpFields) and what only interceptors read. A call without interceptors
 * makes no more than this.
 */
export type ClientUnaryCall = Pick<
  UnaryRequest,
  "method" | "requestMethod" | "url" | "signal" | "message"
>;

/** ClientOptions resolved once per client, shared by its unary and streaming calls. */
export interface ClientConfig {
  /** The base URL without a trailing slash. */
  readonly baseUrl: string;
  readonly options: ClientOptions;
  readonly httpClient: HttpClient;
  readonly compressions: readonly Compression[];
  readonly codec: Codec;
  readonly readMaxBytes: number;
  readonly compressMinBytes: number;
  /** Set when the client asks for GET (`useHttpGet`) and the file has GET methods. */
  readonly get: ConnectGetRequest | undefined;
  /** Each method's URL once it has been called (clientUrl). */
  readonly urls: Map<MethodInfo, string>;
}

export function createClientConfig(
  baseUrl: string,
  options: ClientOptions,
  httpClient: HttpClient,
  features: ClientFeatures,
): ClientConfig {
  return {
    baseUrl: baseUrl.endsWith("/") ? baseUrl.slice(0, -1) : baseUrl,
    options,
    httpClient,
    compressions: options.compressions ?? features.compressions ?? [],
    codec: options.codec ?? codecBinary,
    readMaxBytes: options.readMaxBytes ?? bodyDefaultReadMaxBytes,
    compressMinBytes: options.compressMinBytes ?? 1024,
    get: options.useHttpGet === true ? features.get : undefined,
    urls: new Map(),
  };
}

/**
 * How a protocol sends the deadline: the header's name, the value for a
 * timeout, and the longest timeout the header can carry.
 */
export interface ClientTimeoutHeader {
  readonly name: string;
  readonly format: (timeoutMs: number) => string;
  readonly maxMs: number;
}

/**
 * What every call sets up before it goes out: its headers (the call's own
 * record), its compression, and its timeout, checked and capped (undefined
 * without one). A tuple: browser bundles carry no property names for it.
 */
export function clientCallStart(
  config: ClientConfig,
  callOptions: CallOptions,
  timeoutHeader: ClientTimeoutHeader,
): [
  fields: HttpFields,
  sendCompression: Compression | undefined,
  timeoutMs: number | undefined,
] {
  const options = config.options;
  const sendCompression = clientSendCompression(
    config.compressions,
    callOptions.sendCompression ?? options.sendCompression,
  );
  let fields: HttpFields;
  if (options.headers === undefined && callOptions.headers === undefined) {
    fields = {};
  } else {
    // What a user passes is validated and lowercased by Headers, as before.
    const header = new Headers(options.headers);
    if (callOptions.headers !== undefined) {
      clientMergeHeaders(header, callOptions.headers);
    }
    fields = httpFieldsOf(header);
  }
  let timeoutMs = callOptions.timeoutMs ?? options.timeoutMs;
  if (timeoutMs !== undefined) {
    // NaN, a negative or a non-number would reach the header and the timer
    // as nonsense (a NaN timer fires at once): refused before the call goes
    // out. A longer timeout than the header carries (Infinity included) is
    // the longest it does, for the server and the client's timer alike.
    if (typeof timeoutMs !== "number" || !(timeoutMs >= 0)) {
      throw new ConnectError(
        `invalid timeoutMs ${String(timeoutMs)}: expected a number of milliseconds, 0 or more`,
        Code.InvalidArgument,
      );
    }
    if (timeoutMs > timeoutHeader.maxMs) timeoutMs = timeoutHeader.maxMs;
    fields[timeoutHeader.name] = timeoutHeader.format(timeoutMs);
  }
  return [fields, sendCompression, timeoutMs];
}

/**
 * The controller of a call's signal, which the caller's signal and the
 * deadline abort, and the function that stops watching those.
 */
export function clientCallSignal(
  timeoutMs: number | undefined,
  callOptions: CallOptions,
): [controller: AbortController, cleanup: () => void] {
  const controller = new AbortController();
  return [controller, deadlineWatch(controller, timeoutMs, callOptions.signal)];
}

/**
 * The signal of every unary call without a deadline or a caller's signal:
 * nothing can abort such a call, so its signal never fires, and they share
 * one rather than each making a controller. Transports skip listening to it
 * (node:http2 compares, since listening costs per call; fetch is not given
 * it), and calls with interceptors, which may listen, do not get it:
 * listeners on a signal that never fires would pile up. Never abort it.
 */
export const clientNeverAborted: AbortSignal = new AbortController().signal;

/**
 * A call's headers over the client's: each name the call sets replaces the
 * client's values of it, and keeps all of the call's own (two values of one
 * name in an array or a Headers are both sent). Walked as given, without
 * the copy `new Headers(init)` would make.
 */
function clientMergeHeaders(header: Headers, init: HeadersInit): void {
  if (init instanceof Headers) {
    // Each name once, with its values joined; set-cookie, the one name
    // Headers keeps apart, is no request header.
    init.forEach((value, key) => header.set(key, value));
    return;
  }
  // Any iterable of pairs (a Map too) as the Headers constructor takes, else a record.
  const pairs: Iterable<readonly string[]> =
    Symbol.iterator in init
      ? (init as Iterable<readonly string[]>)
      : Object.entries(init);
  const replaced = new Set<string>();
  for (const pair of pairs) {
    if (pair.length !== 2) {
      // As the Headers constructor refuses it.
      throw new TypeError("header entries must be [name, value] pairs");
    }
    const name = String(pair[0]).toLowerCase();
    const value = pair[1]!;
    if (!replaced.has(name)) {
      replaced.add(name);
      header.delete(name);
    }
    header.append(name, value);
  }
}

/**
 * Sends a request; a failure to get a response is Unavailable, or Canceled
 * when the call was. A `then()` rather than an async function: the
 * function's frame and await were about 0.3 KB of a gRPC call's 17 KB
 * allocated (bench/memory.ts, part 4).
 */
export function clientSend(
  httpClient: HttpClient,
  request: HttpFieldsRequest,
): Promise<HttpResponse> {
  const signal = request.signal;
  let sent: Promise<HttpResponse>;
  try {
    // The same promise when it is one; an HttpClient written by hand may
    // answer another thenable.
    sent = Promise.resolve(httpSend(httpClient, request));
  } catch (e) {
    return Promise.reject(clientSendError(e, signal));
  }
  return sent.then(undefined, (e: unknown) => {
    throw clientSendError(e, signal);
  });
}

/**
 * The error of an HttpClient that gave no response: Unavailable, or
 * Canceled when the call was. For protocols that await the HttpClient
 * themselves, rather than through clientSend's extra step.
 */
export function clientSendError(
  error: unknown,
  signal: AbortSignal,
): ConnectError {
  return signal.aborted
    ? ConnectError.from(signal.reason, Code.Canceled)
    : httpClientError(error);
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
