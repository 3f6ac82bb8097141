import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { getComments } from "@bufbuild/protoplugin";
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

/** The names a service file exports; all start with the service name, so files never clash. */
export function serviceNames(service: DescService) {
  const s = service.name;
  return {
    definition: `${s}Definition`,
    client: `${s}Client`,
    createClient: `create${s}Client`,
    implementation: `${s}Implementation`,
    createHandler: `create${s}Handler`,
  };
}

/** The service's code after the runtime: its definition, then the client and the server parts the options ask for. */
export function serviceTemplate(service: DescService, options: Options): Code {
  const parts: Code[] = [definition(service, options)];
  if (options.client) parts.push(client(service, service.methods, options));
  if (options.server) parts.push(server(service, service.methods, options));
  return joinCode(parts, "\n\n");
}

/** The property name of a method in the client and the implementation. */
export function methodKey(method: DescMethod, options: Options): string {
  if (options.naming === "camel") return method.localName;
  // localName escapes names like `constructor` with a trailing $; keep that.
  return method.localName.endsWith("$") ? `${method.name}$` : method.name;
}

function docComment(method: DescMethod, indent = ""): string {
  const lines: string[] = [];
  const leading = getComments(method).leading;
  if (leading !== undefined) {
    lines.push(
      ...leading
        .trim()
        .split("\n")
        .map((l) => l.trim().replaceAll("*/", "*\\/")),
      "",
    );
  }
  lines.push(`@generated from rpc ${method.parent.typeName}.${method.name}`);
  if (method.deprecated) lines.push("@deprecated");
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`).join("\n")}\n${indent} */\n`;
}

function isNoSideEffects(method: DescMethod): boolean {
  return method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
}

function compressionDefaults(options: Options): Code {
  return options.platform === "web"
    ? code`${rt("webCompressionDefaults")}()`
    : code`${rt("compressionDefaults")}()`;
}

function definition(service: DescService, options: Options): Code {
  const names = serviceNames(service);
  const methods = service.methods.map(
    (m) => code`    ${methodKey(m, options)}: {
      service: ${JSON.stringify(service.typeName)},
      name: ${JSON.stringify(m.name)},
      path: ${JSON.stringify(`/${service.typeName}/${m.name}`)},
      kind: ${JSON.stringify(m.methodKind)},
      input: ${schema(m.input)},
      output: ${schema(m.output)},
      noSideEffects: ${String(isNoSideEffects(m))},
    },`,
  );
  return code`/**
 * ${service.typeName}: its name, its path prefix for routing, and its methods.
 */
export const ${local(names.definition)} = {
  typeName: ${JSON.stringify(service.typeName)},
  path: ${JSON.stringify(`/${service.typeName}/`)},
  methods: {
${joinCode(methods, "\n")}
  },
} as const;`;
}

function client(
  service: DescService,
  methods: DescMethod[],
  options: Options,
): Code {
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
    return code`${docComment(m, "  ")}  readonly ${methodKey(m, options)}: ${rt(type)}<typeof ${schema(m.input)}, ${shape(m.output)}>;`;
  });
  const entries = methods.map((m) => {
    const [, bind, caller] = kinds[m.methodKind];
    return code`    ${methodKey(m, options)}: ${rt(bind)}(${caller}, methods.${methodKey(m, options)}),`;
  });
  const callers: Code[] = [];
  if (methods.some((m) => m.methodKind === "unary")) {
    callers.push(
      code`  const call = ${rt("createConnectUnaryCaller")}(config);`,
    );
  }
  if (methods.some((m) => m.methodKind !== "unary")) {
    callers.push(
      code`  const stream = ${rt("createConnectStreamCaller")}(config);`,
    );
  }
  const web = options.platform === "web";
  const optionsType = web ? rt("ClientOptions") : rt("NodeClientOptions");
  const httpClient = web
    ? code`options.httpClient ?? ${rt("createFetchHttpClient")}()`
    : code`${rt("nodeClientHttpClient")}(options)`;
  const get = service.methods.some(isNoSideEffects)
    ? code`, getQuery: ${rt("connectGetQuery")}`
    : "";
  const features = code`{ compressions: ${compressionDefaults(options)}${get} }`;
  return code`/**
 * A typed client of ${service.typeName}. Unary and client-streaming methods
 * resolve to the response message, streaming responses are async iterables;
 * each method's \`raw\` form also gives the response headers and trailers.
 */
export interface ${local(names.client)} {
${joinCode(members, "\n")}
}

/**
 * Creates a client of ${service.typeName} speaking the Connect protocol to
 * \`baseUrl\` (the server's root, without the service path).
 */
export function ${local(names.createClient)}(
  baseUrl: string,
  options: ${optionsType} = {},
): ${local(names.client)} {
  const config = ${rt("createClientConfig")}(baseUrl, options, ${httpClient}, ${features});
${joinCode(callers, "\n")}
  const methods = ${local(names.definition)}.methods;
  return {
${joinCode(entries, "\n")}
  };
}`;
}

function server(
  service: DescService,
  methods: DescMethod[],
  options: Options,
): Code {
  const names = serviceNames(service);
  const members = methods.map((m) => {
    const output = code`${protobufType("MessageInitShape")}<typeof ${schema(m.output)}>`;
    const key = methodKey(m, options);
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
  const get = service.methods.some(isNoSideEffects)
    ? code`, parseGetQuery: ${rt("connectParseGetQuery")}`
    : "";
  const stream = service.methods.some((m) => m.methodKind !== "unary")
    ? code`, handleStream: ${rt("connectHandleStream")}`
    : "";
  const features = code`{ compressions: ${compressionDefaults(options)}${get}${stream} }`;
  return code`/**
 * The server side of ${service.typeName}: one function per method, returning
 * the response message (or a plain object of its fields).
 */
export interface ${local(names.implementation)} {
${joinCode(members, "\n")}
}

/**
 * Serves ${service.typeName} with the given implementation; methods it
 * leaves out answer \`unimplemented\`. Use \`.node\` with
 * node:http, node:https, node:http2 or Express, and \`.fetch\` with a Fetch API
 * server; several services combine with ${web ? "`fetchHandler(a, b)`" : "`nodeHandler(a, b)`"}.
 */
export function ${local(names.createHandler)}(
  implementation: Partial<${local(names.implementation)}>,
  options: ${rt("HandlerOptions")} = {},
): ${handlerType} {
  const methods = ${local(names.definition)}.methods;
  return ${withAdapters}(
    ${rt("createServiceHandler")}(
      ${local(names.definition)}.path,
      [
${joinCode(entries, "\n")}
      ],
      options,
      ${features},
    ),
  );
}`;
}
