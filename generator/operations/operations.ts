/**
 * The gRPC services a server runs in production beside its own, which the
 * plugin adds to its output on request: `health=true` adds
 * grpc.health.v1.Health, `reflection=true` grpc.reflection.v1's
 * ServerReflection.
 *
 * Each is added to the request as if the user had asked for its proto: the
 * plugin writes its service file as for any other service (templates add
 * the health and reflection APIs to those two), and protoc-gen-es, run here
 * with the user's target and import options, writes its `_pb` message
 * file. Nothing is added to outputs that do not ask.
 */
import { fromBinary } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import {
  FileDescriptorProtoSchema,
  type CodeGeneratorRequest,
  type CodeGeneratorResponse_File,
} from "@bufbuild/protobuf/wkt";
import { protocGenEs } from "@bufbuild/protoc-gen-es/dist/cjs/src/protoc-gen-es-plugin.js";
import { builtinOptionNames } from "../options.ts";
import { healthProto, reflectionProto } from "./descriptors.ts";

/** The options that ask for the services, and the proto each adds. */
const operations = [
  {
    option: "health",
    name: "grpc/health/v1/health.proto",
    descriptor: healthProto,
  },
  {
    option: "reflection",
    name: "grpc/reflection/v1/reflection.proto",
    descriptor: reflectionProto,
  },
] as const;

/**
 * Adds the protos the request's parameter asks for to the files to
 * generate. Returns the names of those whose `_pb` file this plugin must
 * write: all but those the user generates already (protoc-gen-es, in the
 * same `buf generate`, writes theirs).
 */
export function addOperationProtos(request: CodeGeneratorRequest): string[] {
  const pairs = parameterPairs(request.parameter);
  const ours: string[] = [];
  for (const { option, name, descriptor } of operations) {
    // parseOptions refuses any other value, with a message naming it.
    if (!pairs.some(([key, value]) => key === option && value === "true")) {
      continue;
    }
    if (request.fileToGenerate.includes(name)) continue;
    if (!request.protoFile.some((f) => f.name === name)) {
      // No imports, so it may go last in the topological order.
      request.protoFile.push(
        fromBinary(FileDescriptorProtoSchema, base64Decode(descriptor)),
      );
    }
    request.fileToGenerate.push(name);
    ours.push(name);
  }
  return ours;
}

/**
 * The `_pb` files of `names` (added by addOperationProtos), as protoc-gen-es
 * writes them with the request's target and import options, and with
 * erasable syntax (enums as objects), which Node's type stripping loads.
 */
export function operationMessageFiles(
  request: CodeGeneratorRequest,
  names: readonly string[],
): CodeGeneratorResponse_File[] {
  if (names.length === 0) return [];
  const pairs = parameterPairs(request.parameter)
    .filter(([key]) => builtinOptionNames.includes(key))
    .map(([key, value]) => (value === "" ? key : `${key}=${value}`));
  // Like every protoplugin plugin, it throws rather than answer an error.
  return protocGenEs.run({
    ...request,
    fileToGenerate: [...names],
    parameter: [...pairs, "erasable_syntax=true"].join(","),
  }).file;
}

// The parameter as protoplugin reads it: pairs separated by ",", in order
// (map_imports and rewrite_imports may repeat).
function parameterPairs(parameter: string): [key: string, value: string][] {
  return parameter
    .split(",")
    .map((pair): [string, string] => {
      const eq = pair.indexOf("=");
      return eq < 0
        ? [pair.trim(), ""]
        : [pair.slice(0, eq).trim(), pair.slice(eq + 1).trim()];
    })
    .filter(([key]) => key !== "");
}
