import { bodyDefaultReadMaxBytes } from "../core/body.ts";
import {
  codecBinary,
  type Codec,
  type JsonCodecFactory,
} from "../core/codec.ts";
import type { Compression } from "../core/compression.ts";
import {
  decompressDefaultBudget,
  decompressDefaultQueue,
  decompressGate,
  type DecompressGate,
} from "../core/decompress-gate.ts";
import type { Interceptor } from "../core/interceptors.ts";
import {
  handlerUnsupportedMediaType,
  type HandlerOptions,
  type ServerResponse,
} from "./handler.ts";

/**
 * HandlerOptions with every default filled in, resolved once per service:
 * what every protocol reads, and nothing that belongs to one of them.
 */
export interface ServerConfig {
  readonly interceptors: readonly Interceptor[];
  readonly contextValues: HandlerOptions["contextValues"];
  readonly readMaxBytes: number;
  readonly compressions: readonly Compression[];
  /** Their names joined by "," without spaces (grpc-js splits on "," alone), for grpc-accept-encoding. */
  readonly compressionNames: string;
  readonly compressMinBytes: number;
  readonly binaryCodec: Codec;
  /** Undefined in files generated with json=false. */
  readonly jsonCodec: Codec | undefined;
  readonly requireConnectProtocolHeader: boolean;
  readonly onError: HandlerOptions["onError"];
  /** Shared by all calls of the handler: bounds decompressions in progress. */
  readonly decompressGate: DecompressGate;
  readonly redactErrors: boolean;
}

/**
 * Resolves a service's options. `compressions` are the file's defaults
 * (node:zlib or web ones), `json` is absent in files generated with
 * json=false: both are passed in so that this code names neither.
 */
export function serverConfig(
  options: HandlerOptions,
  compressions: readonly Compression[],
  json: JsonCodecFactory | undefined,
): ServerConfig {
  const chosen = options.compressions ?? compressions;
  const readMaxBytes = options.readMaxBytes ?? bodyDefaultReadMaxBytes;
  return {
    interceptors: options.interceptors ?? [],
    contextValues: options.contextValues,
    readMaxBytes,
    compressions: chosen,
    compressionNames: chosen.map((c) => c.name).join(","),
    compressMinBytes: options.compressMinBytes ?? 1024,
    binaryCodec: codecBinary,
    jsonCodec: json?.(options.jsonOptions),
    requireConnectProtocolHeader: options.requireConnectProtocolHeader ?? false,
    onError: options.onError,
    redactErrors: options.redactErrors ?? true,
    decompressGate: decompressGate(
      options.decompressionBudget ?? decompressDefaultBudget,
      readMaxBytes,
      options.decompressionQueue ?? decompressDefaultQueue,
    ),
  };
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
