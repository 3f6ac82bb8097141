import { describe, expect, it } from "vitest";
import { Code, codeFromString, codeToString } from "./code.ts";

// The wire names of the Connect protocol specification, by code number.
const specNames = [
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

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
