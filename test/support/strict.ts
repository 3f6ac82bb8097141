import { join } from "node:path";
import ts from "typescript";
import { repoRoot } from "./generate.ts";

/**
 * The compiler options generated code must pass (the design's quality bar):
 * strict, noUncheckedIndexedAccess, exactOptionalPropertyTypes,
 * verbatimModuleSyntax, isolatedModules and erasableSyntaxOnly.
 */
export const strictOptions: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2023,
  lib: ["lib.es2023.d.ts", "lib.dom.d.ts", "lib.dom.iterable.d.ts"],
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  verbatimModuleSyntax: true,
  isolatedModules: true,
  erasableSyntaxOnly: true,
  noEmit: true,
  skipLibCheck: true,
  types: ["node"],
  typeRoots: [join(repoRoot, "node_modules/@types")],
};
