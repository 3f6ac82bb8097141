import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { getComments } from "@bufbuild/protoplugin";
import type { Options } from "../generator/options.ts";
import { ts } from "../generator/typescript.ts";
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

/**
 * Property names a method cannot have, so it gets them with a trailing `$`
 * (`then$`): every member of Object.prototype, which an implementation
 * object inherits (one that left the method out would "implement" it with
 * the inherited function, and `__proto__` in an object literal sets the
 * prototype); `toJSON`, which JSON.stringify calls; and `then`, which would
 * make a client, or an implementation, a thenable that `await` calls. A
 * superset of the names protobuf-es escapes in `localName`.
 */
const reservedPropertyNames = new Set([
  "constructor",
  "__defineGetter__",
  "__defineSetter__",
  "hasOwnProperty",
  "__lookupGetter__",
  "__lookupSetter__",
  "isPrototypeOf",
  "propertyIsEnumerable",
  "toString",
  "valueOf",
  "__proto__",
  "toLocaleString",
  "toJSON",
  "then",
]);

/**
 * The property name of a method in the definition, the client and the
 * implementation: `localName` (as connect-es) or the proto name, escaped.
 * Protobuf names cannot contain `$`, so an escaped name never meets another.
 */
export function methodKey(method: DescMethod, options: Options): string {
  // localName is the proto name with a lower-case first letter, escaped by
  // protobuf-es with a trailing $: the escaping is redone here.
  const name =
    options.naming === "camel"
      ? method.localName.replace(/\$$/, "")
      : method.name;
  return reservedPropertyNames.has(name) ? `${name}$` : name;
}

/**
 * A method key where it names a member of a type or an object literal. Keys
 * are identifier names, valid after `.` and as property names, but in a type
 * a member called `new` followed by `(` declares a construct signature, and
 * other keywords begin other members: keywords are quoted, and prettier
 * leaves the quotes only where they are needed.
 */
export function memberName(key: string): string {
  return isPlainIdentifier(key) ? key : JSON.stringify(key);
}

/** Whether TypeScript's scanner reads all of `name` as an identifier, not a keyword (contextual ones too). */
function isPlainIdentifier(name: string): boolean {
  const scanner = ts.createScanner(
    ts.ScriptTarget.Latest,
    true,
    ts.LanguageVariant.Standard,
    name,
  );
  return (
    scanner.scan() === ts.SyntaxKind.Identifier &&
    scanner.getTokenEnd() === name.length
  );
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
