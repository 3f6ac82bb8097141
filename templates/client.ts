import type { DescService } from "@bufbuild/protobuf";
import type { Options } from "../generator/options.ts";
import { code, joinCode, local, rt, schema, shape, type Code } from "./code.ts";
import {
  docComment,
  isNoSideEffects,
  memberName,
  methodKey,
  serviceNames,
} from "./names.ts";

/** The client interface of a service and its factory. */
export function clientTemplate(service: DescService, options: Options): Code {
  const methods = service.methods;
  const names = serviceNames(service);
  const kinds = {
    unary: ["UnaryMethod", "clientUnaryMethod", "call"],
    server_streaming: [
      "ServerStreamingMethod",
      "clientServerStreamingMethod",
      "stream",
    ],
    client_streaming: [
      "ClientStreamingMethod",
      "clientClientStreamingMethod",
      "stream",
    ],
    bidi_streaming: [
      "BidiStreamingMethod",
      "clientBidiStreamingMethod",
      "stream",
    ],
  } as const;
  const members = methods.map((m) => {
    const [type] = kinds[m.methodKind];
    return code`${docComment(m, "  ")}  readonly ${memberName(methodKey(m, options))}: ${rt(type)}<typeof ${schema(m.input)}, ${shape(m.output)}>;`;
  });
  const entries = methods.map((m) => {
    const [, bind, caller] = kinds[m.methodKind];
    const key = methodKey(m, options);
    return code`    ${memberName(key)}: ${rt(bind)}(${caller}, methods.${key}),`;
  });
  const unary = methods.some((m) => m.methodKind === "unary");
  const streaming = methods.some((m) => m.methodKind !== "unary");
  const callers = options.protocols.map((protocol) => {
    const [unaryCaller, streamCaller] = clientCallerFactories[protocol];
    const parts = [
      code`name: ${JSON.stringify(protocol)}`,
      unary ? code`unary: ${rt(unaryCaller)}` : undefined,
      streaming ? code`stream: ${rt(streamCaller)}` : undefined,
    ].filter((p) => p !== undefined);
    return code`    { ${joinCode(parts, ", ")} },`;
  });
  const bind: Code[] = [];
  if (unary) bind.push(code`  const call = protocol.unary(config);`);
  if (streaming) bind.push(code`  const stream = protocol.stream(config);`);
  const web = options.platform === "web";
  const optionsType = web ? rt("ClientOptions") : rt("NodeClientOptions");
  // Only client- and bidi-streaming calls stream their request bodies
  // (server streaming sends its one request whole). Without them, the
  // default fetch client cannot stream, which keeps that code out of
  // bundles; createFetchHttpClient, which can, stays in the file for users
  // with a fetch of their own.
  const streamingRequests = methods.some(
    (m) =>
      m.methodKind === "client_streaming" || m.methodKind === "bidi_streaming",
  );
  const httpClient = !web
    ? code`${rt("nodeClientHttpClient")}(options, ${JSON.stringify(options.protocols[0])})`
    : streamingRequests
      ? code`options.httpClient ?? ${rt("createFetchHttpClient")}()`
      : code`options.httpClient ?? ${rt("fetchHttpClient")}(globalThis.fetch)`;
  // Web clients carry no compression unless the user passes one in: fetch
  // undoes the HTTP compression of unary responses itself, and gzip through
  // CompressionStream would be in every bundle otherwise.
  const featureList = [
    web ? undefined : code`compressions: ${rt("compressionDefaults")}()`,
    service.methods.some(isNoSideEffects)
      ? code`get: ${rt("connectGetRequest")}`
      : undefined,
    options.json ? code`json: ${rt("codecJson")}` : undefined,
  ].filter((f) => f !== undefined);
  const features =
    featureList.length === 0 ? "{}" : code`{ ${joinCode(featureList, ", ")} }`;
  const webDoc = web
    ? code`
 *
 * Requests go through the global fetch; \`httpClient: ${rt("createFetchHttpClient")}(yourFetch)\`
 * sends them through another. Compression is opt-in, beyond what fetch
 * decodes itself: pass \`compressions: [${rt("webCompressionGzip")}]\` to send
 * gzip (\`sendCompression\`) and accept it in streamed messages.`
    : "";
  return code`/**
 * A typed client of ${service.typeName}. Unary and client-streaming methods
 * resolve to the response message, streaming responses are async iterables;
 * each method's \`raw\` form also gives the response headers and trailers.
 */
export interface ${local(names.client)} {
${joinCode(members, "\n")}
}

/**
 * Creates a client of ${service.typeName} calling \`baseUrl\` (the server's
 * root, without the service path) over ${protocolList(options)}.${webDoc}
 */
export function ${local(names.createClient)}(
  baseUrl: string,
  options: ${optionsType} = {},
): ${local(names.client)} {
  const config = ${rt("createClientConfig")}(baseUrl, options, ${httpClient}, ${features});
  // The file's ClientProtocols, with the callers its methods need; the
  // first is the default.
  const protocol = ${rt("clientProtocol")}(options.protocol, [
${joinCode(callers, "\n")}
  ]);
${joinCode(bind, "\n")}
  const methods = ${local(names.definition)}.methods;
  return {
${joinCode(entries, "\n")}
  };
}`;
}

// The caller factories of each protocol (its ClientProtocol's unary and
// stream): unary, then streaming.
const clientCallerFactories = {
  connect: ["createConnectUnaryCaller", "createConnectStreamCaller"],
  grpc: ["createGrpcUnaryCaller", "createGrpcStreamCaller"],
  "grpc-web": ["createGrpcWebUnaryCaller", "createGrpcWebStreamCaller"],
} as const;

function protocolList(options: Options): string {
  const names = { connect: "Connect", grpc: "gRPC", "grpc-web": "gRPC-Web" };
  const [first, ...rest] = options.protocols.map((p) => names[p]);
  return rest.length === 0
    ? first!
    : `${first} (the default; \`protocol\` chooses ${rest.join(" or ")})`;
}
