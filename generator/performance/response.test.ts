import { create, toBinary } from "@bufbuild/protobuf";
import { CodeGeneratorResponseSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { writeResponse } from "./response.ts";

describe("writeResponse", () => {
  it("writes what toBinary writes, and empties the files", async () => {
    const init = {
      error: "",
      supportedFeatures: 3n,
      minimumEdition: 998,
      maximumEdition: 1001,
      file: [
        { name: "a.ts", content: "export const a = 1;\n" },
        // Long enough for a length of more than one varint byte, not ASCII.
        { name: "b/b.ts", content: "// → ".repeat(100_000) },
        { name: "c.ts", content: "" },
        // Not what protoplugin writes: serialized by toBinary.
        { name: "d.ts", insertionPoint: "x", content: "y" },
        { content: "no name" },
      ],
    };
    const expected = toBinary(
      CodeGeneratorResponseSchema,
      create(CodeGeneratorResponseSchema, init),
    );
    const res = create(CodeGeneratorResponseSchema, init);
    const chunks: Buffer[] = [];
    await writeResponse(res, async (chunk) => {
      chunks.push(Buffer.from(chunk));
    });
    expect(Buffer.concat(chunks)).toEqual(Buffer.from(expected));
    expect(res.file).toEqual([]);
  });

  it("writes an error response as toBinary does", async () => {
    const res = create(CodeGeneratorResponseSchema, { error: "bad option" });
    const expected = toBinary(CodeGeneratorResponseSchema, res);
    const chunks: Buffer[] = [];
    await writeResponse(res, async (chunk) => {
      chunks.push(Buffer.from(chunk));
    });
    expect(Buffer.concat(chunks)).toEqual(Buffer.from(expected));
  });
});
