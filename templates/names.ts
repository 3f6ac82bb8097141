import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { getComments } from "@bufbuild/protoplugin";
import type { Options } from "../generator/options.ts";
import { code, rt, type Code } from "./code.ts";

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

/** The property name of a method in the client and the implementation. */
export function methodKey(method: DescMethod, options: Options): string {
  if (options.naming === "camel") return method.localName;
  // localName escapes names like `constructor` with a trailing $; keep that.
  return method.localName.endsWith("$") ? `${method.name}$` : method.name;
}

/** The JSDoc of a method: its proto comment and where it comes from. */
export function docComment(method: DescMethod, indent = ""): string {
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

export function isNoSideEffects(method: DescMethod): boolean {
  return method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
}

/** The platform's default compressions: node:zlib, or CompressionStream for the web. */
export function compressionDefaults(options: Options): Code {
  return options.platform === "web"
    ? code`${rt("webCompressionDefaults")}()`
    : code`${rt("compressionDefaults")}()`;
}
