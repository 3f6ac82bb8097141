import { describe, expect, it } from "vitest";
import { specCodeNames as specNames } from "../../test/support/code-names.ts";
import { Code, codeFromString, codeToString } from "./code.ts";

describe("codeToString and codeFromString", () => {
  it("name every code as the specification does, both ways", () => {
    expect(Object.values(Code)).toEqual(specNames.map((_, i) => i + 1));
    specNames.forEach((name, i) => {
      expect(codeToString((i + 1) as Code)).toBe(name);
      expect(codeFromString(name)).toBe(i + 1);
    });
  });

  it("know no other names", () => {
    for (const name of ["ok", "", "Canceled", "CANCELED", "InvalidArgument"]) {
      expect(codeFromString(name), name).toBeUndefined();
    }
    expect(codeToString(99 as Code)).toBe("unknown");
  });
});
