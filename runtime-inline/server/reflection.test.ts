import type {
  DescFile,
  DescMessage,
  MessageInitShape,
} from "@bufbuild/protobuf";
import { create, createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  FileDescriptorSetSchema,
  file_google_protobuf_descriptor,
  file_google_protobuf_struct,
} from "@bufbuild/protobuf/wkt";
import type { FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import type { HandlerContext } from "./handler.ts";
import { jsonCodec } from "../core/codec.ts";
import { reflectionProto } from "../../generator/operations/descriptors.ts";
import {
  bodyBytes,
  bodyText,
  envelopes,
  serverRequest,
} from "../../test/support/server.ts";
import { envelopeBytes } from "../../test/support/raw-http.ts";
import { connectServer } from "./connect.ts";
import { connectHandleStream } from "./connect-stream.ts";
import {
  reflectionAlphaService,
  reflectionAnswer,
  reflectionHandler,
  reflectionImplementation,
  reflectionIndex,
} from "./reflection.ts";
import type { ReflectionRequest, ReflectionResponse } from "./reflection.ts";

const {
  STRING: TYPE_STRING,
  INT32: TYPE_INT32,
  MESSAGE: TYPE_MESSAGE,
  ENUM: TYPE_ENUM,
} = FieldDescriptorProto_Type;
const { OPTIONAL: LABEL_OPTIONAL } = FieldDescriptorProto_Label;

function field(
  name: string,
  number: number,
  type: FieldDescriptorProto_Type,
  more: { typeName?: string; extendee?: string; oneofIndex?: number } = {},
) {
  return { name, number, type, label: LABEL_OPTIONAL, jsonName: name, ...more };
}

/** A file as protoc would describe it, with its imports resolved. */
function descFile(
  init: MessageInitShape<typeof FileDescriptorProtoSchema>,
  ...imports: DescFile[]
): DescFile {
  const proto = create(FileDescriptorProtoSchema, {
    syntax: "proto2",
    dependency: imports.map((f) => f.proto.name),
    ...init,
  });
  return createFileRegistry(proto, (name) =>
    imports.find((f) => f.proto.name === name),
  ).getFile(proto.name)!;
}

// shop.proto imports struct.proto (protobuf-es's embedded descriptor);
// notes.proto imports shop.proto and extends its Item.
const shop = descFile(
  {
    name: "test/v1/shop.proto",
    package: "test.v1",
    messageType: [
      {
        name: "Item",
        field: [
          field("name", 1, TYPE_STRING),
          field("attrs", 2, TYPE_MESSAGE, {
            typeName: ".google.protobuf.Struct",
          }),
          field("code", 3, TYPE_STRING, { oneofIndex: 0 }),
          field("color", 4, TYPE_ENUM, { typeName: ".test.v1.Color" }),
        ],
        oneofDecl: [{ name: "kind" }],
        nestedType: [
          {
            name: "Part",
            field: [field("id", 1, TYPE_STRING)],
            enumType: [
              {
                name: "Size",
                value: [
                  { name: "SIZE_SMALL", number: 0 },
                  { name: "SIZE_BIG", number: 1 },
                ],
              },
            ],
          },
        ],
        extensionRange: [{ start: 100, end: 200 }],
      },
    ],
    enumType: [
      {
        name: "Color",
        value: [
          { name: "COLOR_RED", number: 0 },
          { name: "COLOR_BLUE", number: 1 },
        ],
      },
    ],
    service: [
      {
        name: "Shop",
        method: [
          {
            name: "Get",
            inputType: ".test.v1.Item",
            outputType: ".test.v1.Item",
          },
        ],
      },
    ],
  },
  file_google_protobuf_struct,
);

const notes = descFile(
  {
    name: "test/v1/notes.proto",
    package: "test.v1",
    extension: [field("note", 101, TYPE_STRING, { extendee: ".test.v1.Item" })],
    messageType: [
      {
        name: "Holder",
        extension: [
          field("rank", 100, TYPE_INT32, { extendee: ".test.v1.Item" }),
        ],
      },
    ],
  },
  shop,
);

const shopService = shop.services[0]!;

// grpc/reflection/v1/reflection.proto as the plugin adds it to its output.
const reflectionV1 = createFileRegistry(
  fromBinary(FileDescriptorProtoSchema, base64Decode(reflectionProto)),
  () => undefined,
).getFile("grpc/reflection/v1/reflection.proto")!;

function request(
  messageRequest: ReflectionRequest["messageRequest"],
): ReflectionRequest {
  return { host: "localhost", messageRequest };
}

/** The files a response carries, decoded, or its error. */
function filesOf(response: ReflectionResponse): FileDescriptorProto[] {
  const r = response.messageResponse;
  if (r.case !== "fileDescriptorResponse") {
    throw new Error(`expected files, got ${JSON.stringify(r)}`);
  }
  return r.value.fileDescriptorProto.map((bytes) =>
    fromBinary(FileDescriptorProtoSchema, bytes),
  );
}

function namesOf(response: ReflectionResponse): string[] {
  return filesOf(response).map((f) => f.name);
}

describe("reflectionAnswer", () => {
  const index = reflectionIndex([shopService], [notes]);

  it("sends a file by name with the imports this stream has not had yet", () => {
    const sent = new Set<string>();
    const first = reflectionAnswer(
      index,
      request({ case: "fileByFilename", value: "test/v1/notes.proto" }),
      sent,
    );
    expect(namesOf(first)).toEqual([
      "test/v1/notes.proto",
      "test/v1/shop.proto",
      "google/protobuf/struct.proto",
    ]);
    // What was asked for always comes, its imports only once per stream.
    const again = reflectionAnswer(
      index,
      request({ case: "fileByFilename", value: "test/v1/shop.proto" }),
      sent,
    );
    expect(namesOf(again)).toEqual(["test/v1/shop.proto"]);
    // Another stream starts afresh.
    const other = reflectionAnswer(
      index,
      request({ case: "fileByFilename", value: "test/v1/shop.proto" }),
      new Set(),
    );
    expect(namesOf(other)).toEqual([
      "test/v1/shop.proto",
      "google/protobuf/struct.proto",
    ]);
  });

  it("sends the descriptors as they are, json_name and options included", () => {
    const [sentShop, sentStruct] = filesOf(
      reflectionAnswer(
        index,
        request({ case: "fileByFilename", value: "test/v1/shop.proto" }),
        new Set(),
      ),
    );
    expect(sentShop).toEqual(shop.proto);
    expect(sentShop!.messageType[0]!.field[0]!.jsonName).toBe("name");
    expect(sentStruct!.options?.goPackage).toBe(
      "google.golang.org/protobuf/types/known/structpb",
    );
  });

  it("sends enough for a client to build the service's descriptors", () => {
    const files = filesOf(
      reflectionAnswer(
        index,
        request({ case: "fileContainingSymbol", value: "test.v1.Shop" }),
        new Set(),
      ),
    );
    // protobuf-es wants imports first; the response has them after.
    const registry = createFileRegistry(
      create(FileDescriptorSetSchema, { file: files.reverse() }),
    );
    const get = registry.getService("test.v1.Shop")!.methods[0]!;
    expect(get.input.field["attrs"]?.message?.typeName).toBe(
      "google.protobuf.Struct",
    );
  });

  it("finds the file of every symbol grpc-go's registry finds", () => {
    const symbols: Record<string, string> = {
      "test.v1.Item": "test/v1/shop.proto",
      "test.v1.Item.name": "test/v1/shop.proto",
      "test.v1.Item.kind": "test/v1/shop.proto",
      "test.v1.Item.Part": "test/v1/shop.proto",
      "test.v1.Item.Part.id": "test/v1/shop.proto",
      "test.v1.Item.Part.Size": "test/v1/shop.proto",
      // Enum values are scoped as the enum's siblings.
      "test.v1.Item.Part.SIZE_BIG": "test/v1/shop.proto",
      "test.v1.Color": "test/v1/shop.proto",
      "test.v1.COLOR_BLUE": "test/v1/shop.proto",
      "test.v1.Shop": "test/v1/shop.proto",
      "test.v1.Shop.Get": "test/v1/shop.proto",
      "test.v1.note": "test/v1/notes.proto",
      "test.v1.Holder.rank": "test/v1/notes.proto",
      "google.protobuf.Value": "google/protobuf/struct.proto",
      "google.protobuf.Struct.FieldsEntry": "google/protobuf/struct.proto",
    };
    for (const [symbol, file] of Object.entries(symbols)) {
      const response = reflectionAnswer(
        index,
        request({ case: "fileContainingSymbol", value: symbol }),
        new Set(),
      );
      expect([symbol, namesOf(response)[0]]).toEqual([symbol, file]);
    }
  });

  it("answers NOT_FOUND for names it does not know, and echoes the request", () => {
    const unknown: ReflectionRequest["messageRequest"][] = [
      { case: "fileByFilename", value: "nope.proto" },
      { case: "fileContainingSymbol", value: "test.v1.Nope" },
      // Not scoped inside the enum, and packages are not symbols.
      { case: "fileContainingSymbol", value: "test.v1.Color.COLOR_RED" },
      { case: "fileContainingSymbol", value: "test.v1" },
      { case: "fileContainingSymbol", value: ".test.v1.Item" },
      {
        case: "fileContainingExtension",
        value: { containingType: "test.v1.Item", extensionNumber: 150 },
      },
      {
        case: "fileContainingExtension",
        value: { containingType: "test.v1.Nope", extensionNumber: 100 },
      },
      { case: "allExtensionNumbersOfType", value: "test.v1.Nope" },
      // A symbol, but not a message.
      { case: "allExtensionNumbersOfType", value: "test.v1.Color" },
    ];
    for (const messageRequest of unknown) {
      const r = request(messageRequest);
      const response = reflectionAnswer(index, r, new Set());
      expect(response.validHost).toBe("localhost");
      expect(response.originalRequest).toBe(r);
      expect(response.messageResponse.case).toBe("errorResponse");
      expect(response.messageResponse.value).toMatchObject({
        errorCode: Code.NotFound,
      });
    }
  });

  it("finds extensions by extended type and number", () => {
    const byNumber = (extensionNumber: number) =>
      namesOf(
        reflectionAnswer(
          index,
          request({
            case: "fileContainingExtension",
            value: { containingType: "test.v1.Item", extensionNumber },
          }),
          new Set(),
        ),
      )[0];
    expect(byNumber(100)).toBe("test/v1/notes.proto");
    expect(byNumber(101)).toBe("test/v1/notes.proto");
  });

  it("lists a message's extension numbers, sorted, none for a plain one", () => {
    const numbers = (type: string) =>
      reflectionAnswer(
        index,
        request({ case: "allExtensionNumbersOfType", value: type }),
        new Set(),
      ).messageResponse;
    expect(numbers("test.v1.Item")).toEqual({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "test.v1.Item", extensionNumber: [100, 101] },
    });
    expect(numbers("test.v1.Item.Part")).toEqual({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "test.v1.Item.Part", extensionNumber: [] },
    });
  });

  it("lists the services it was given, not every service of their files", () => {
    expect(
      reflectionAnswer(
        reflectionIndex([shopService]),
        request({ case: "listServices", value: "*" }),
        new Set(),
      ).messageResponse,
    ).toEqual({
      case: "listServicesResponse",
      value: { service: [{ name: "test.v1.Shop" }] },
    });
  });

  it("refuses a request without a message", () => {
    expect(() =>
      reflectionAnswer(index, request({ case: undefined }), new Set()),
    ).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument }) as ConnectError,
    );
  });

  it("serializes protobuf-es's bootstrapped descriptor.proto", () => {
    const [descriptor] = filesOf(
      reflectionAnswer(
        reflectionIndex([], [file_google_protobuf_descriptor]),
        request({
          case: "fileContainingSymbol",
          value: "google.protobuf.FieldOptions",
        }),
        new Set(),
      ),
    );
    expect(descriptor!.name).toBe("google/protobuf/descriptor.proto");
    expect(
      descriptor!.messageType.find((m) => m.name === "FileDescriptorProto"),
    ).toBeDefined();
  });
});

