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
      readonly name: string;
      readonly shorthand: boolean;
    }
  | {
      readonly kind: "import";
      readonly name: string;
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
  | { readonly kind: "global"; readonly name: string };

/** A top-level name of the runtime: one or more statements (a const and a type may share a name). */
export interface RuntimeDeclaration {
  readonly name: string;
  readonly module: string;
  /** Position of the module in dependency order, then of the statement in its module. */
  readonly order: readonly [number, number];
  readonly statements: readonly (readonly Piece[])[];
  /** Names of the runtime declarations this one refers to. */
  readonly dependencies: ReadonlySet<string>;
  /** Marked `@public`: keeps its `export` in generated files. */
  readonly isPublic: boolean;
}

/**
 * The modules of `runtime-inline/`, cut into top-level declarations with the
 * references between them resolved, so that a generated file can copy exactly
 * the declarations its service reaches.
 */
export class RuntimeLibrary {
  readonly declarations: ReadonlyMap<string, RuntimeDeclaration>;

  private constructor(declarations: ReadonlyMap<string, RuntimeDeclaration>) {
    this.declarations = declarations;
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
    return new RuntimeLibrary(analyse(createProgram(sources)));
  }

  /** The declarations as JSON values, for fromJSON. */
  toJSON(): unknown {
    return [...this.declarations.values()].map((d) => ({
      ...d,
      dependencies: [...d.dependencies],
    }));
  }

  /** A library from what toJSON gave; throws on anything else. */
  static fromJSON(json: unknown): RuntimeLibrary {
    if (!Array.isArray(json)) throw new Error("not a runtime library");
    const declarations = new Map<string, RuntimeDeclaration>();
    for (const d of json as unknown[]) {
      if (!isDeclarationJSON(d)) throw new Error("not a runtime declaration");
      declarations.set(d.name, {
        ...d,
        dependencies: new Set(d.dependencies),
      });
    }
    return new RuntimeLibrary(declarations);
  }

  /** The declarations reachable from `roots`, in an order where definitions precede their top-level uses. */
  closure(roots: Iterable<string>): RuntimeDeclaration[] {
    const seen = new Set<string>();
    const visit = (name: string): void => {
      if (seen.has(name)) return;
      const decl = this.declarations.get(name);
      if (decl === undefined) {
        throw new Error(
          `template refers to unknown runtime declaration "${name}"`,
        );
      }
      seen.add(name);
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
    typeof d.name === "string" &&
    typeof d.module === "string" &&
    typeof d.isPublic === "boolean" &&
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
  /** The runtime's top-level declarations, by their name's parent node. */
  readonly declNodeToName: ReadonlyMap<TS.Node, string>;
}

/** A module's path relative to the runtime's folder, as sources() names it. */
function baseName(sf: TS.SourceFile): string {
  return sf.fileName.slice(1);
}

function analyse(program: {
  checker: TS.TypeChecker;
  sourceFiles: TS.SourceFile[];
}): Map<string, RuntimeDeclaration> {
  const { checker, sourceFiles } = program;
  const byModule = new Map<string, TopLevel[]>();
  const declNodeToName = new Map<TS.Node, string>();
  const seenNames = new Map<string, string>();
  for (const sf of sourceFiles) {
    const list: TopLevel[] = [];
    for (const statement of sf.statements) {
      const top = topLevelOf(statement, sf);
      if (top === undefined) continue;
      const other = seenNames.get(top.name);
      if (other !== undefined && other !== baseName(sf)) {
        throw new Error(
          `runtime-inline: "${top.name}" is declared in both ${other} and ${baseName(sf)}; top-level names must be unique`,
        );
      }
      seenNames.set(top.name, baseName(sf));
      declNodeToName.set(top.nameNode.parent, top.name);
      list.push(top);
    }
    byModule.set(baseName(sf), list);
  }

  const moduleOrder = orderModules(sourceFiles);
  const result = new Map<string, RuntimeDeclaration>();
  for (const sf of sourceFiles) {
    const context: Context = { checker, sourceFile: sf, declNodeToName };
    const moduleIndex = moduleOrder.indexOf(baseName(sf));
    const grouped = new Map<string, TopLevel[]>();
    for (const top of byModule.get(baseName(sf)) ?? []) {
      grouped.set(top.name, [...(grouped.get(top.name) ?? []), top]);
    }
    for (const [name, tops] of grouped) {
      const dependencies = new Set<string>();
      const statements = tops.map((t) =>
        cutStatement(t.statement, context, dependencies),
      );
      dependencies.delete(name);
      result.set(name, {
        name,
        module: baseName(sf),
        order: [moduleIndex, sf.statements.indexOf(tops[0]!.statement)],
        statements,
        dependencies,
        isPublic: tops.some((t) => hasPublicTag(t.statement)),
      });
    }
  }
  return result;
}

function lineOf(statement: TS.Statement, sf: TS.SourceFile): string {
  const { line } = sf.getLineAndCharacterOfPosition(statement.getStart(sf));
  return `${baseName(sf)}:${line + 1}`;
}

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

  // Only @public declarations stay exported in a generated file.
  if (!hasPublicTag(statement) && ts.canHaveModifiers(statement)) {
    const exportKeyword = ts
      .getModifiers(statement)
      ?.find((m) => m.kind === ts.SyntaxKind.ExportKeyword);
    if (exportKeyword !== undefined) {
      emitUpTo(exportKeyword.getStart(sf) - fullStart);
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
    if (piece.kind === "runtime") dependencies.add(piece.name);
  }
  emitUpTo(text.length);
  // Drop the blank lines that separated this statement from the previous one.
  if (typeof pieces[0] === "string") {
    pieces[0] = pieces[0].replace(/^\s*\n/, "");
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
    const runtimeName = declNodeToName.get(node);
    if (runtimeName !== undefined) {
      return { kind: "runtime", name: runtimeName, shorthand };
    }
    if (ts.isImportSpecifier(node)) {
      const importDecl = node.parent.parent.parent;
      const from = moduleSpecifierOf(importDecl);
      const importedName = (node.propertyName ?? node.name).getText(
        node.getSourceFile(),
      );
      if (from.startsWith(".")) {
        return { kind: "runtime", name: importedName, shorthand };
      }
      return {
        kind: "import",
        name: importedName,
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
