import type { DescFile, DescService, Message } from "@bufbuild/protobuf";
import { clone, createFileRegistry, toBinary } from "@bufbuild/protobuf";
import type {
  DescriptorProto,
  EnumDescriptorProto,
  FieldDescriptorProto,
  FileDescriptorProto,
} from "@bufbuild/protobuf/wkt";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "../core/code.ts";
import { ConnectError } from "../core/errors.ts";
import type {
  HandlerContext,
  HandlerOptions,
  ServiceHandler,
} from "./handler.ts";
import { createServiceHandler, type ServerParts } from "./router.ts";

// gRPC server reflection (grpc.reflection.v1 and v1alpha, wire-identical),
// answered from the descriptors protoc-gen-es files embed. The messages are
// typed structurally, as protobuf-es v2 has them, so that this module needs
// no generated code: the generated reflection file passes its own messages,
// which are assignable to these.

/** A `grpc.reflection.v1.ServerReflectionRequest`. */
export interface ReflectionRequest {
  readonly host: string;
  readonly messageRequest:
    | { readonly case: "fileByFilename"; readonly value: string }
    | { readonly case: "fileContainingSymbol"; readonly value: string }
    | {
        readonly case: "fileContainingExtension";
        readonly value: {
          readonly containingType: string;
          readonly extensionNumber: number;
        };
      }
    | { readonly case: "allExtensionNumbersOfType"; readonly value: string }
    | { readonly case: "listServices"; readonly value: string }
    | { readonly case: undefined; readonly value?: undefined };
}

/**
 * A `grpc.reflection.v1.ServerReflectionResponse`, as an initializer of the
 * generated message (its arrays mutable, as initializers have them). A type
 * literal rather than an interface: a message initializer of any type is a
 * `Record<string, unknown>`, which only type literals are implicitly.
 */
export type ReflectionResponse = {
  readonly validHost: string;
  readonly originalRequest: ReflectionRequest;
  readonly messageResponse:
    | {
        readonly case: "fileDescriptorResponse";
        readonly value: { readonly fileDescriptorProto: Uint8Array[] };
      }
    | {
        readonly case: "allExtensionNumbersResponse";
        readonly value: {
          readonly baseTypeName: string;
          readonly extensionNumber: number[];
        };
      }
    | {
        readonly case: "listServicesResponse";
        readonly value: { readonly service: { readonly name: string }[] };
      }
    | {
        readonly case: "errorResponse";
        readonly value: {
          readonly errorCode: number;
          readonly errorMessage: string;
        };
      };
};

/** The implementation of `ServerReflection`, v1 or v1alpha. */
export interface ReflectionImplementation {
  serverReflectionInfo(
    requests: AsyncIterable<ReflectionRequest>,
    context: HandlerContext,
  ): AsyncIterable<ReflectionResponse>;
}

/** One file a reflection server can send, with what it imports. */
interface ReflectionFile {
  readonly name: string;
  readonly proto: FileDescriptorProto;
  /** Names of the files it imports, in its order. */
  readonly imports: readonly string[];
  /** Its serialized descriptor, made on first use, then shared by all streams. */
  bytes: Uint8Array | undefined;
}

export interface ReflectionIndex {
  /** By file name, `eliza/v1/eliza.proto`. */
  readonly files: Map<string, ReflectionFile>;
  /**
   * The file declaring each fully-qualified name (no leading dot): what
   * grpc-go's registry finds, so messages and their fields and oneofs,
   * enums and their values (in the enum's scope, as protobuf has them),
   * extensions, services and their methods.
   */
  readonly symbols: Map<string, ReflectionFile>;
  /** Message names, for all_extension_numbers_of_type. */
  readonly messages: Set<string>;
  /** Extended message name → extension number → the extension's file. */
  readonly extensions: Map<string, Map<number, ReflectionFile>>;
  /** The served services' names, sorted, as list_services answers them. */
  readonly services: readonly string[];
}

/**
 * Indexes the files of `services` and of `files`, and everything they
 * import; list_services answers the names of `services`.
 */
export function reflectionIndex(
  services: readonly DescService[],
  files: readonly DescFile[] = [],
): ReflectionIndex {
  const index: ReflectionIndex = {
    files: new Map(),
    symbols: new Map(),
    messages: new Set(),
    extensions: new Map(),
    services: [...new Set(services.map((s) => s.typeName))].sort(),
  };
  for (const service of services) reflectionAddFile(index, service.file);
  for (const file of files) reflectionAddFile(index, file);
  return index;
}

function reflectionAddFile(index: ReflectionIndex, file: DescFile): void {
  const name = file.proto.name;
  if (index.files.has(name)) return;
  reflectionIndexFile(index, {
    name,
    proto: file.proto,
    imports: file.dependencies.map((dependency) => dependency.proto.name),
    bytes: undefined,
  });
  for (const dependency of file.dependencies) {
    reflectionAddFile(index, dependency);
  }
}

