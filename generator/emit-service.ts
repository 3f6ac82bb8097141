import type { DescFile, DescService } from "@bufbuild/protobuf";
import type { Schema } from "@bufbuild/protoplugin";
import type { Code } from "../templates/code.ts";
import { serviceNames, serviceTemplate } from "../templates/service.ts";
import {
  statementsEnd,
  statementsSeparator,
  statementsStart,
} from "./format.ts";
import { nameRuntime, type RuntimeNames } from "./naming.ts";
import type { Options } from "./options.ts";
import { Printer, templateIdentifiers, templateImports } from "./printer.ts";
import type { RuntimeDeclaration, RuntimeLibrary } from "./runtime-library.ts";
import { selectRuntime, unionOf, type Selection } from "./select.ts";

/**
 * The file name of a service: `<proto file>.<Service>.ts` beside the `_pb`
 * file. Service names cannot contain dots, so no two services share a name.
 */
export function serviceFileName(file: DescFile, service: DescService): string {
  return `${file.name}.${service.name}.ts`;
}

/** With runtime=shared, the file the services import the runtime from, at the root of the output. */
export const sharedRuntimeFileName = "connect-standalone.runtime.ts";

interface Service {
  readonly file: DescFile;
  readonly service: DescService;
  readonly template: Code;
  readonly selection: Selection;
}

/**
 * Writes the files of a run. Each in three steps: select the runtime
 * declarations the service's code reaches (select.ts), settle their names
 * (naming.ts), print (printer.ts). By default every service file carries its
 * runtime; with runtime=shared one file carries the runtime of all.
 */
export function emitFiles(
  schema: Schema<Options>,
  library: RuntimeLibrary,
): void {
  const services: Service[] = schema.files.flatMap((file) =>
    file.services.map((service) => {
      const template = serviceTemplate(service, schema.options);
      return {
        file,
        service,
        template,
        selection: selectRuntime(library, template),
      };
    }),
  );
  if (schema.options.runtime === "inline") {
    for (const s of services) emitSelfContained(schema, s);
    return;
  }
  if (services.length === 0) return;
  const shared = unionOf(
    library,
    services.map((s) => s.selection),
  );
  const names = nameRuntime(shared.declarations);
  emitSharedRuntime(schema, shared, names);
  for (const s of services) emitWithSharedRuntime(schema, s, names);
}

/** A service file that carries the runtime it uses, after its API. */
function emitSelfContained(schema: Schema<Options>, s: Service): void {
  const { file, service, template, selection } = s;
  const names = nameRuntime(selection.declarations, {
    declared: Object.values(serviceNames(service)),
    identifiers: templateIdentifiers(template),
    imports: templateImports(template),
  });
  const f = schema.generateFile(serviceFileName(file, service));
  f.preamble(file);
  const p = new Printer(f, selfPath(serviceFileName(file, service)));
  p.imports(names.imports, names.namespaces);
  // Every service file repeats runtime statements: the markers let the
  // formatter format each once per run (generator/format.ts).
  p.raw(`${statementsStart}\n`);
  p.raw(inlineNote(selection, names.shadowed));
  p.code(template, (name) =>
    p.local(names.declaration(selection.entryPoints.get(name)!)),
  );
  p.raw(`\n${statementsSeparator}\n${runtimeMarker}\n${statementsSeparator}\n`);
  const shadowed = new Set(names.shadowed);
  printDeclarations(
    p,
    selection.declarations,
    names,
    (d) => d.isPublic && !shadowed.has(d),
  );
  p.raw(`${statementsEnd}\n`);
  p.finish();
}

/** The runtime of every service of the run, for runtime=shared. */
function emitSharedRuntime(
  schema: Schema<Options>,
  shared: Selection,
  names: RuntimeNames,
): void {
  const f = schema.generateFile(sharedRuntimeFileName);
  const p = new Printer(f, selfPath(sharedRuntimeFileName));
  p.raw(sharedPreamble(schema));
  p.imports(names.imports, names.namespaces);
  p.raw(`${statementsStart}\n`);
  p.raw(sharedNote(shared));
  p.raw(`${statementsSeparator}\n`);
  const imported = new Set(shared.entryPoints.values());
  printDeclarations(
    p,
    shared.declarations,
    names,
    (d) => d.isPublic || imported.has(d.id),
  );
  p.raw(`${statementsEnd}\n`);
  p.finish();
}

/**
 * A service file importing its runtime from the shared file. It re-exports
 * the runtime's public names its API reaches (ConnectError, Code...), as a
 * self-contained file exports them, so that switching options changes no
 * import of the application.
 */
