import type { GeneratedFile, Printable } from "@bufbuild/protoplugin";
import type { Code, EntryPoint, Ref } from "../templates/code.ts";
import type { NamedImport, RuntimeNames } from "./naming.ts";
import type { Piece } from "./runtime-library.ts";

/**
 * Collects a file's text for protoplugin. protoplugin writes the imports of
 * message files and aliases each one that would clash with a name of the
 * file; for that it must know every name the file declares or uses, so each
 * identifier goes to it once as a symbol "imported from the file itself"
 * (which only reserves the name) and as plain text after that. Text is
 * joined into one string between symbols: symbols for every occurrence, or
 * strings built with +=, made protoplugin's share of generation as large as
 * ours.
 */
export class Printer {
  private readonly out: Printable[] = [];
  private pending: string[] = [];
  private readonly reserved = new Set<string>();
  // protoplugin works a message's name out afresh on every call, going
  // through every type of its file; a template names each message often.
  private readonly messages = new Map<string, Printable>();

  private readonly f: GeneratedFile;
  private readonly selfPath: string;

  constructor(f: GeneratedFile, selfPath: string) {
    this.f = f;
    this.selfPath = selfPath;
  }

  /** Text without identifiers to reserve (punctuation, keywords, comments). */
  raw(s: string): void {
    this.pending.push(s);
  }

  /** An identifier of the file. */
  local(name: string): void {
    if (this.reserved.has(name)) {
      this.pending.push(name);
    } else {
      this.reserved.add(name);
      this.symbol(this.f.import(name, this.selfPath));
    }
  }

  /** An identifier protoplugin imports (and may alias). */
  symbol(p: Printable): void {
    if (this.pending.length > 0) this.out.push(this.pending.join(""));
    this.pending = [];
    this.out.push(p);
  }

  /** Set while a block comment that a reference interrupted is open. */
  #inComment = false;

  /** Text of a template, its identifiers reserved. */
  text(s: string): void {
    let last = 0;
    if (this.#inComment) {
      // The rest of a comment a reference (a name in a doc comment) split.
      const end = s.indexOf("*/");
      if (end < 0) {
        this.pending.push(s);
        return;
      }
      this.#inComment = false;
      this.pending.push(s.slice(0, end + 2));
      s = s.slice(end + 2);
    }
    for (const m of s.matchAll(tokenRE)) {
      const token = m[0];
      if (token.startsWith("/*") && !token.endsWith("*/")) {
        this.#inComment = true;
      }
      if (token.startsWith("/") || token.startsWith('"')) continue;
      this.pending.push(s.slice(last, m.index));
      this.local(token);
      last = m.index + token.length;
    }
    this.pending.push(s.slice(last));
  }

  /** A template's code; `runtime` prints a reference to an entry point. */
  code(c: Code, runtime: (name: EntryPoint) => void): void {
    // Adjacent strings are joined first, so that a comment split by an
    // interpolated string is still seen whole by the tokenizer.
    let plain = "";
    for (const item of flatten(c)) {
      if (typeof item === "string") {
        plain += item;
        continue;
      }
      this.text(plain);
      plain = "";
      this.ref(item, runtime);
    }
    this.text(plain);
  }

  /**
   * Import statements, one a line: `import type` for bindings used as types
   * only. protoplugin's own import block comes before them.
   */
  imports(
    named: readonly NamedImport[],
    namespaces: RuntimeNames["namespaces"],
  ): void {
    const modules = [...new Set(named.map((i) => i.from))];
    for (const from of modules) {
      for (const typeOnly of [true, false]) {
        const specifiers = named
          .filter((i) => i.from === from && i.typeOnly === typeOnly)
          .map((i) =>
            i.name === i.local ? i.local : `${i.name} as ${i.local}`,
          );
        if (specifiers.length === 0) continue;
        this.raw(`import ${typeOnly ? "type " : ""}{ `);
        specifiers.forEach((s, i) => {
          if (i > 0) this.raw(", ");
          this.text(s);
        });
        this.raw(` } from ${JSON.stringify(from)};\n`);
      }
    }
    for (const { from, local } of namespaces) {
      this.raw("import * as ");
      this.local(local);
      this.raw(` from ${JSON.stringify(from)};\n`);
    }
    if (named.length + namespaces.length > 0) this.raw("\n");
  }

