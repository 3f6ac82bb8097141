import type { GeneratedFile } from "@bufbuild/protoplugin";
import { describe, expect, it } from "vitest";
import { code, rt } from "../templates/code.ts";
import { Printer } from "./printer.ts";

/** A GeneratedFile that records the names the printer reserves. */
function recordingFile() {
  const reserved: string[] = [];
  const f = {
    import(name: string) {
      reserved.push(name);
      return { kind: "es_symbol", name };
    },
    print() {},
  };
  return { f: f as unknown as GeneratedFile, reserved };
}

describe("Printer.code", () => {
  it("reads a doc comment that a runtime reference splits as one comment", () => {
    const { f, reserved } = recordingFile();
    const printer = new Printer(f, "./self.ts");
    printer.code(
      code`/**\n * Combine with nodeHandler(a, b); stop with ${rt("shutdownGracefully")}.\n * Then fastifyPlugin too.\n */\nconst handler = make();`,
      () => {},
    );
    expect(reserved).toEqual(["const", "handler", "make"]);
  });

  it("still reads a comment that no reference splits as one", () => {
    const { f, reserved } = recordingFile();
    new Printer(f, "./self.ts").code(
      code`/** nodeHandler */ let x = y; // z`,
      () => {},
    );
    expect(reserved).toEqual(["let", "x", "y"]);
  });
});
