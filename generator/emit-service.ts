import type { DescFile, DescMessage, DescService } from "@bufbuild/protobuf";
import type { Printable, Schema } from "@bufbuild/protoplugin";
import { refsOf, type Code, type Ref } from "../templates/code.ts";
import { serviceNames, serviceTemplate } from "../templates/service.ts";
import type { Options } from "./options.ts";
import {
  statementsEnd,
  statementsSeparator,
  statementsStart,
} from "./format.ts";
import type { Piece, RuntimeLibrary } from "./runtime-library.ts";

/**
 * The file name of a service: `<proto file>.<Service>.ts` beside the `_pb`
 * file. Service names cannot contain dots, so no two services share a name.
 */
export function serviceFileName(file: DescFile, service: DescService): string {
  return `${file.name}.${service.name}.ts`;
}

// Identifiers outside comments and strings, and not after a dot.
const tokenRE =
  /\/\*[\s\S]*?\*\/|\/\/[^\n]*|"(?:\\.|[^"\\])*"|(?<!\.\s*)[A-Za-z_$][\w$]*/g;

/**
 * Writes one service file: the runtime declarations the service reaches, then
 * the service's own code. Every identifier of the file is registered with
 * protoplugin, so that imported message names that would clash with it (a
 * message called `Headers`, say) are imported under an alias.
 */
export function emitService(
  schema: Schema<Options>,
  file: DescFile,
  service: DescService,
  library: RuntimeLibrary,
): void {
  const options = schema.options;
  const template = serviceTemplate(service, options);
  const roots = new Set<string>();
  const locals = new Set<string>(Object.values(serviceNames(service)));
  for (const ref of refsOf(template)) {
    if (ref.kind === "runtime") roots.add(ref.name);
  }
  const declarations = library.closure(roots);

  // Runtime names give way to the service's exported names, which are API.
  const finalName = new Map<string, string>();
  const taken = new Set(locals);
  for (const decl of declarations) {
    let name = decl.name;
    for (let i = 1; taken.has(name); i++) name = `${decl.name}$${i}`;
    taken.add(name);
    finalName.set(decl.name, name);
  }

  const f = schema.generateFile(serviceFileName(file, service));
  const selfPath =
    "./" + serviceFileName(file, service).replace(/\.ts$/, ".js");
  // What goes to protoplugin: text, and symbols for the names it must know.
  // A name of the file itself only reserves its identifier (protoplugin
  // never renames it), so it is a symbol once and text after that; text
  // is joined into one string between symbols (joined once from an array:
  // strings built with += left protoplugin to flatten some 5000 pieces a
  // file). Symbols for every occurrence made protoplugin's share of
  // generation as large as our own.
  const out: Printable[] = [];
  let pending: string[] = [];
  const reserved = new Set<string>();
  const symbol = (p: Printable) => {
    if (pending.length > 0) out.push(pending.join(""));
    pending = [];
    out.push(p);
  };
  const localSymbol = (name: string) => {
    if (reserved.has(name)) {
      pending.push(name);
    } else {
      reserved.add(name);
      symbol(f.import(name, selfPath));
    }
  };
  // protoplugin works a message's name out afresh on every call, going
  // through every type of its file; the template names each message often.
  const schemaSymbols = new Map<DescMessage, Printable>();
  const shapeSymbols = new Map<DescMessage, Printable>();
  // Template text: its identifiers are reserved.
  const text = (s: string) => {
    let last = 0;
    for (const m of s.matchAll(tokenRE)) {
      const token = m[0];
      if (token.startsWith("/") || token.startsWith('"')) continue;
      pending.push(s.slice(last, m.index));
      localSymbol(token);
      last = m.index + token.length;
    }
    pending.push(s.slice(last));
  };

  f.preamble(file);
  const namespaces = new Map<string, string>();
  for (const decl of declarations) {
    for (const statement of decl.statements) {
      for (const piece of statement) {
        if (typeof piece !== "string" && piece.kind === "namespace") {
          namespaces.set(piece.local, piece.from);
        }
      }
    }
  }
  // protoplugin writes named imports only; namespace imports follow its import block.
  for (const [local, from] of [...namespaces].sort(([a], [b]) =>
    a < b ? -1 : 1,
  )) {
    pending.push("import * as ");
    localSymbol(local);
    pending.push(` from ${JSON.stringify(from)};\n`);
  }
  if (namespaces.size > 0) pending.push("\n");

  // Every service file repeats runtime statements: the markers let the
  // formatter format each once per run (generator/format.ts).
  pending.push(`${statementsStart}\n`);
  for (const decl of declarations) {
    for (const statement of decl.statements) {
      for (const piece of statement) emitPiece(piece);
      pending.push(`\n${statementsSeparator}\n`);
    }
  }
  pending.push(`${statementsEnd}\n`);
  emitCode(template);
  pending.push("\n");
  out.push(pending.join(""));
  f.print(out);

  function emitPiece(piece: Piece): void {
    if (typeof piece === "string") {
      pending.push(piece);
      return;
    }
    switch (piece.kind) {
      case "runtime": {
        const name = finalName.get(piece.name) ?? piece.name;
        if (piece.shorthand && name !== piece.name)
          pending.push(`${piece.name}: `);
        localSymbol(name);
        break;
      }
      case "import":
        if (piece.shorthand) pending.push(`${piece.name}: `);
        symbol(f.import(piece.name, piece.from, piece.typeOnly));
        break;
      case "namespace":
        localSymbol(piece.local);
        break;
      case "global":
        localSymbol(piece.name);
        break;
    }
  }

  // Adjacent strings are joined first, so that a comment split by an
  // interpolated string is still seen whole by the tokenizer.
  function emitCode(c: Code): void {
    let plain = "";
    for (const item of flatten(c)) {
      if (typeof item === "string") {
        plain += item;
      } else {
        text(plain);
        plain = "";
        emitRef(item);
      }
    }
    text(plain);
  }

  function emitRef(ref: Ref): void {
    switch (ref.kind) {
      case "runtime":
        localSymbol(finalName.get(ref.name) ?? ref.name);
        break;
      case "local":
        localSymbol(ref.name);
        break;
      case "schema":
        symbol(once(schemaSymbols, ref.desc, () => f.importSchema(ref.desc)));
        break;
      case "shape":
        symbol(once(shapeSymbols, ref.desc, () => f.importShape(ref.desc)));
        break;
      case "import":
        symbol(f.import(ref.name, ref.from, ref.typeOnly));
        break;
    }
  }
}

function once<K, V>(cache: Map<K, V>, key: K, make: () => V): V {
  let value = cache.get(key);
  if (value === undefined) {
    value = make();
    cache.set(key, value);
  }
  return value;
}

function* flatten(c: Code): Generator<string | Ref> {
  for (const item of c) {
    if (typeof item === "string") yield item;
    else if (Array.isArray(item)) yield* flatten(item as Code);
    else yield item as Ref;
  }
}