  /**
   * A runtime statement, with names as `names` settled them. `exported`
   * says whether a declaration the runtime exports keeps `export` here.
   */
  statement(
    pieces: readonly Piece[],
    names: RuntimeNames,
    exported: boolean,
  ): void {
    for (const piece of pieces) {
      if (typeof piece === "string") {
        this.pending.push(piece);
        continue;
      }
      switch (piece.kind) {
        case "export":
          if (exported) this.pending.push("export ");
          break;
        case "runtime": {
          const name = names.declaration(piece.id);
          if (piece.shorthand && name !== piece.text) {
            this.pending.push(`${piece.text}: `);
          }
          this.local(name);
          break;
        }
        case "import": {
          const local = names.imported(piece);
          if (piece.shorthand && local !== piece.local) {
            this.pending.push(`${piece.local}: `);
          }
          this.local(local);
          break;
        }
        case "namespace":
          this.local(names.namespace(piece));
          break;
        case "global":
          this.local(piece.name);
          break;
      }
    }
  }

  /** Hands the text to protoplugin. */
  finish(): void {
    this.out.push(this.pending.join(""));
    this.pending = [];
    this.f.print(this.out);
  }

  private ref(ref: Ref, runtime: (name: EntryPoint) => void): void {
    switch (ref.kind) {
      case "runtime":
        runtime(ref.name);
        break;
      case "local":
        this.local(ref.name);
        break;
      case "schema":
        this.symbol(this.message(ref));
        break;
      case "shape":
        this.symbol(this.message(ref));
        break;
      case "import":
        // Printed by imports(): the name is the file's.
        this.local(ref.name);
        break;
    }
  }

  private message(ref: Extract<Ref, { kind: "schema" | "shape" }>): Printable {
    const key = `${ref.kind} ${ref.desc.typeName}`;
    let p = this.messages.get(key);
    if (p === undefined) {
      p =
        ref.kind === "schema"
          ? this.f.importSchema(ref.desc)
          : this.f.importShape(ref.desc);
      this.messages.set(key, p);
    }
    return p;
  }
}

// Identifiers outside comments and strings, and not after a dot.
// A block comment left open runs to the end of the text: a reference
// interrupts it, and the text after the reference closes it.
const tokenRE =
  /\/\*[\s\S]*?(?:\*\/|$)|\/\/[^\n]*|"(?:\\.|[^"\\])*"|(?<!\.\s*)[A-Za-z_$][\w$]*/g;

/**
 * The identifiers of a template's text (not those after a dot, in comments
 * or in strings). The text is scanned whole, references standing in as a
 * space, so that a comment holding one is still one comment.
 */
export function templateIdentifiers(c: Code): Set<string> {
  const whole = [...flatten(c)]
    .map((item) => (typeof item === "string" ? item : " "))
    .join("");
  const found = new Set<string>();
  for (const m of whole.matchAll(tokenRE)) {
    if (!m[0].startsWith("/") && !m[0].startsWith('"')) found.add(m[0]);
  }
  return found;
}

/** The imports a template makes itself (`protobufType`), as bindings of the file. */
export function templateImports(c: Code): NamedImport[] {
  const found = new Map<string, NamedImport>();
  for (const item of flatten(c)) {
    if (typeof item === "string" || item.kind !== "import") continue;
    const key = JSON.stringify([item.from, item.name]);
    const known = found.get(key);
    found.set(key, {
      from: item.from,
      name: item.name,
      local: item.name,
      typeOnly: item.typeOnly && (known?.typeOnly ?? true),
    });
  }
  return [...found.values()];
}

function* flatten(c: Code): Generator<string | Ref> {
  for (const item of c) {
    if (typeof item === "string") yield item;
    else if (Array.isArray(item)) yield* flatten(item as Code);
    else yield item as Ref;
  }
}
