/**
 * `node generator/build/embed-operation-protos.ts`: compiles the protos in
 * generator/operations/proto with buf and writes their descriptors into
 * generator/operations/descriptors.ts.
 *
 * Why: with health=true or reflection=true the plugin adds gRPC's health or
 * reflection proto to its output, and a plugin gets descriptors, not proto
 * source, and has no compiler at hand. The descriptors are built here, at
 * development time; descriptors.test.ts fails when they are stale.
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import {
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
} from "@bufbuild/protobuf/wkt";
import { packageRoot } from "../package-root.ts";

/** The embedded files: the exported constant of each, by proto file name. */
export const operationProtos = {
  "grpc/health/v1/health.proto": "healthProto",
  "grpc/reflection/v1/reflection.proto": "reflectionProto",
} as const;

/** The text of descriptors.ts for the protos as they are now. */
export function embeddedDescriptors(root: string): string {
  const set = fromBinary(
    FileDescriptorSetSchema,
    execFileSync(
      join(root, "node_modules/.bin/buf"),
      ["build", "generator/operations/proto", "-o", "-#format=binpb"],
      { cwd: root, maxBuffer: 16 * 1024 * 1024 },
    ),
  );
  const lines = [
    "// Written by generator/build/embed-operation-protos.ts from the protos in",
    "// generator/operations/proto; run it again after changing them.",
    "",
  ];
  for (const [name, constant] of Object.entries(operationProtos)) {
    const file = set.file.find((f) => f.name === name);
    if (file === undefined) throw new Error(`buf built no ${name}`);
    const base64 = base64Encode(toBinary(FileDescriptorProtoSchema, file));
    lines.push(
      `/** ${name}, a serialized FileDescriptorProto with its comments, in base64. */`,
      `export const ${constant} =`,
      ...chunks(base64, 72).map(
        (c, i, all) =>
          `  ${JSON.stringify(c)}${i === all.length - 1 ? ";" : " +"}`,
      ),
      "",
    );
  }
  return lines.join("\n");
}

function chunks(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

export const descriptorsPath = "generator/operations/descriptors.ts";

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const root = packageRoot();
  writeFileSync(join(root, descriptorsPath), embeddedDescriptors(root));
}
