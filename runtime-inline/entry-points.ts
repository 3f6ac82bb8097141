/**
 * The contract between templates and runtime: the declarations a template
 * may name with `rt("name")` (templates/code.ts). tsc checks both sides: a
 * template naming something missing here, and an entry here naming
 * something the runtime lacks, fail to compile. The generator reads this
 * interface to find each entry's declaration and copies that and whatever
 * it reaches; this module itself is never copied.
 *
 * A property's type refers to its declaration: `typeof x` for a value, the
 * type itself for a type (its type arguments do not matter).
 */
import type { DescMessage } from "@bufbuild/protobuf";
import type {
  BidiStreamingMethod,
  ClientStreamingMethod,
  ServerStreamingMethod,
  UnaryMethod,
  clientBidiStreamingMethod,
  clientClientStreamingMethod,
  clientServerStreamingMethod,
  clientUnaryMethod,
} from "./client/client.ts";
import type {
  ClientOptions,
  ClientProtocol,
  createClientConfig,
} from "./client/config.ts";
import type { clientProtocolCaller } from "./client/protocol.ts";
import type {
  connectGetRequest,
  createConnectUnaryCaller,
} from "./client/connect.ts";
import type { createConnectStreamCaller } from "./client/connect-stream.ts";
import type {
  createGrpcStreamCaller,
  createGrpcUnaryCaller,
} from "./client/grpc.ts";
import type {
  createGrpcWebStreamCaller,
  createGrpcWebUnaryCaller,
} from "./client/grpc-web.ts";
import type { jsonCodec } from "./core/codec.ts";
import type { compressionDefaults } from "./node/compression.ts";
import type { NodeServiceHandler, withNodeHandler } from "./node/handler.ts";
import type { http2ServerKeepalive } from "./node/keepalive.ts";
import type { shutdownGracefully } from "./node/shutdown.ts";
import type {
  NodeClientOptions,
  nodeClientHttpClient,
} from "./node/http2-client.ts";
import type { connectParseGetQuery } from "./protocol/connect.ts";
import type { connectServer } from "./server/connect.ts";
import type { connectHandleStream } from "./server/connect-stream.ts";
import type { grpcServeStream, grpcServer } from "./server/grpc.ts";
import type { grpcWebServer } from "./server/grpc-web.ts";
import type {
  HealthStatus,
  healthMethods,
  healthStatusOf,
} from "./server/health.ts";
import type {
  HandlerContext,
  HandlerOptions,
  ServiceHandlers,
  handlerClientStreaming,
  handlerServerStreaming,
} from "./server/handler.ts";
import type {
  reflectionAlphaService,
  reflectionHandler,
  reflectionImplementation,
} from "./server/reflection.ts";
import type { createServiceHandler } from "./server/router.ts";
import type {
  webCompressionDefaults,
  webCompressionGzip,
} from "./web/compression.ts";
import type {
  createFetchHttpClient,
  fetchHttpClient,
} from "./web/fetch-client.ts";
import type { FetchServiceHandler, withFetchHandler } from "./web/handler.ts";

export interface EntryPoints {
  // The service's API: types its signatures name.
  readonly HandlerContext: HandlerContext;
  readonly HandlerOptions: HandlerOptions;
  readonly ClientOptions: ClientOptions;
  readonly NodeClientOptions: NodeClientOptions;
  readonly NodeServiceHandler: NodeServiceHandler;
  readonly FetchServiceHandler: FetchServiceHandler;
  readonly ServiceHandlers: ServiceHandlers;
  readonly UnaryMethod: UnaryMethod<DescMessage, unknown>;
  readonly ServerStreamingMethod: ServerStreamingMethod<DescMessage, unknown>;
  readonly ClientStreamingMethod: ClientStreamingMethod<DescMessage, unknown>;
  readonly BidiStreamingMethod: BidiStreamingMethod<DescMessage, unknown>;

  // Client: configuration, transports, protocols, typed methods.
  readonly createClientConfig: typeof createClientConfig;
  readonly ClientProtocol: ClientProtocol;
  readonly clientProtocolCaller: typeof clientProtocolCaller;
  readonly nodeClientHttpClient: typeof nodeClientHttpClient;
  readonly fetchHttpClient: typeof fetchHttpClient;
  readonly createFetchHttpClient: typeof createFetchHttpClient;
  readonly connectGetRequest: typeof connectGetRequest;
  readonly createConnectUnaryCaller: typeof createConnectUnaryCaller;
  readonly createConnectStreamCaller: typeof createConnectStreamCaller;
  readonly createGrpcUnaryCaller: typeof createGrpcUnaryCaller;
  readonly createGrpcStreamCaller: typeof createGrpcStreamCaller;
  readonly createGrpcWebUnaryCaller: typeof createGrpcWebUnaryCaller;
  readonly createGrpcWebStreamCaller: typeof createGrpcWebStreamCaller;
  readonly clientUnaryMethod: typeof clientUnaryMethod;
  readonly clientServerStreamingMethod: typeof clientServerStreamingMethod;
  readonly clientClientStreamingMethod: typeof clientClientStreamingMethod;
  readonly clientBidiStreamingMethod: typeof clientBidiStreamingMethod;

  // Server: the router, protocols, adapters of implementations, entry points.
  readonly createServiceHandler: typeof createServiceHandler;
  readonly connectServer: typeof connectServer;
  readonly connectHandleStream: typeof connectHandleStream;
  readonly connectParseGetQuery: typeof connectParseGetQuery;
  readonly grpcServer: typeof grpcServer;
  readonly grpcWebServer: typeof grpcWebServer;
  readonly grpcServeStream: typeof grpcServeStream;
  readonly handlerServerStreaming: typeof handlerServerStreaming;
  readonly handlerClientStreaming: typeof handlerClientStreaming;
  readonly withNodeHandler: typeof withNodeHandler;
  readonly withFetchHandler: typeof withFetchHandler;
  // Named in the Node handler factory's documentation, and so exported.
  readonly shutdownGracefully: typeof shutdownGracefully;
  readonly http2ServerKeepalive: typeof http2ServerKeepalive;
  // The file of grpc.health.v1.Health only: its statuses and methods.
  readonly HealthStatus: typeof HealthStatus;
  readonly healthMethods: typeof healthMethods;
  readonly healthStatusOf: typeof healthStatusOf;
  // Server reflection (the reflection file only): its implementation, and
  // v1alpha's descriptor and handler.
  readonly reflectionImplementation: typeof reflectionImplementation;
  readonly reflectionAlphaService: typeof reflectionAlphaService;
  readonly reflectionHandler: typeof reflectionHandler;

  // Both: codecs and compressions.
  readonly jsonCodec: typeof jsonCodec;
  readonly compressionDefaults: typeof compressionDefaults;
  readonly webCompressionDefaults: typeof webCompressionDefaults;
  readonly webCompressionGzip: typeof webCompressionGzip;
}
