import { create } from "@bufbuild/protobuf";
import {
  CodeGeneratorRequestSchema,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { addOperationProtos, operationMessageFiles } from "./operations.ts";

const userFile = create(FileDescriptorProtoSchema, {
  name: "demo/v1/demo.proto",
  package: "demo.v1",
  syntax: "proto3",
});

function request(parameter: string, extra: string[] = []) {
  return create(CodeGeneratorRequestSchema, {
    parameter,
    fileToGenerate: [userFile.name, ...extra],
    protoFile: [userFile],
  });
}

describe("addOperationProtos", () => {
  it("adds nothing unless asked", () => {
    for (const parameter of [
      "",
      "target=ts",
      "health=false,reflection=false",
    ]) {
      const req = request(parameter);
      expect(addOperationProtos(req)).toEqual([]);
      expect(req.fileToGenerate).toEqual([userFile.name]);
      expect(req.protoFile).toHaveLength(1);
    }
  });

  it("adds the protos asked for, to generate after the user's", () => {
    const req = request("target=ts,health=true");
    expect(addOperationProtos(req)).toEqual(["grpc/health/v1/health.proto"]);
    expect(req.fileToGenerate).toEqual([
      userFile.name,
      "grpc/health/v1/health.proto",
    ]);
    expect(req.protoFile.map((f) => f.name)).toEqual([
      userFile.name,
      "grpc/health/v1/health.proto",
    ]);
    const both = request("reflection=true,health=true");
    expect(addOperationProtos(both)).toEqual([
      "grpc/health/v1/health.proto",
      "grpc/reflection/v1/reflection.proto",
    ]);
  });

  it("leaves a proto the user generates to the user's protoc-gen-es", () => {
    const req = request("health=true", ["grpc/health/v1/health.proto"]);
    req.protoFile.push(
      create(FileDescriptorProtoSchema, {
        name: "grpc/health/v1/health.proto",
        package: "grpc.health.v1",
      }),
    );
    expect(addOperationProtos(req)).toEqual([]);
    expect(req.protoFile).toHaveLength(2);
    expect(req.fileToGenerate).toHaveLength(2);
  });

  it("uses a proto the user imports without generating it", () => {
    const imported = create(FileDescriptorProtoSchema, {
      name: "grpc/health/v1/health.proto",
      package: "grpc.health.v1",
    });
    const req = request("health=true");
    req.protoFile.unshift(imported);
    expect(addOperationProtos(req)).toEqual(["grpc/health/v1/health.proto"]);
    expect(req.protoFile).toHaveLength(2);
    expect(req.protoFile[0]).toBe(imported);
  });
});

describe("operationMessageFiles", () => {
  it("writes the _pb files with the user's target and import options", () => {
    const req = request(
      "target=js+dts,import_extension=js,health=true,client=false",
    );
    const names = addOperationProtos(req);
    const files = operationMessageFiles(req, names);
    expect(files.map((f) => f.name)).toEqual([
      "grpc/health/v1/health_pb.js",
      "grpc/health/v1/health_pb.d.ts",
    ]);
    const js = files[0]!.content;
    expect(js).toContain('parameter "target=js+dts,import_extension=js');
    expect(js).toContain("export const HealthCheckResponse_ServingStatus");
    // Only the file asked for, not the user's.
    expect(js).not.toContain("demo.v1");
  });

  it("writes erasable TypeScript, which Node's type stripping loads", () => {
    const req = request("target=ts,health=true,reflection=true");
    const files = operationMessageFiles(req, addOperationProtos(req));
    expect(files.map((f) => f.name)).toEqual([
      "grpc/health/v1/health_pb.ts",
      "grpc/reflection/v1/reflection_pb.ts",
    ]);
    expect(files[0]!.content).not.toMatch(/^export enum /m);
    expect(files[0]!.content).toMatch(
      /^export const HealthCheckResponse_ServingStatus = \{/m,
    );
  });

  it("writes nothing when nothing was added", () => {
    expect(operationMessageFiles(request("health=true"), [])).toEqual([]);
  });
});