function reflectionIndexFile(index: ReflectionIndex, file: ReflectionFile) {
  index.files.set(file.name, file);
  const proto = file.proto;
  const scope = proto.package === "" ? "" : `${proto.package}.`;
  for (const message of proto.messageType) {
    reflectionIndexMessage(index, file, scope, message);
  }
  for (const e of proto.enumType) reflectionIndexEnum(index, file, scope, e);
  for (const x of proto.extension) {
    reflectionIndexExtension(index, file, scope, x);
  }
  for (const service of proto.service) {
    const name = scope + service.name;
    reflectionAddSymbol(index, name, file);
    for (const method of service.method) {
      reflectionAddSymbol(index, `${name}.${method.name}`, file);
    }
  }
}

function reflectionIndexMessage(
  index: ReflectionIndex,
  file: ReflectionFile,
  parentScope: string,
  message: DescriptorProto,
) {
  const name = parentScope + message.name;
  reflectionAddSymbol(index, name, file);
  index.messages.add(name);
  const scope = `${name}.`;
  for (const field of message.field) {
    reflectionAddSymbol(index, scope + field.name, file);
  }
  for (const oneof of message.oneofDecl) {
    reflectionAddSymbol(index, scope + oneof.name, file);
  }
  for (const nested of message.nestedType) {
    reflectionIndexMessage(index, file, scope, nested);
  }
  for (const e of message.enumType) reflectionIndexEnum(index, file, scope, e);
  for (const x of message.extension) {
    reflectionIndexExtension(index, file, scope, x);
  }
}

function reflectionIndexEnum(
  index: ReflectionIndex,
  file: ReflectionFile,
  scope: string,
  e: EnumDescriptorProto,
) {
  reflectionAddSymbol(index, scope + e.name, file);
  // Values are siblings of their enum, not its children (C++ scoping).
  for (const value of e.value) {
    reflectionAddSymbol(index, scope + value.name, file);
  }
}

function reflectionIndexExtension(
  index: ReflectionIndex,
  file: ReflectionFile,
  scope: string,
  extension: FieldDescriptorProto,
) {
  reflectionAddSymbol(index, scope + extension.name, file);
  // protoc resolves extendees to fully-qualified names with a leading dot.
  const extendee = extension.extendee.replace(/^\./, "");
  let numbers = index.extensions.get(extendee);
  if (numbers === undefined) {
    numbers = new Map();
    index.extensions.set(extendee, numbers);
  }
  if (!numbers.has(extension.number)) numbers.set(extension.number, file);
}

function reflectionAddSymbol(
  index: ReflectionIndex,
  name: string,
  file: ReflectionFile,
) {
  if (!index.symbols.has(name)) index.symbols.set(name, file);
}

/**
 * grpc.reflection.v1alpha.ServerReflection, described as v1's service with
 * the package renamed: the two are wire-identical (the same messages, field
 * numbers and JSON names), so one implementation serves both, and clients
 * that only know v1alpha (older grpcurl, `buf curl --reflect-protocol
 * grpc-v1alpha`) find it described as well.
 */
export function reflectionAlphaService(v1: DescService): DescService {
  const proto = reflectionAlphaProto(v1.file.proto);
  return createFileRegistry(proto, (name) =>
    v1.file.dependencies.find((d) => d.proto.name === name),
  ).getService(`${proto.package}.${v1.name}`)!;
}

/**
 * grpc/reflection/v1alpha/reflection.proto made from v1's: the same
 * messages and service in package grpc.reflection.v1alpha, without v1's
 * options (its go_package, java_package... name v1).
 */
function reflectionAlphaProto(v1: FileDescriptorProto): FileDescriptorProto {
  const alpha = clone(FileDescriptorProtoSchema, v1);
  const from = `.${v1.package}.`;
  const to = ".grpc.reflection.v1alpha.";
  const rename = (typeName: string) =>
    typeName.startsWith(from) ? to + typeName.slice(from.length) : typeName;
  const renameFields = (message: DescriptorProto): void => {
    for (const field of message.field) field.typeName = rename(field.typeName);
    message.nestedType.forEach(renameFields);
  };
  alpha.name = "grpc/reflection/v1alpha/reflection.proto";
  alpha.package = "grpc.reflection.v1alpha";
  alpha.options = undefined;
  alpha.messageType.forEach(renameFields);
  for (const service of alpha.service) {
    for (const method of service.method) {
      method.inputType = rename(method.inputType);
      method.outputType = rename(method.outputType);
    }
  }
  return alpha;
}

/**
 * Serves a ServerReflection service that has no generated handler factory
 * (reflectionAlphaService's) with `implementation`, with the same options
 * and parts as the generated factory of v1.
 */
