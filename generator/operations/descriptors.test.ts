import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  descriptorsPath,
  embeddedDescriptors,
} from "../build/embed-operation-protos.ts";
import { packageRoot } from "../package-root.ts";
import { healthProto, reflectionProto } from "./descriptors.ts";

describe("the embedded health and reflection descriptors", () => {
  it("are those of the protos in generator/operations/proto (else run generator/build/embed-operation-protos.ts)", () => {
    const root = packageRoot();
    expect(readFileSync(join(root, descriptorsPath), "utf8")).toBe(
      embeddedDescriptors(root),
    );
  });

  it("declare the services gRPC's clients call", () => {
    const health = fromBinary(
      FileDescriptorProtoSchema,
      base64Decode(healthProto),
    );
    expect(health.package).toBe("grpc.health.v1");
    expect(health.service.map((s) => s.name)).toEqual(["Health"]);
    expect(health.service[0]!.method.map((m) => m.name)).toEqual([
      "Check",
      "List",
      "Watch",
    ]);
    const reflection = fromBinary(
      FileDescriptorProtoSchema,
      base64Decode(reflectionProto),
    );
    expect(reflection.package).toBe("grpc.reflection.v1");
    expect(reflection.service[0]!.method[0]).toMatchObject({
      name: "ServerReflectionInfo",
      clientStreaming: true,
      serverStreaming: true,
    });
    // Imports would have to come before them in a request's files.
    expect([...health.dependency, ...reflection.dependency]).toEqual([]);
  });
});