describe("reflectionAlphaService", () => {
  const v1 = reflectionV1.services[0]!;
  const alpha = reflectionAlphaService(v1);

  it("is v1's service in package grpc.reflection.v1alpha", () => {
    expect(alpha.typeName).toBe("grpc.reflection.v1alpha.ServerReflection");
    const method = alpha.methods[0]!;
    expect(method.methodKind).toBe("bidi_streaming");
    expect(method.input.typeName).toBe(
      "grpc.reflection.v1alpha.ServerReflectionRequest",
    );
    expect(method.output.field["originalRequest"]?.message).toBe(method.input);
    // The same fields, numbers and JSON names: the wire is the same.
    const fields = (m: DescMessage) =>
      m.fields.map((f) => [f.name, f.number, f.jsonName]);
    expect(fields(method.output)).toEqual(fields(v1.methods[0]!.output));
    expect(alpha.file.proto.name).toBe(
      "grpc/reflection/v1alpha/reflection.proto",
    );
    // v1's go_package and java_package name v1.
    expect(alpha.file.proto.options).toBeUndefined();
  });

  it("leaves v1's descriptor as it was", () => {
    expect(v1.file.proto.package).toBe("grpc.reflection.v1");
    expect(v1.file.proto.service[0]!.method[0]!.inputType).toBe(
      ".grpc.reflection.v1.ServerReflectionRequest",
    );
  });

  it("is listed and described like any service given", () => {
    const index = reflectionIndex([v1, alpha, shopService]);
    expect(
      reflectionAnswer(
        index,
        request({ case: "listServices", value: "" }),
        new Set(),
      ).messageResponse,
    ).toEqual({
      case: "listServicesResponse",
      value: {
        service: [
          { name: "grpc.reflection.v1.ServerReflection" },
          { name: "grpc.reflection.v1alpha.ServerReflection" },
          { name: "test.v1.Shop" },
        ],
      },
    });
    const files = filesOf(
      reflectionAnswer(
        index,
        request({
          case: "fileContainingSymbol",
          value:
            "grpc.reflection.v1alpha.ServerReflection.ServerReflectionInfo",
        }),
        new Set(),
      ),
    );
    const registry = createFileRegistry(
      create(FileDescriptorSetSchema, { file: files }),
    );
    expect(
      registry.getService("grpc.reflection.v1alpha.ServerReflection")
        ?.methods[0]?.input.typeName,
    ).toBe("grpc.reflection.v1alpha.ServerReflectionRequest");
  });
});