export function reflectionHandler(
  service: DescService,
  implementation: ReflectionImplementation,
  options: HandlerOptions,
  parts: ServerParts,
): ServiceHandler {
  const method = service.methods[0]!;
  return createServiceHandler(
    service,
    [
      {
        method: {
          service: service.typeName,
          name: method.name,
          path: `/${service.typeName}/${method.name}`,
          kind: method.methodKind,
          input: method.input,
          output: method.output,
          noSideEffects: false,
        },
        stream: (requests, context) =>
          implementation.serverReflectionInfo(
            requests as AsyncIterable<Message & ReflectionRequest>,
            context,
          ),
      },
    ],
    options,
    parts,
  );
}

/**
 * The answer to one request of a stream; `sent` holds the names of the
 * files this stream has sent, so that a file goes with those of its
 * transitive imports that the client does not have yet (as grpc-go does:
 * reflection clients build descriptors from them without asking again).
 * Unknown names are an `error_response` with NOT_FOUND, and the stream
 * goes on; a request without a message ends it with INVALID_ARGUMENT.
 */
export function reflectionAnswer(
  index: ReflectionIndex,
  request: ReflectionRequest,
  sent: Set<string>,
): ReflectionResponse {
  const answer = (
    messageResponse: ReflectionResponse["messageResponse"],
  ): ReflectionResponse => ({
    validHost: request.host,
    originalRequest: request,
    messageResponse,
  });
  const files = (
    file: ReflectionFile | undefined,
    notFound: string,
  ): ReflectionResponse =>
    answer(
      file === undefined
        ? {
            case: "errorResponse",
            value: { errorCode: Code.NotFound, errorMessage: notFound },
          }
        : {
            case: "fileDescriptorResponse",
            value: {
              fileDescriptorProto: reflectionFileWithImports(index, file, sent),
            },
          },
    );
  const r = request.messageRequest;
  switch (r.case) {
    case "fileByFilename":
      return files(index.files.get(r.value), `file not found: ${r.value}`);
    case "fileContainingSymbol":
      return files(index.symbols.get(r.value), `symbol not found: ${r.value}`);
    case "fileContainingExtension": {
      const { containingType, extensionNumber } = r.value;
      return files(
        index.extensions.get(containingType)?.get(extensionNumber),
        `extension not found: ${extensionNumber} of ${containingType}`,
      );
    }
    case "allExtensionNumbersOfType": {
      const numbers = index.extensions.get(r.value);
      if (numbers === undefined && !index.messages.has(r.value)) {
        return answer({
          case: "errorResponse",
          value: {
            errorCode: Code.NotFound,
            errorMessage: `message type not found: ${r.value}`,
          },
        });
      }
      return answer({
        case: "allExtensionNumbersResponse",
        value: {
          baseTypeName: r.value,
          extensionNumber: [...(numbers?.keys() ?? [])].sort((a, b) => a - b),
        },
      });
    }
    case "listServices":
      return answer({
        case: "listServicesResponse",
        value: { service: index.services.map((name) => ({ name })) },
      });
    default:
      throw new ConnectError(
        "invalid MessageRequest: none set",
        Code.InvalidArgument,
      );
  }
}

/**
 * `file` first (always, even when sent before: it is what was asked for),
 * then, breadth first, its transitive imports not sent yet on this stream.
 * Files already sent are not walked: their imports went with them.
 */
function reflectionFileWithImports(
  index: ReflectionIndex,
  file: ReflectionFile,
  sent: Set<string>,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  const queue = [file];
  const queued = new Set([file.name]);
  for (let i = 0; i < queue.length; i++) {
    const next = queue[i]!;
    if (i > 0 && sent.has(next.name)) continue;
    sent.add(next.name);
    next.bytes ??= toBinary(FileDescriptorProtoSchema, next.proto);
    out.push(next.bytes);
    for (const name of next.imports) {
      const imported = index.files.get(name);
      // A file missing from the index is skipped, as grpc-go skips
      // placeholders: the client asks for it and gets NOT_FOUND.
      if (imported !== undefined && !queued.has(name)) {
        queued.add(name);
        queue.push(imported);
      }
    }
  }
  return out;
}

/**
 * The reflection service over the files of `services` (the services the
 * server serves, the reflection services too, as list_services lists
 * them) and of `files` (more files to describe, such as extensions no
 * service's file imports). The index is built on the first request, so
 * that a server that is never asked pays nothing at startup.
 */
export function reflectionImplementation(
  services: readonly DescService[],
  files: readonly DescFile[] = [],
): ReflectionImplementation {
  let index: ReflectionIndex | undefined;
  return {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const request of requests) {
        index ??= reflectionIndex(services, files);
        yield reflectionAnswer(index, request, sent);
      }
    },
  };
}
