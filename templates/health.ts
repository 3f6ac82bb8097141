import type { DescService } from "@bufbuild/protobuf";
import type { Options } from "../generator/options.ts";
import { code, local, rt, type Code } from "./code.ts";
import { methodKey, serviceNames } from "./names.ts";

/** The service whose file gets the health server (gRPC's health checking protocol). */
export const healthServiceTypeName = "grpc.health.v1.Health";

// The runtime's methods (healthMethods) by rpc name; the implementation's
// keys follow the `naming` option.
const healthRuntimeMethods: Readonly<Record<string, string>> = {
  Check: "check",
  List: "list",
  Watch: "watch",
};

/**
 * What the file of grpc.health.v1.Health adds to the usual client and
 * server: a health server in one line, answering from a HealthStatus the
 * application sets (templates/service.ts adds it with the server side).
 */
export function healthTemplate(service: DescService, options: Options): Code {
  const names = serviceNames(service);
  const web = options.platform === "web";
  const handlerType = web
    ? rt("FetchServiceHandler")
    : rt("NodeServiceHandler");
  const combine = web
    ? "served beside the services with\n * `fetchHandler(eliza, health)`"
    : "served beside the services with\n * `nodeHandler(eliza, health)` or `fetchHandler(eliza, health)`";
  const serve = web
    ? "export default { fetch: fetchHandler(eliza, health) };"
    : "http2.createServer(nodeHandler(eliza, health)).listen(8080);";
  const methods = service.methods
    .filter((m) => healthRuntimeMethods[m.name] !== undefined)
    .map(
      (m) =>
        `${methodKey(m, options)}: methods.${healthRuntimeMethods[m.name]}`,
    )
    .join(", ");
  // healthMethods' keys are those of naming=camel.
  const share =
    options.naming === "camel"
      ? "`healthMethods(status)`"
      : "`healthMethods(status)`'s methods (as\n * `Check`, `List` and `Watch`)";
  return code`/**
 * A handler of ${service.typeName}, ${combine},
 * and the status it answers from.
 */
export interface ${local("HealthServer")} extends ${handlerType} {
  /** Set statuses here: \`health.status.set("acme.v1.Billing", "NOT_SERVING")\`. */
  readonly status: ${rt("HealthStatus")};
}

/**
 * Serves ${service.typeName} (gRPC's health checking protocol, as
 * grpc-health-probe and Kubernetes' gRPC probes call it) from a new
 * HealthStatus where the services given (handlers, lists of handlers,
 * definitions or names) and the server ("") are SERVING. \`Check\` of a
 * service without a status fails \`not_found\`; \`Watch\` sends the
 * status, then its changes.
 *
 * \`\`\`ts
 * const health = createHealthServer([eliza]);
 * ${serve}
 * health.status.set(ElizaServiceDefinition.typeName, "NOT_SERVING");
 * health.status.shutdown(); // as a graceful shutdown starts: all NOT_SERVING
 * \`\`\`
 *
 * To share one HealthStatus between servers, pass
 * ${share} to \`${names.createHandler}\` instead.
 */
export function ${local("createHealthServer")}(
  services: readonly (
    | string
    | { readonly path: string }
    | readonly { readonly path: string }[]
  )[] = [],
  options: ${rt("HandlerOptions")} = {},
): ${local("HealthServer")} {
  const status = ${rt("healthStatusOf")}(services);
  const methods = ${rt("healthMethods")}(status);
  return {
    ...${local(names.createHandler)}({ ${methods} }, options),
    status,
  };
}`;
}