describe("reflectionHandler", () => {
  const v1 = reflectionV1.services[0]!;
  const alpha = reflectionAlphaService(v1);
  const handler = reflectionHandler(
    alpha,
    reflectionImplementation([v1, alpha, shopService]),
    {},
    {
      compressions: [],
      json: jsonCodec,
      protocols: [connectServer({ stream: connectHandleStream })],
    },
  );

  it("serves v1alpha's path with the implementation, one answer per request", async () => {
    expect(handler.path).toBe("/grpc.reflection.v1alpha.ServerReflection/");
    expect(handler.service).toBe(alpha);
    const json = (value: unknown) =>
      envelopeBytes(new TextEncoder().encode(JSON.stringify(value)));
    const response = await handler.handle(
      serverRequest({
        path: "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        headers: { "content-type": "application/connect+json" },
        body: [
          json({ host: "h", listServices: "" }),
          json({ fileByFilename: "nope.proto" }),
        ],
      }),
    );
    expect(response?.status).toBe(200);
    const messages = envelopes(await bodyBytes(response!)).map(
      (e) => JSON.parse(bodyText(e.data)) as unknown,
    );
    expect(messages).toEqual([
      {
        validHost: "h",
        originalRequest: { host: "h", listServices: "" },
        listServicesResponse: {
          service: [
            { name: "grpc.reflection.v1.ServerReflection" },
            { name: "grpc.reflection.v1alpha.ServerReflection" },
            { name: "test.v1.Shop" },
          ],
        },
      },
      {
        originalRequest: { fileByFilename: "nope.proto" },
        errorResponse: {
          errorCode: Code.NotFound,
          errorMessage: "file not found: nope.proto",
        },
      },
      {}, // the end of the stream, without an error
    ]);
  });
});

