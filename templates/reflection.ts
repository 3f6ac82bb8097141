import type { DescService } from "@bufbuild/protobuf";
import type { Options } from "../generator/options.ts";
import { code, local, protobufType, rt, schema, type Code } from "./code.ts";
import { methodKey, serviceNames } from "./names.ts";
import { serverParts } from "./server.ts";

/** The service whose file gets the reflection API (grpc-proto's, as the reflection option adds it). */
export const reflectionServiceName = "grpc.reflection.v1.ServerReflection";

/** What the reflection API adds to the file's exports. */
export const reflectionNames = {
  createHandlers: "createReflectionHandlers",
} as const;

/**
 * The one-line way to serve reflection, after the ServerReflection
 * service's server API: handlers of v1 and v1alpha answering for the given
 * handlers' services from the descriptors their protoc-gen-es files embed.
 */
export function reflectionTemplate(
  service: DescService,
  options: Options,
): Code {
  const names = serviceNames(service);
  const web = options.platform === "web";
  const handlerType = web
    ? rt("FetchServiceHandler")
    : rt("NodeServiceHandler");
  const withAdapters = web ? rt("withFetchHandler") : rt("withNodeHandler");
  const combine = web ? "fetchHandler" : "nodeHandler";
  // The implementation's key follows the naming option (`ServerReflectionInfo`
  // with naming=proto); the runtime's implementation has the camel one.
  const key = methodKey(service.methods[0]!, options);
  return code`/**
 * Serves gRPC server reflection, \`grpc.reflection.v1.ServerReflection\` and
 * the older, wire-identical \`grpc.reflection.v1alpha.ServerReflection\`, for
 * the services of \`handlers\` (and for these two): \`buf curl\` without
 * \`--schema\`, grpcurl, Postman and other reflection clients then find
 * their methods and messages. It answers from the descriptors their
 * protoc-gen-es files embed, sending each file with its imports.
 * \`options.files\` adds files no service imports (extensions, types packed
 * in \`Any\`). Serve the result beside the services:
 *
 * \`\`\`ts
 * ${combine}(eliza, health, ${reflectionNames.createHandlers}([eliza, health]))
 * \`\`\`
 *
 * Its one method is a bidi stream, which reflection clients call over
 * HTTP/2 (\`buf curl\` reflects over h2c for an \`http://\` URL, whatever
 * \`--protocol\`): serve it on an HTTP/2 server.
 *
 * Reflection describes every message and method of those services to anyone
 * who can call it; restrict it with \`options.interceptors\` where that
 * matters.
 */
export function ${local(reflectionNames.createHandlers)}(
  handlers: readonly ${rt("ServiceHandlers")}[],
  options: ${rt("HandlerOptions")} & {
    readonly files?: readonly ${protobufType("DescFile")}[];
  } = {},
): readonly ${handlerType}[] {
  const v1alpha = ${rt("reflectionAlphaService")}(${schema(service)});
  const reflection = ${rt("reflectionImplementation")}(
    [
      ${schema(service)},
      v1alpha,
      ...handlers.flat().map((handler) => handler.service),
    ],
    options.files,
  );
  return [
    ${local(names.createHandler)}(
      { ${key}: reflection.serverReflectionInfo },
      options,
    ),
    ${withAdapters}(
      ${rt("reflectionHandler")}(v1alpha, reflection, options, ${serverParts(service, options)}),
    ),
  ];
}`;
}
