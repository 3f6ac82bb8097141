import type { DescService } from "@bufbuild/protobuf";
import type { Options } from "../generator/options.ts";
import { code, joinCode, local, schema, type Code } from "./code.ts";
import {
  isNoSideEffects,
  memberName,
  methodKey,
  serviceNames,
} from "./names.ts";

/** The service's definition: its name, path prefix and methods, as the runtime reads them. */
export function definition(service: DescService, options: Options): Code {
  const names = serviceNames(service);
  const methods = service.methods.map(
    (m) => code`    ${memberName(methodKey(m, options))}: {
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