describe("reflectionImplementation", () => {
  const context = {} as HandlerContext; // unused by the implementation

  async function* requests(
    ...list: ReflectionRequest["messageRequest"][]
  ): AsyncIterable<ReflectionRequest> {
    for (const messageRequest of list) yield request(messageRequest);
  }

  it("answers each request in order, going on after NOT_FOUND", async () => {
    const implementation = reflectionImplementation([shopService]);
    const answers: ReflectionResponse[] = [];
    for await (const response of implementation.serverReflectionInfo(
      requests(
        { case: "listServices", value: "" },
        { case: "fileByFilename", value: "nope.proto" },
        { case: "fileContainingSymbol", value: "test.v1.Item" },
        { case: "fileContainingSymbol", value: "google.protobuf.Struct" },
      ),
      context,
    )) {
      answers.push(response);
    }
    expect(answers.map((a) => a.messageResponse.case)).toEqual([
      "listServicesResponse",
      "errorResponse",
      "fileDescriptorResponse",
      "fileDescriptorResponse",
    ]);
    // The stream remembers what it sent: struct.proto went with shop.proto.
    expect(namesOf(answers[2]!)).toEqual([
      "test/v1/shop.proto",
      "google/protobuf/struct.proto",
    ]);
    expect(namesOf(answers[3]!)).toEqual(["google/protobuf/struct.proto"]);
  });

  it("keeps what it sent per stream", async () => {
    const implementation = reflectionImplementation([shopService]);
    for (let stream = 0; stream < 2; stream++) {
      const answers: string[][] = [];
      for await (const response of implementation.serverReflectionInfo(
        requests({ case: "fileContainingSymbol", value: "test.v1.Shop" }),
        context,
      )) {
        answers.push(namesOf(response));
      }
      expect(answers).toEqual([
        ["test/v1/shop.proto", "google/protobuf/struct.proto"],
      ]);
    }
  });

  it("ends the stream with INVALID_ARGUMENT on a request without a message", async () => {
    const implementation = reflectionImplementation([shopService]);
    const answers: string[] = [];
    await expect(async () => {
      for await (const response of implementation.serverReflectionInfo(
        requests(
          { case: "listServices", value: "" },
          { case: undefined },
          { case: "listServices", value: "" },
        ),
        context,
      )) {
        answers.push(response.messageResponse.case);
      }
    }).rejects.toMatchObject({ code: Code.InvalidArgument });
    expect(answers).toEqual(["listServicesResponse"]);
  });
});