function emitWithSharedRuntime(
  schema: Schema<Options>,
  s: Service,
  names: RuntimeNames,
): void {
  const { file, service, template, selection } = s;
  // As in a self-contained file, the service's own names win.
  const own = new Set(Object.values(serviceNames(service)));
  const f = schema.generateFile(serviceFileName(file, service));
  f.preamble(file);
  const p = new Printer(f, selfPath(serviceFileName(file, service)));
  const runtimePath = selfPath(sharedRuntimeFileName);
  const declarations = new Map(
    selection.declarations.map((d) => [d.id, d] as const),
  );
  const runtime = (d: RuntimeDeclaration) =>
    f.import(names.declaration(d.id), runtimePath, !d.hasValue);
  p.imports(templateImports(template), []);
  p.raw(`${statementsStart}\n`);
  const publicOnes = selection.declarations.filter(
    (d) => d.isPublic && !own.has(d.name),
  );
  for (const typeOnly of [true, false]) {
    const list = publicOnes.filter((d) => d.hasValue !== typeOnly);
    if (list.length === 0) continue;
    p.raw(`export ${typeOnly ? "type " : ""}{ `);
    list.forEach((d, i) => {
      if (i > 0) p.raw(", ");
      p.symbol(runtime(d));
    });
    p.raw(" };\n");
  }
  p.raw(`${statementsSeparator}\n`);
  p.raw(
    `// The runtime this API uses is in ${sharedRuntimeFileName} (runtime=shared).\n\n`,
  );
  p.code(template, (name) =>
    p.symbol(runtime(declarations.get(selection.entryPoints.get(name)!)!)),
  );
  p.raw(`\n${statementsEnd}\n`);
  p.finish();
}

function printDeclarations(
  p: Printer,
  declarations: readonly RuntimeDeclaration[],
  names: RuntimeNames,
  exported: (d: RuntimeDeclaration) => boolean,
): void {
  for (const d of declarations) {
    for (const statement of d.statements) {
      p.statement(statement, names, exported(d));
      p.raw(`\n${statementsSeparator}\n`);
    }
  }
}

/** The path protoplugin resolves a file's own imports against. */
function selfPath(fileName: string): string {
  return "./" + fileName.replace(/\.ts$/, ".js");
}

const runtimeMarker = `// ${"-".repeat(70)}
// Runtime: copied from connect-standalone's runtime-inline/ by the generator.
// Only what is exported above this line, or marked export below it, is API.
// Regenerate rather than edit.`;

/** The note at the top of a self-contained file: which runtime parts it carries, and why. */
function inlineNote(
  selection: Selection,
  shadowed: readonly RuntimeDeclaration[],
): string {
  const hidden =
    shadowed.length === 0
      ? ""
      : ` Not exported here, as the service's own names take theirs: ${shadowed.map((d) => d.name).join(", ")}.`;
  return comment(
    [
      'The service\'s API comes first. After it, below "Runtime", is the part of',
      "connect-standalone's runtime the API uses, copied in so that this file",
      `needs no RPC library: ${selection.declarations.length} declarations from`,
      ...moduleLines(selection.declarations),
    ],
    `reached from ${[...selection.entryPoints.keys()].join(", ")}.${hidden}`,
  );
}

function sharedNote(shared: Selection): string {
  return comment(
    [
      "The connect-standalone runtime the service files of this output share",
      "(runtime=shared): what their APIs use, copied from its runtime-inline/",
      `by the generator. ${shared.declarations.length} declarations from`,
      ...moduleLines(shared.declarations),
    ],
    `reached from ${[...shared.entryPoints.keys()].join(", ")}. Regenerate rather than edit.`,
  );
}

/** `  folder: module, module` per folder of the runtime, sorted. */
function moduleLines(declarations: readonly RuntimeDeclaration[]): string[] {
  const folders = new Map<string, Set<string>>();
  for (const d of declarations) {
    const [folder, ...rest] = d.module.replace(/\.ts$/, "").split("/");
    const name = rest.join("/");
    const key = rest.length === 0 ? "." : folder!;
    let set = folders.get(key);
    if (set === undefined) folders.set(key, (set = new Set()));
    set.add(rest.length === 0 ? folder! : name);
  }
  return [...folders.keys()].sort().flatMap((folder) => {
    const lines: string[] = [];
    let line = `  ${folder}:`;
    const modules = [...folders.get(folder)!].sort();
    modules.forEach((m, i) => {
      const word = i < modules.length - 1 ? `${m},` : m;
      if (line.length + 1 + word.length > 77) {
        lines.push(line);
        line = `    ${word}`;
      } else {
        line = `${line} ${word}`;
      }
    });
    lines.push(line);
    return lines;
  });
}

/** Lines as a `//` comment, `tail` wrapped at 80 columns, then a blank line. */
function comment(lines: readonly string[], tail: string): string {
  const wrapped: string[] = [...lines];
  let line = "";
  for (const word of tail.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > 77) {
      wrapped.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") wrapped.push(line);
  return wrapped.map((l) => `// ${l}`.trimEnd()).join("\n") + "\n\n";
}

/** The head of the shared runtime file, as protoplugin's preamble heads the others. */
function sharedPreamble(schema: Schema<Options>): string {
  const parameter = schema.proto.parameter;
  return [
    `// @generated by protoc-gen-connect-standalone${parameter === "" ? "" : ` with parameter "${parameter}"`}`,
    "/* eslint-disable */",
    "",
    "",
  ].join("\n");
}
