import type { Piece, RuntimeDeclaration } from "./runtime-library.ts";

type ImportPiece = Extract<Piece, { kind: "import" }>;
type NamespacePiece = Extract<Piece, { kind: "namespace" }>;

/** An import a file needs: `import { name as local } from "from"`. */
export interface NamedImport {
  readonly from: string;
  readonly name: string;
  readonly local: string;
  /** Used in type positions only. */
  readonly typeOnly: boolean;
}

/** The identifiers of a file's runtime part, settled. */
export interface RuntimeNames {
  /** The name of the declaration `id` in the file. */
  declaration(id: string): string;
  /** The local name of an imported binding, as a runtime module wrote it. */
  imported(piece: ImportPiece): string;
  namespace(piece: NamespacePiece): string;
  /** The file's named imports, sorted by module, then name, then local. */
  readonly imports: readonly NamedImport[];
  /**
   * `@public` declarations whose name the file's own code takes (a service
   * named `Http` has an `HttpClient`): renamed like private ones, and not
   * exported, so that no file exports a public name under another.
   */
  readonly shadowed: readonly RuntimeDeclaration[];
  /** The file's namespace imports (`import * as local`), sorted by module. */
  readonly namespaces: readonly {
    readonly from: string;
    readonly local: string;
  }[];
}

/**
 * Step two of writing a file: names for the runtime's declarations and
 * imports, given what the file's own code (the service's API) declares,
 * uses and imports.
 *
 * Runtime modules are plain modules: a private helper may share its name
 * with one of another module, and a module may import under an alias of its
 * choice. Copied into one file, names are claimed in this order, each keeping
 * its own if it is still free, else taking the first free `name$1`,
 * `name$2`...:
 * 1. `@public` declarations, which are API: never renamed while exported
 *    (see `shadowed` for those whose name the service's own code takes);
 * 2. imports, under the local names the runtime gave them;
 * 3. private declarations, in the order they are printed.
 * The globals the runtime uses (`Headers`, `Promise`) are never claimed, so
 * nothing copied shadows them.
 */
export function nameRuntime(
  declarations: readonly RuntimeDeclaration[],
  own: {
    /** The top-level names the file's own code declares. */
    readonly declared?: Iterable<string>;
    /** Every other identifier of its code (member names, locals): private declarations avoid them too. */
    readonly identifiers?: Iterable<string>;
    readonly imports?: readonly NamedImport[];
  } = {},
): RuntimeNames {
  const ownImports = own.imports ?? [];
  const used = new Set(own.declared);
  const pieces = declarations.flatMap((d) =>
    d.statements.flatMap((s) =>
      s.filter((p): p is Exclude<Piece, string> => typeof p !== "string"),
    ),
  );
  for (const p of pieces) if (p.kind === "global") used.add(p.name);
  const claim = (name: string): string => {
    let free = name;
    for (let i = 1; used.has(free); i++) free = `${name}$${i}`;
    used.add(free);
    return free;
  };

  // The file's own imports are written into its template's text as they are.
  for (const own of ownImports) {
    if (used.has(own.local)) {
      throw new Error(
        `the template's import "${own.local}" clashes with a name of the file`,
      );
    }
    used.add(own.local);
  }
  const names = new Map<string, string>();
  const shadowed: RuntimeDeclaration[] = [];
  for (const d of declarations) {
    if (!d.isPublic) continue;
    if (used.has(d.name)) shadowed.push(d);
    else names.set(d.id, claim(d.name));
  }
  // Not a clash for what is exported (a method called `Code` is a member
  // name), but private names stay clear of them, to be read without doubt.
  for (const name of own.identifiers ?? []) used.add(name);

  // One binding per module, name and local: two modules importing the same
  // thing under the same name share the import.
  const bindings = new Map<
    string,
    { binding: NamedImport; typeOnly: boolean }
  >();
  const key = (from: string, name: string, local: string) =>
    JSON.stringify([from, name, local]);
  for (const own of ownImports) {
    bindings.set(key(own.from, own.name, own.local), {
      binding: own,
      typeOnly: own.typeOnly,
    });
  }
  const namespaceLocals = new Map<string, string>();
  for (const p of pieces) {
    if (p.kind === "namespace" && !namespaceLocals.has(p.from)) {
      namespaceLocals.set(p.from, claim(p.local));
    }
    if (p.kind !== "import") continue;
    const k = key(p.from, p.name, p.local);
    const known = bindings.get(k);
    if (known === undefined) {
      bindings.set(k, {
        binding: {
          from: p.from,
          name: p.name,
          local: claim(p.local),
          typeOnly: p.typeOnly,
        },
        typeOnly: p.typeOnly,
      });
    } else if (!p.typeOnly) {
      // A value use anywhere makes it a value import.
      known.typeOnly = false;
    }
  }

  for (const d of declarations) {
    if (!names.has(d.id)) names.set(d.id, claim(d.name));
  }

  const imports = [...bindings.values()]
    .map(({ binding, typeOnly }) => ({ ...binding, typeOnly }))
    .sort(
      (a, b) =>
        compare(a.from, b.from) ||
        compare(a.name, b.name) ||
        compare(a.local, b.local),
    );
  return {
    declaration(id) {
      const name = names.get(id);
      if (name === undefined) throw new Error(`"${id}" was not selected`);
      return name;
    },
    imported(p) {
      return bindings.get(key(p.from, p.name, p.local))!.binding.local;
    },
    namespace(p) {
      return namespaceLocals.get(p.from)!;
    },
    imports,
    shadowed,
    namespaces: [...namespaceLocals]
      .map(([from, local]) => ({ from, local }))
      .sort((a, b) => compare(a.from, b.from)),
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
