import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { posix } from "node:path";
// The compiler API itself, not ts-morph's wrappers: wrapping every node of
// the runtime took most of the analysis's second.
import type * as TS from "typescript";
import { ts } from "./typescript.ts";

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
 */
export class RuntimeLibrary {
  /** By id. */
  readonly declarations: ReadonlyMap<string, RuntimeDeclaration>;
  /**
   * The names templates may use (the keys of `EntryPoints` in
   * entry-points.ts), with the id of the declaration each stands for.
   */
  readonly entryPoints: ReadonlyMap<string, string>;

  private constructor(
    declarations: ReadonlyMap<string, RuntimeDeclaration>,
    entryPoints: ReadonlyMap<string, string>,
  ) {
    this.declarations = declarations;
    this.entryPoints = entryPoints;
  }

  /** Reads and analyses the modules of `dir`. */
  static load(dir: string): RuntimeLibrary {
    return RuntimeLibrary.analyse(RuntimeLibrary.sources(dir));
  }

  /**
   * The modules of `dir` and its folders (tests excluded), by path relative
   * to `dir` with `/` between folders ("server/router.ts").
   */
  static sources(dir: string): Sources {
    return readdirSync(dir, { recursive: true, encoding: "utf8" })
      .map((f) => f.split("\\").join("/"))
      .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
      .sort()
      .map((f) => [f, readFileSync(join(dir, f), "utf8")] as const);
  }

