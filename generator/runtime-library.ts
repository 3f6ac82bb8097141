/**
 * One piece of a runtime declaration's text. Identifiers that refer to other
 * runtime declarations or to imports are kept apart from plain text, so that
 * the emitter can rename them and produce the import statements they need.
 */
export type Piece =
  | string
  | {
      readonly kind: "runtime";
      /** The declaration referred to (see RuntimeDeclaration.id). */
      readonly id: string;
      /** The identifier as written (an import's alias, say). */
      readonly text: string;
      readonly shorthand: boolean;
    }
  | {
      readonly kind: "import";
      /** The name the package exports. */
      readonly name: string;
      /** The name the runtime module imports it as (its alias, else `name`). */
      readonly local: string;
      readonly from: string;
      readonly typeOnly: boolean;
      readonly shorthand: boolean;
    }
  | {
      readonly kind: "namespace";
      readonly local: string;
      readonly from: string;
    }
  /** A free identifier (a global such as Headers or Promise): imports must not shadow it. */
  | { readonly kind: "global"; readonly name: string }
  /**
   * Where the module's `export ` was: a generated file keeps it for `@public`
   * declarations and for what another generated file imports.
   */
  | { readonly kind: "export" };

/** A top-level name of the runtime: one or more statements (a const and a type may share a name). */
export interface RuntimeDeclaration {
  /** `<module without .ts>#<name>`: names are unique per module only. */
  readonly id: string;
  /** The name as declared; the emitter renames it if another takes it. */
  readonly name: string;
  /** Path relative to runtime-inline/ ("core/errors.ts"). */
  readonly module: string;
  /** Position of the module in dependency order, then of the statement in its module. */
  readonly order: readonly [number, number];
  readonly statements: readonly (readonly Piece[])[];
  /** Ids of the runtime declarations this one refers to. */
  readonly dependencies: ReadonlySet<string>;
  /** Marked `@public`: keeps its `export` in generated files. */
  readonly isPublic: boolean;
  /** Declares a value (a function, class or variable), not only a type. */
  readonly hasValue: boolean;
}

/**
 * The modules of `runtime-inline/`, cut into top-level declarations with the
 * references between them resolved, so that a generated file can copy exactly
 * the declarations its service reaches.
 *
 * This module is the analysis's result only, and imports no compiler: the
 * analysis (generator/build/analyse-runtime.ts) runs when the package is
 * built, and the plugin reads what it found from the shipped manifest
 * (generator/runtime-manifest.ts).
 */
export class RuntimeLibrary {
  /** By id. */
  readonly declarations: ReadonlyMap<string, RuntimeDeclaration>;
  /**
   * The names templates may use (the keys of `EntryPoints` in
   * entry-points.ts), with the id of the declaration each stands for.
   */
  readonly entryPoints: ReadonlyMap<string, string>;

  constructor(
    declarations: ReadonlyMap<string, RuntimeDeclaration>,
    entryPoints: ReadonlyMap<string, string>,
  ) {
    this.declarations = declarations;
    this.entryPoints = entryPoints;
  }

  /** The library as JSON values, for fromJSON. */
  toJSON(): unknown {
    return {
      entryPoints: Object.fromEntries(this.entryPoints),
      declarations: [...this.declarations.values()].map((d) => ({
        ...d,
        dependencies: [...d.dependencies],
      })),
    };
  }

  /** A library from what toJSON gave; throws on anything else. */
  static fromJSON(json: unknown): RuntimeLibrary {
    const { entryPoints, declarations: list } = (json ?? {}) as {
      entryPoints?: unknown;
      declarations?: unknown;
    };
    if (
      !Array.isArray(list) ||
      typeof entryPoints !== "object" ||
      entryPoints === null ||
      !Object.values(entryPoints).every((v) => typeof v === "string")
    ) {
      throw new Error("not a runtime library");
    }
    const declarations = new Map<string, RuntimeDeclaration>();
    for (const d of list as unknown[]) {
      if (!isDeclarationJSON(d)) throw new Error("not a runtime declaration");
      declarations.set(d.id, {
        ...d,
        dependencies: new Set(d.dependencies),
      });
    }
    return new RuntimeLibrary(
      declarations,
      new Map(Object.entries(entryPoints as Record<string, string>)),
    );
  }

  /** The id of the entry point `name`; throws if there is none. */
  entryPoint(name: string): string {
    const id = this.entryPoints.get(name);
    if (id === undefined) {
      throw new Error(
        `template refers to "${name}", which is not in EntryPoints (runtime-inline/entry-points.ts)`,
      );
    }
    return id;
  }

  /** The declarations reachable from the ids `roots`, in an order where definitions precede their top-level uses. */
  closure(roots: Iterable<string>): RuntimeDeclaration[] {
    const seen = new Set<string>();
    const visit = (id: string): void => {
      if (seen.has(id)) return;
      const decl = this.declarations.get(id);
      if (decl === undefined) {
        throw new Error(`unknown runtime declaration "${id}"`);
      }
      seen.add(id);
      for (const dep of decl.dependencies) visit(dep);
    };
    for (const root of roots) visit(root);
    return [...seen]
      .map((n) => this.declarations.get(n)!)
      .sort((a, b) => a.order[0] - b.order[0] || a.order[1] - b.order[1]);
  }
}

/** Module sources: file name, then text. */
export type Sources = readonly (readonly [name: string, text: string])[];

type DeclarationJSON = Omit<RuntimeDeclaration, "dependencies"> & {
  readonly dependencies: readonly string[];
};

// The shape, not every piece: the JSON is what toJSON wrote (into the
// manifest, see runtime-manifest.ts), read back to be sure it is whole.
function isDeclarationJSON(value: unknown): value is DeclarationJSON {
  const d = value as Partial<Record<keyof DeclarationJSON, unknown>>;
  return (
    typeof value === "object" &&
    value !== null &&
    typeof d.id === "string" &&
    typeof d.name === "string" &&
    typeof d.module === "string" &&
    typeof d.isPublic === "boolean" &&
    typeof d.hasValue === "boolean" &&
    Array.isArray(d.order) &&
    d.order.length === 2 &&
    Array.isArray(d.statements) &&
    d.statements.every(Array.isArray) &&
    Array.isArray(d.dependencies) &&
    d.dependencies.every((n) => typeof n === "string")
  );
}

/** The module that lists the entry points; read for EntryPoints, never copied. */
export const entryPointsModule = "entry-points.ts";

/** The id of `name` declared in `module`. */
export function declarationId(module: string, name: string): string {
  return `${module.replace(/\.ts$/, "")}#${name}`;
}
