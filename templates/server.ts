import type { DescService } from "@bufbuild/protobuf";
import type { Options } from "../generator/options.ts";
import {
  code,
  joinCode,
  local,
  protobufType,
  rt,
  schema,
  shape,
  type Code,
} from "./code.ts";
import {
  compressionDefaults,
  docComment,
  isNoSideEffects,
  memberName,
  methodKey,
  serviceNames,
} from "./names.ts";

/** The implementation interface of a service and its handler factory. */
export function serverTemplate(service: DescService, options: Options): Code {
  const methods = service.methods;
  const names = serviceNames(service);
  const members = methods.map((m) => {
    const output = code`${protobufType("MessageInitShape")}<typeof ${schema(m.output)}>`;
    // A method signature: `new(` would be a construct signature.
    const key = memberName(methodKey(m, options));
    switch (m.methodKind) {
      case "unary":
        return code`${docComment(m, "  ")}  ${key}(
    request: ${shape(m.input)},
    context: ${rt("HandlerContext")},
  ): Promise<${output}> | ${output};`;
      case "server_streaming":
        return code`${docComment(m, "  ")}  ${key}(
    request: ${shape(m.input)},
    context: ${rt("HandlerContext")},
  ): AsyncIterable<${output}>;`;
      case "client_streaming":
        return code`${docComment(m, "  ")}  ${key}(
    requests: AsyncIterable<${shape(m.input)}>,
    context: ${rt("HandlerContext")},
  ): Promise<${output}> | ${output};`;
      case "bidi_streaming":
        return code`${docComment(m, "  ")}  ${key}(
    requests: AsyncIterable<${shape(m.input)}>,
    context: ${rt("HandlerContext")},
  ): AsyncIterable<${output}>;`;
    }
  });
  const entries = methods.map((m) => {
    const key = methodKey(m, options);
    switch (m.methodKind) {
      case "unary":
        return code`      implementation.${key} === undefined ? undefined : {
        method: methods.${key},
        unary: (request, context) =>
          implementation.${key}!(request as ${shape(m.input)}, context),
      },`;
      case "server_streaming":
        return code`      implementation.${key} === undefined ? undefined : {
        method: methods.${key},
        stream: ${rt("handlerServerStreaming")}((request, context) =>
          implementation.${key}!(request as ${shape(m.input)}, context),
        ),
      },`;
      case "client_streaming":
        return code`      implementation.${key} === undefined ? undefined : {
        method: methods.${key},
        stream: ${rt("handlerClientStreaming")}((requests, context) =>
          implementation.${key}!(requests as AsyncIterable<${shape(m.input)}>, context),
        ),
      },`;
      case "bidi_streaming":
        return code`      implementation.${key} === undefined ? undefined : {
        method: methods.${key},
        stream: (requests, context) =>
          implementation.${key}!(requests as AsyncIterable<${shape(m.input)}>, context),
      },`;
    }
  });
  const web = options.platform === "web";
  const handlerType = web
    ? rt("FetchServiceHandler")
    : rt("NodeServiceHandler");
  const withAdapters = web ? rt("withFetchHandler") : rt("withNodeHandler");
  const entryPoints = web
    ? "Use `.fetch` with a Fetch API server;\n * several services combine with `fetchHandler(a, b)`."
    : 'Use `.node` with\n * node:http, node:https, node:http2 or Express, `.http2Stream` as the\n * "stream" listener of an HTTP/2-only node:http2 server (faster),\n * `.fastify` as a Fastify plugin (`app.register(handler.fastify)`), and\n * `.fetch` with a Fetch API server (Next.js route handlers too); several\n * services combine with `nodeHandler(a, b)` / `fastifyPlugin(a, b)`.';
  // Named in the comment so that the file carries (and exports) them.
  const nodeOnly = web
    ? ""
    : code`\n * \`${rt("shutdownGracefully")}(server, { graceMs })\` stops a Node server\n * gracefully, letting calls in flight end;\n * \`${rt("http2ServerKeepalive")}(server, { pingIntervalMs })\` makes a\n * node:http2 server find and drop clients that went away without a word.`;
  const features = serverParts(service, options);
  return code`/**
 * The server side of ${service.typeName}: one function per method, returning
 * the response message (or a plain object of its fields).
 */
export interface ${local(names.implementation)} {
${joinCode(members, "\n")}
}

/**
 * Serves ${service.typeName} with the given implementation; methods it
 * leaves out answer \`unimplemented\`. ${entryPoints}${nodeOnly}
 */
export function ${local(names.createHandler)}(
  implementation: Partial<${local(names.implementation)}>,
  options: ${rt("HandlerOptions")} = {},
): ${handlerType} {
  const methods = ${local(names.definition)}.methods;
  return ${withAdapters}(
    ${rt("createServiceHandler")}(
      ${schema(service)},
      [
${joinCode(entries, "\n")}
      ],
      options,
      ${features},
    ),
  );
}`;
}

/**
 * What a service's handler plugs into the shared server code (the runtime's
 * ServerParts): the platform's compressions, JSON unless json=false, and
 * the protocols.
 */
export function serverParts(service: DescService, options: Options): Code {
  const json = options.json ? code`, json: ${rt("jsonCodec")}` : "";
  return code`{ compressions: ${compressionDefaults(options)}${json}, ${serverProtocols(service, options)} }`;
}

/**
 * The protocols a service's server plugs in: only those chosen, each built
 * from only the parts its methods use (streaming, Connect's GET).
 */
function serverProtocols(service: DescService, options: Options): Code {
  const parts: Code[] = [];
  const protocols = options.protocols;
  const streaming = service.methods.some((m) => m.methodKind !== "unary");
  if (protocols.includes("connect")) {
    const connectParts: Code[] = [];
    if (streaming) {
      connectParts.push(code`stream: ${rt("connectHandleStream")}`);
    }
    if (service.methods.some(isNoSideEffects)) {
      connectParts.push(code`parseGetQuery: ${rt("connectParseGetQuery")}`);
    }
    parts.push(
      connectParts.length === 0
        ? code`${rt("connectServer")}()`
        : code`${rt("connectServer")}({ ${joinCode(connectParts, ", ")} })`,
    );
  }
  const grpcStream = streaming ? rt("grpcServeStream") : "";
  if (protocols.includes("grpc")) {
    parts.push(code`${rt("grpcServer")}(${grpcStream})`);
  }
  if (protocols.includes("grpc-web")) {
    parts.push(code`${rt("grpcWebServer")}(${grpcStream})`);
  }
  return code`protocols: [${joinCode(parts, ", ")}]`;
}