  static analyse(sources: Sources): RuntimeLibrary {
    const { declarations, entryPoints } = analyse(createProgram(sources));
    return new RuntimeLibrary(declarations, entryPoints);
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

// The shape, not every piece: the JSON is what toJSON wrote (see
// runtime-cache.ts), read back to be sure it is whole.
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

/**
 * A program of the runtime's modules alone: no lib files and no imported
 * modules outside it, so that globals and packages stay unresolved.
 */
function createProgram(files: Sources): {
  checker: TS.TypeChecker;
  sourceFiles: TS.SourceFile[];
} {
  const options: TS.CompilerOptions = {
    allowImportingTsExtensions: true,
    noResolve: true,
  };
  const sources = new Map<string, TS.SourceFile>();
  for (const [name, text] of files) {
    const path = `/${name}`;
    sources.set(
      path,
      ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true),
    );
  }
  const host: TS.CompilerHost = {
    getSourceFile: (path) => sources.get(path),
    getDefaultLibFileName: () => "/lib.d.ts",
    writeFile: () => {},
    getCurrentDirectory: () => "/",
    getCanonicalFileName: (path) => path,
    useCaseSensitiveFileNames: () => true,
    getNewLine: () => "\n",
    fileExists: (path) => sources.has(path),
    readFile: () => undefined,
  };
  const program = ts.createProgram([...sources.keys()], options, host);
  return {
    checker: program.getTypeChecker(),
    sourceFiles: [...sources.values()],
  };
}

interface TopLevel {
  readonly name: string;
  readonly statement: TS.Statement;
  readonly nameNode: TS.Node;
}

/** What resolving identifiers needs. */
interface Context {
  readonly checker: TS.TypeChecker;
  readonly sourceFile: TS.SourceFile;
  /** The ids of the runtime's top-level declarations, by their name's parent node. */
  readonly declNodeToName: ReadonlyMap<TS.Node, string>;
}

/** A module's path relative to the runtime's folder, as sources() names it. */
function baseName(sf: TS.SourceFile): string {
  return sf.fileName.slice(1);
}

/** The module that lists the entry points; read for EntryPoints, never copied. */
export const entryPointsModule = "entry-points.ts";

/** The id of `name` declared in `module`. */
export function declarationId(module: string, name: string): string {
  return `${module.replace(/\.ts$/, "")}#${name}`;
}

function analyse(program: {
  checker: TS.TypeChecker;
  sourceFiles: TS.SourceFile[];
}): {
  declarations: Map<string, RuntimeDeclaration>;
  entryPoints: Map<string, string>;
} {
  const { checker } = program;
  const entryFile = program.sourceFiles.find(
    (sf) => baseName(sf) === entryPointsModule,
  );
  const sourceFiles = program.sourceFiles.filter((sf) => sf !== entryFile);
  const byModule = new Map<string, TopLevel[]>();
  const declNodeToName = new Map<TS.Node, string>();
  const publicNames = new Map<string, string>();
  for (const sf of sourceFiles) {
    const list: TopLevel[] = [];
    for (const statement of sf.statements) {
      const top = topLevelOf(statement, sf);
      if (top === undefined) continue;
      // Public names are API, never renamed: two would clash in every file.
      if (hasPublicTag(statement)) {
        const other = publicNames.get(top.name);
        if (other !== undefined && other !== baseName(sf)) {
          throw new Error(
            `runtime-inline: "${top.name}" is @public in both ${other} and ${baseName(sf)}`,
          );
        }
        publicNames.set(top.name, baseName(sf));
      }
      declNodeToName.set(
        top.nameNode.parent,
        declarationId(baseName(sf), top.name),
      );
      list.push(top);
    }
    byModule.set(baseName(sf), list);
  }

  const moduleOrder = orderModules(sourceFiles);
  const declarations = new Map<string, RuntimeDeclaration>();
  for (const sf of sourceFiles) {
    const context: Context = { checker, sourceFile: sf, declNodeToName };
    const moduleIndex = moduleOrder.indexOf(baseName(sf));
    const grouped = new Map<string, TopLevel[]>();
    for (const top of byModule.get(baseName(sf)) ?? []) {
      grouped.set(top.name, [...(grouped.get(top.name) ?? []), top]);
    }
    for (const [name, tops] of grouped) {
      const id = declarationId(baseName(sf), name);
      const dependencies = new Set<string>();
      const statements = tops.map((t) =>
        cutStatement(t.statement, context, dependencies),
      );
      dependencies.delete(id);
      declarations.set(id, {
        id,
        name,
        module: baseName(sf),
        order: [moduleIndex, sf.statements.indexOf(tops[0]!.statement)],
        statements,
        dependencies,
        isPublic: tops.some((t) => hasPublicTag(t.statement)),
        hasValue: tops.some(
          (t) =>
            !ts.isInterfaceDeclaration(t.statement) &&
            !ts.isTypeAliasDeclaration(t.statement),
        ),
      });
    }
  }
  const entryPoints =
    entryFile === undefined
      ? new Map<string, string>()
      : readEntryPoints({ checker, sourceFile: entryFile, declNodeToName });
  return { declarations, entryPoints };
}

/**
 * The properties of `interface EntryPoints`: each names the declaration its
 * type refers to first (`typeof x`, or a type `T<...>`).
 */
function readEntryPoints(context: Context): Map<string, string> {
  const sf = context.sourceFile;
  const entryPoints = new Map<string, string>();
  const list = sf.statements.find(
    (s): s is TS.InterfaceDeclaration =>
      ts.isInterfaceDeclaration(s) && s.name.text === "EntryPoints",
  );
  if (list === undefined) {
    throw new Error(
      `runtime-inline: ${entryPointsModule} declares no interface EntryPoints`,
    );
  }
  for (const member of list.members) {
    if (!ts.isPropertySignature(member) || member.type === undefined) continue;
    const key = member.name.getText(sf);
    const id = identifiersOf(member.type)
      .map((i) => resolveIdentifier(i, context))
      .find((p) => p?.kind === "runtime");
    if (id?.kind !== "runtime") {
      throw new Error(
        `runtime-inline: ${entryPointsModule}: EntryPoints.${key} refers to no runtime declaration`,
      );
    }
    entryPoints.set(key, id.id);
  }
  return entryPoints;
}

function lineOf(statement: TS.Statement, sf: TS.SourceFile): string {
  const { line } = sf.getLineAndCharacterOfPosition(statement.getStart(sf));
  return `${baseName(sf)}:${line + 1}`;
}

// Runtime modules, protobuf-es (a generated file's _pb imports need it
// anyway) and Node's built-ins: nothing a user would have to install.
const allowedImport = /^(\.{1,2}\/|@bufbuild\/protobuf(\/|$)|node:)/;

function topLevelOf(
  statement: TS.Statement,
  sf: TS.SourceFile,
): TopLevel | undefined {
  if (
    ts.isFunctionDeclaration(statement) ||
    ts.isClassDeclaration(statement) ||
    ts.isInterfaceDeclaration(statement) ||
    ts.isTypeAliasDeclaration(statement)
  ) {
    const nameNode = statement.name;
    if (nameNode === undefined) {
      throw new Error(
        `runtime-inline: anonymous declaration in ${baseName(sf)}`,
      );
    }
    return { name: nameNode.getText(sf), statement, nameNode };
  }
  if (ts.isVariableStatement(statement)) {
    const decls = statement.declarationList.declarations;
    const first = decls[0];
    if (
      decls.length !== 1 ||
      first === undefined ||
      !ts.isIdentifier(first.name)
    ) {
      throw new Error(
        `runtime-inline: ${lineOf(statement, sf)}: declare one plain name per variable statement`,
      );
    }
    return { name: first.name.getText(sf), statement, nameNode: first.name };
  }
  if (ts.isImportDeclaration(statement)) {
    const from = moduleSpecifierOf(statement);
    if (!allowedImport.test(from)) {
      throw new Error(
        `runtime-inline: ${lineOf(statement, sf)}: imports "${from}"; generated files may import only @bufbuild/protobuf and node: built-ins`,
      );
    }
    const bindings = statement.importClause?.namedBindings;
    if (
      bindings !== undefined &&
      ts.isNamespaceImport(bindings) &&
      moduleSpecifierOf(statement).startsWith(".")
    ) {
      throw new Error(
        `runtime-inline: ${lineOf(statement, sf)}: import runtime modules by name, not as a namespace`,
      );
    }
    return undefined;
  }
  if (ts.isEnumDeclaration(statement) || ts.isModuleDeclaration(statement)) {
    throw new Error(
      `runtime-inline: enums and namespaces are not erasable syntax (${baseName(sf)})`,
    );
  }
  if (
    ts.isExportDeclaration(statement) ||
    ts.isExportAssignment(statement) ||
    ts.isExpressionStatement(statement)
  ) {
    throw new Error(
      `runtime-inline: ${lineOf(statement, sf)}: only declarations may appear at the top level`,
    );
  }
  return undefined;
}

/**
 * The identifiers of a node in source order, those of its JSDoc comments
 * included (a `{@link Name}` is a reference like any other).
 */
function identifiersOf(node: TS.Node): TS.Identifier[] {
  const found: TS.Identifier[] = [];
  const visit = (n: TS.Node): void => {
    if (ts.isIdentifier(n)) found.push(n);
    for (const doc of jsDocsOf(n)) visit(doc);
    ts.forEachChild(n, visit);
  };
  visit(node);
  return found;
}

// `jsDoc` is the parser's own list of a node's JSDoc comments; the public
// ts.getJSDocCommentsAndTags also walks up to parents', which is not wanted.
function jsDocsOf(node: TS.Node): readonly TS.JSDoc[] {
  return (node as { jsDoc?: readonly TS.JSDoc[] }).jsDoc ?? [];
}

/** Turns a statement into pieces: text, plus the identifiers that refer to runtime or imported names. */
function cutStatement(
  statement: TS.Statement,
  context: Context,
  dependencies: Set<string>,
): Piece[] {
  const sf = context.sourceFile;
  const fullStart = statement.pos;
  const text = sf.text.slice(statement.pos, statement.end);
  const pieces: Piece[] = [];
  let cursor = 0;
  const emitUpTo = (pos: number): void => {
    if (pos > cursor) pieces.push(text.slice(cursor, pos));
    cursor = pos;
  };

  if (ts.canHaveModifiers(statement)) {
    const exportKeyword = ts
      .getModifiers(statement)
      ?.find((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    if (exportKeyword !== undefined) {
      emitUpTo(exportKeyword.getStart(sf) - fullStart);
      pieces.push({ kind: "export" });
      cursor = exportKeyword.end - fullStart;
      while (text[cursor] === " ") cursor++;
    }
  }

  for (const id of identifiersOf(statement)) {
    const piece = resolveIdentifier(id, context);
    if (piece === undefined) continue;
    const start = id.getStart(sf) - fullStart;
    if (start < cursor) continue;
    emitUpTo(start);
    pieces.push(piece);
    cursor = id.end - fullStart;
    if (piece.kind === "runtime") dependencies.add(piece.id);
  }
  emitUpTo(text.length);
  // Drop the blank lines that separated this statement from the previous one.
  if (typeof pieces[0] === "string") {
    pieces[0] = pieces[0].replace(/^\s*\n/, "");
    if (pieces[0] === "") pieces.shift();
  }
  return pieces;
}

function resolveIdentifier(
  id: TS.Identifier,
  context: Context,
): Exclude<Piece, string> | undefined {
  const { checker, declNodeToName, sourceFile: sf } = context;
  const parent = id.parent;
  if (ts.isMetaProperty(parent)) return undefined;
  // A member name (`x.name`) refers to no top-level name: the only way it
  // could, a namespace import of a runtime module, is refused (topLevelOf).
  // Resolving it would type-check `x`, which took most of the analysis's
  // time.
  if (ts.isPropertyAccessExpression(parent) && parent.name === id) {
    return undefined;
  }
  const shorthand = ts.isShorthandPropertyAssignment(parent);
  const symbol = shorthand
    ? checker.getShorthandAssignmentValueSymbol(parent)
    : checker.getSymbolAtLocation(id);
  // Unresolved names are globals (lib files are not loaded); type positions
  // get the checker's "unknown" symbol, which has no declarations.
  const declarations = symbol?.declarations ?? [];
  if (declarations.length === 0) {
    return isNamePosition(id)
      ? undefined
      : { kind: "global", name: id.getText(sf) };
  }
  for (const node of declarations) {
    const runtimeId = declNodeToName.get(node);
    if (runtimeId !== undefined) {
      return { kind: "runtime", id: runtimeId, text: id.text, shorthand };
    }
    if (ts.isImportSpecifier(node)) {
      const importDecl = node.parent.parent.parent;
      const from = moduleSpecifierOf(importDecl);
      const importedName = (node.propertyName ?? node.name).getText(
        node.getSourceFile(),
      );
      if (from.startsWith(".")) {
        const module = posix.join(posix.dirname(baseName(sf)), from);
        return {
          kind: "runtime",
          id: declarationId(module, importedName),
          text: id.text,
          shorthand,
        };
      }
      return {
        kind: "import",
        name: importedName,
        local: node.name.getText(node.getSourceFile()),
        from,
        typeOnly:
          importDecl.importClause?.isTypeOnly === true || node.isTypeOnly,
        shorthand,
      };
    }
    if (ts.isNamespaceImport(node)) {
      return {
        kind: "namespace",
        local: node.name.text,
        from: moduleSpecifierOf(node.parent.parent),
      };
    }
  }
  return undefined;
}

function moduleSpecifierOf(
  decl: TS.ImportDeclaration | TS.JSDocImportTag,
): string {
  return (decl.moduleSpecifier as TS.StringLiteral).text;
}

// Names of members and properties never clash with imports.
function isNamePosition(id: TS.Identifier): boolean {
  const parent = id.parent;
  if (ts.isPropertyAccessExpression(parent)) {
    return parent.name === id;
  }
  if (ts.isQualifiedName(parent)) {
    return parent.right === id;
  }
  return (
    (ts.isPropertyAssignment(parent) ||
      ts.isPropertySignature(parent) ||
      ts.isPropertyDeclaration(parent) ||
      ts.isMethodDeclaration(parent) ||
      ts.isMethodSignature(parent) ||
      ts.isGetAccessorDeclaration(parent) ||
      ts.isSetAccessorDeclaration(parent)) &&
    parent.name === id
  );
}

function hasPublicTag(statement: TS.Statement): boolean {
  return jsDocsOf(statement).some(
    (doc) => doc.tags?.some((tag) => tag.tagName.text === "public") === true,
  );
}

/** Modules in dependency order (imports first), ties broken by name for determinism. */
function orderModules(sourceFiles: TS.SourceFile[]): string[] {
  const deps = new Map<string, string[]>();
  for (const sf of sourceFiles) {
    deps.set(
      baseName(sf),
      sf.statements
        .filter(ts.isImportDeclaration)
        .map(moduleSpecifierOf)
        .filter((m) => m.startsWith("."))
        .map((m) => posix.join(posix.dirname(baseName(sf)), m))
        .sort(),
    );
  }
  const order: string[] = [];
  const visiting = new Set<string>();
  const visit = (name: string): void => {
    if (order.includes(name) || visiting.has(name)) return;
    visiting.add(name);
    for (const dep of deps.get(name) ?? []) visit(dep);
    order.push(name);
  };
  for (const name of [...deps.keys()].sort()) visit(name);
  return order;
}
