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
  // One exported value per protocol the file was generated with, holding
  // the callers its methods need: the application imports those it speaks,
  // and a bundler leaves the others out.
  const protocolValues = options.protocols.map((protocol) => {
    const [unaryCaller, streamCaller] = clientCallerFactories[protocol];
    const parts = [
      code`name: ${JSON.stringify(protocol)}`,
      unary ? code`unary: ${rt(unaryCaller)}` : undefined,
      streaming ? code`stream: ${rt(streamCaller)}` : undefined,
    ].filter((p) => p !== undefined);
    const [title, note] = protocolDocs[protocol];
    const doc =
      protocol === options.protocols[0]
        ? `${title}, the default protocol of ${names.createClient}${note}.`
        : `${title}${note}: \`${names.createClient}(baseUrl, { protocol: ${protocolValueNames[protocol]} })\`.`;
    return code`/** ${doc} */
export const ${local(protocolValueNames[protocol])}: ${rt("ClientProtocol")} = { ${joinCode(parts, ", ")} };`;
  });
  const bind: Code[] = [];
  if (unary) {
    bind.push(
      code`  const call = ${rt("clientProtocolCaller")}(protocol, "unary")(config);`,
    );
  }
  if (streaming) {
    bind.push(
      code`  const stream = ${rt("clientProtocolCaller")}(protocol, "stream")(config);`,
    );
  }
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
    ? code`${rt("nodeClientHttpClient")}(options, protocol)`
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
  ].filter((f) => f !== undefined);
  const features =
    featureList.length === 0 ? "{}" : code`{ ${joinCode(featureList, ", ")} }`;
  const jsonDoc = options.json
    ? code`
 *
 * Messages go as binary protobuf; \`codec: ${rt("jsonCodec")}()\` sends and reads JSON.`
    : "";
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

${joinCode(protocolValues, "\n\n")}

/**
 * Creates a client of ${service.typeName} calling \`baseUrl\` (the server's
 * root, without the service path) over ${protocolList(options)}.${jsonDoc}${webDoc}
 */
export function ${local(names.createClient)}(
  baseUrl: string,
  options: ${optionsType} = {},
): ${local(names.client)} {
  const protocol = options.protocol ?? ${local(protocolValueNames[options.protocols[0]!])};
  const config = ${rt("createClientConfig")}(baseUrl, options, ${httpClient}, ${features});
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

// The name of each protocol's exported value (the client's `protocol` option).
const protocolValueNames = {
  connect: "connectProtocol",
  grpc: "grpcProtocol",
  "grpc-web": "grpcWebProtocol",
} as const;

// Each protocol's name in prose, and what to know of it.
const protocolDocs = {
  connect: ["Connect", ""],
  grpc: ["gRPC", " (HTTP/2 only)"],
  "grpc-web": ["gRPC-Web", ""],
} as const;

function protocolList(options: Options): string {
  const [first, ...others] = options.protocols;
  const head = protocolDocs[first!][0];
  const named = others.map(
    (p) => `${protocolDocs[p][0]} (\`protocol: ${protocolValueNames[p]}\`)`,
  );
  const last = named.pop();
  return last === undefined
    ? head
    : `${[`${head} (the default)`, ...named].join(", ")} or ${last}`;
}
