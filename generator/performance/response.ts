import { isFieldSet, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import {
  CodeGeneratorResponse_FileSchema,
  CodeGeneratorResponseSchema,
  type CodeGeneratorResponse,
  type CodeGeneratorResponse_File,
} from "@bufbuild/protobuf/wkt";

/**
 * Writes the serialized response in pieces: the same bytes as
 * toBinary(CodeGeneratorResponseSchema, res), which writes the fields in
 * field-number order with `file` (15) last, without holding them all at
 * once; a file's content goes out as the string it is, for Node to encode
 * on its way out. Serialized whole, 100 services' 16 MB took some 80 MB of
 * buffers at the very end of the run, where its memory peaked. Empties
 * `res.file` as it goes, so that each file's text can be collected once it
 * is written.
 */
export async function writeResponse(
  res: CodeGeneratorResponse,
  write: (chunk: Uint8Array | string) => Promise<void>,
): Promise<void> {
  const files = res.file;
  res.file = [];
  await write(toBinary(CodeGeneratorResponseSchema, res));
  for (let file = files.shift(); file !== undefined; file = files.shift()) {
    if (!onlyNameAndContent(file)) {
      const bytes = toBinary(CodeGeneratorResponse_FileSchema, file);
      await write(lengthPrefix(fileField, bytes.length));
      await write(bytes);
      continue;
    }
    // The File message as toBinary writes it: name (1), then content (15).
    const name = new BinaryWriter()
      .tag(nameField, WireType.LengthDelimited)
      .string(file.name)
      .finish();
    const contentLength = Buffer.byteLength(file.content, "utf8");
    const contentPrefix = lengthPrefix(contentField, contentLength);
    const messageLength = name.length + contentPrefix.length + contentLength;
    await write(
      Buffer.concat([
        lengthPrefix(fileField, messageLength),
        name,
        contentPrefix,
      ]),
    );
    await write(file.content);
  }
}

const fileField = CodeGeneratorResponseSchema.field.file.number;
const nameField = CodeGeneratorResponse_FileSchema.field.name.number;
const contentField = CodeGeneratorResponse_FileSchema.field.content.number;

/** What protoplugin's files hold: a name and a content, nothing else. */
function onlyNameAndContent(file: CodeGeneratorResponse_File): boolean {
  return CodeGeneratorResponse_FileSchema.fields.every((field) =>
    field.number === nameField || field.number === contentField
      ? isFieldSet(file, field)
      : !isFieldSet(file, field),
  );
}

function lengthPrefix(field: number, length: number): Uint8Array {
  return new BinaryWriter()
    .tag(field, WireType.LengthDelimited)
    .uint32(length)
    .finish();
}
