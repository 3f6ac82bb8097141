import type { FileInfo } from "@bufbuild/protoplugin";
import type * as TS from "typescript";
import { libFiles, ts } from "./typescript.ts";

/**
 * target=js and dts: the generated TypeScript compiled to JavaScript and
 * declarations, as protoplugin's own transpile does (same compiler, options,
 * lib files and output), but with the lib files of that compiler.
 *
 * protoplugin's transpile takes the lib files from @typescript/vfs, which
 * reads them from wherever `typescript` resolves to from its own folder.
 * npm hoists @typescript/vfs to the top of a project's node_modules (its only
 * tie to a compiler is a peer dependency on any `typescript`), so that is the
 * project's own `typescript`, not protoplugin's: with TypeScript 7, which
 * ships no lib.*.d.ts, every global (`Error`, `Uint8Array`) is unknown and
 * declaration emit fails; with none at all, vfs cannot find the module.
 * protoc-gen-es writes js and dts itself and never gets there.
 */
export function transpile(
  files: FileInfo[],
  transpileJs: boolean,
  transpileDts: boolean,
  jsImportStyle: "module" | "legacy_commonjs",
): FileInfo[] {
  const options: TS.CompilerOptions = {
    // protoplugin's options, unchanged, so that the output is too.
    strict: false,
    module:
      jsImportStyle === "legacy_commonjs"
        ? ts.ModuleKind.CommonJS
        : ts.ModuleKind.ES2020,
    moduleResolution: ts.ModuleResolutionKind.Node10,
    noResolve: true,
    resolveJsonModule: false,
    emitBOM: false,
    importsNotUsedAsValues: ts.ImportsNotUsedAsValues.Preserve,
    newLine: ts.NewLineKind.LineFeed,
    preserveValueImports: false,
    allowJs: true,
    checkJs: false,
    lib: [],
    moduleDetection: ts.ModuleDetectionKind.Force,
    target: ts.ScriptTarget.ES2017,
    skipLibCheck: true,
    skipDefaultLibCheck: false,
    declaration: transpileDts,
    emitDeclarationOnly: transpileDts && !transpileJs,
  };
  const program = createProgram(options, files);
  const results: FileInfo[] = [];
  let err: Error | undefined;
  const result = program.emit(
    undefined,
    (fileName, data, _writeByteOrderMark, _onError, sourceFiles) => {
      // The preamble is not part of the compiled source: find the file each
      // output comes from, and give the output its preamble.
      const source =
        sourceFiles?.length === 1 ? sourceFiles[0]?.fileName : undefined;
      const file = files.find((f) => f.name === source);
      if (file === undefined) {
        err ??= new Error(
          `unable to map emitted file "${fileName}" to a source file`,
        );
        return;
      }
      results.push({ name: fileName, preamble: file.preamble, content: data });
    },
  );
  if (err !== undefined) throw err;
  if (result.emitSkipped) {
    throw new Error(
      `A problem occurred during transpilation and files were not generated.  Contact the plugin author for support.\n\n${formatDiagnostics(result.diagnostics)}`,
    );
  }
  return results;
}

/**
 * A program over the generated files and the compiler's lib files, all in
 * memory, named as @typescript/vfs names them ("/lib.es5.d.ts", and the
 * generated files by their relative names), in the current directory "/".
 */
function createProgram(
  options: TS.CompilerOptions,
  files: FileInfo[],
): TS.Program {
  const texts = new Map<string, string>();
  for (const [name, text] of libFiles()) texts.set(`/${name}`, text);
  for (const file of files) texts.set(file.name, file.content);
  // "/DOM.d.ts" is "/lib.dom.d.ts", as in vfs.
  const read = (name: string): string | undefined =>
    texts.get(name) ?? texts.get(name.replace("/", "/lib.").toLowerCase());
  const sourceFiles = new Map<string, TS.SourceFile>();
  const host: TS.CompilerHost = {
    getSourceFile(name, languageVersionOrOptions) {
      let sourceFile = sourceFiles.get(name);
      if (sourceFile === undefined) {
        const text = read(name);
        if (text === undefined) return undefined;
        sourceFile = ts.createSourceFile(
          name,
          text,
          languageVersionOrOptions,
          false,
        );
        sourceFiles.set(name, sourceFile);
      }
      return sourceFile;
    },
    getDefaultLibFileName: (o) => `/${ts.getDefaultLibFileName(o)}`,
    writeFile: () => {},
    getCurrentDirectory: () => "/",
    getCanonicalFileName: (name) => name,
    useCaseSensitiveFileNames: () => true,
    getNewLine: () => "\n",
    fileExists: (name) => read(name) !== undefined,
    readFile: read,
    directoryExists: (dir) => [...texts.keys()].some((n) => n.startsWith(dir)),
    getDirectories: () => [],
  };
  return ts.createProgram({ rootNames: [...texts.keys()], options, host });
}

function formatDiagnostics(diagnostics: readonly TS.Diagnostic[]): string {
  const sorted = ts.sortAndDeduplicateDiagnostics(diagnostics);
  const first = sorted.slice(0, 3);
  let out = ts
    .formatDiagnostics(first, {
      getCanonicalFileName: (name) => name,
      getCurrentDirectory: () => ".",
      getNewLine: () => "\n",
    })
    .trim();
  if (first.length < sorted.length) {
    out += `\n${sorted.length - first.length} more diagnostics elided`;
  }
  return out;
}
