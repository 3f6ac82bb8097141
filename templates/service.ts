import type { DescService } from "@bufbuild/protobuf";
import type { Options } from "../generator/options.ts";
import { clientTemplate } from "./client.ts";
import { joinCode, type Code } from "./code.ts";
import { definition } from "./definition.ts";
import { healthServiceTypeName, healthTemplate } from "./health.ts";
import { reflectionServiceName, reflectionTemplate } from "./reflection.ts";
import { serverTemplate } from "./server.ts";

export { serviceNames } from "./names.ts";

/** The service's code after the runtime: its definition, then the client and the server parts the options ask for. */
export function serviceTemplate(service: DescService, options: Options): Code {
  const parts: Code[] = [definition(service, options)];
  if (options.client) parts.push(clientTemplate(service, options));
  if (options.server) parts.push(serverTemplate(service, options));
  if (options.server && service.typeName === healthServiceTypeName) {
    parts.push(healthTemplate(service, options));
  }
  if (options.server && service.typeName === reflectionServiceName) {
    parts.push(reflectionTemplate(service, options));
  }
  return joinCode(parts, "\n\n");
}
