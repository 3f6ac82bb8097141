import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  Node,
  Project,
  SyntaxKind,
  type Identifier,
  type SourceFile,
  type Statement,
} from "ts-morph";

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

  static load(dir: string): RuntimeLibrary {
    const project = new Project({
      useInMemoryFileSystem: true,
      skipLoadingLibFiles: true,
      compilerOptions: { allowImportingTsExtensions: true, noResolve: true },
    });
    const files = readdirSync(dir)
      .filter((f) => f.endsWith(".ts") && !f.endsWith(".test.ts"))
      .sort();
    for (const f of files) {
      project.createSourceFile(f, readFileSync(join(dir, f), "utf8"));
    }
    return new RuntimeLibrary(analyse(project.getSourceFiles()));
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

interface TopLevel {
  readonly name: string;
  readonly statement: Statement;
  readonly nameNode: Node;
}

function analyse(sourceFiles: SourceFile[]): Map<string, RuntimeDeclaration> {
  const byModule = new Map<string, TopLevel[]>();
  const declNodeToName = new Map<Node, string>();
  const seenNames = new Map<string, string>();
  for (const sf of sourceFiles) {
    const list: TopLevel[] = [];
    for (const statement of sf.getStatements()) {
      const top = topLevelOf(statement);
      if (top === undefined) continue;
      const other = seenNames.get(top.name);
      if (other !== undefined && other !== sf.getBaseName()) {
        throw new Error(
          `runtime-inline: "${top.name}" is declared in both ${other} and ${sf.getBaseName()}; top-level names must be unique`,
        );
      }
      seenNames.set(top.name, sf.getBaseName());
      declNodeToName.set(top.nameNode.getParentOrThrow(), top.name);
      list.push(top);
    }
    byModule.set(sf.getBaseName(), list);
  }

  const moduleOrder = orderModules(sourceFiles);
  const result = new Map<string, RuntimeDeclaration>();
  for (const sf of sourceFiles) {
    const moduleIndex = moduleOrder.indexOf(sf.getBaseName());
    const grouped = new Map<string, TopLevel[]>();
    for (const top of byModule.get(sf.getBaseName()) ?? []) {
      grouped.set(top.name, [...(grouped.get(top.name) ?? []), top]);
    }
    for (const [name, tops] of grouped) {
      const dependencies = new Set<string>();
      const statements = tops.map((t) =>
        cutStatement(t.statement, declNodeToName, dependencies),
      );
      dependencies.delete(name);
      result.set(name, {
        name,
        module: sf.getBaseName(),
        order: [moduleIndex, tops[0]!.statement.getChildIndex()],
        statements,
        dependencies,
        isPublic: tops.some((t) => hasPublicTag(t.statement)),
      });
    }
  }
  return result;
}

function topLevelOf(statement: Statement): TopLevel | undefined {
  if (
    Node.isFunctionDeclaration(statement) ||
    Node.isClassDeclaration(statement) ||
    Node.isInterfaceDeclaration(statement) ||
    Node.isTypeAliasDeclaration(statement)
  ) {
    const nameNode = statement.getNameNode();
    if (nameNode === undefined) {
      throw new Error(
        `runtime-inline: anonymous declaration in ${statement.getSourceFile().getBaseName()}`,
      );
    }
    return { name: nameNode.getText(), statement, nameNode };
  }
  if (Node.isVariableStatement(statement)) {
    const decls = statement.getDeclarations();
    const first = decls[0];
    if (
      decls.length !== 1 ||
      first === undefined ||
      !Node.isIdentifier(first.getNameNode())
    ) {
      throw new Error(
        `runtime-inline: ${statement.getSourceFile().getBaseName()}:${statement.getStartLineNumber()}: declare one plain name per variable statement`,
      );
    }
    return { name: first.getName(), statement, nameNode: first.getNameNode() };
  }
  if (Node.isImportDeclaration(statement)) {
    return undefined;
  }
  if (
    Node.isEnumDeclaration(statement) ||
    Node.isModuleDeclaration(statement)
  ) {
    throw new Error(
      `runtime-inline: enums and namespaces are not erasable syntax (${statement.getSourceFile().getBaseName()})`,
    );
  }
  if (
    Node.isExportDeclaration(statement) ||
    Node.isExpressionStatement(statement)
  ) {
    throw new Error(
      `runtime-inline: ${statement.getSourceFile().getBaseName()}:${statement.getStartLineNumber()}: only declarations may appear at the top level`,
    );
  }
  return undefined;
}

/** Turns a statement into pieces: text, plus the identifiers that refer to runtime or imported names. */
function cutStatement(
  statement: Statement,
  declNodeToName: ReadonlyMap<Node, string>,
  dependencies: Set<string>,
): Piece[] {
  const fullStart = statement.getFullStart();
  const text = statement.getFullText();
  const pieces: Piece[] = [];
  let cursor = 0;
  const emitUpTo = (pos: number): void => {
    if (pos > cursor) pieces.push(text.slice(cursor, pos));
    cursor = pos;
  };

  // Only @public declarations stay exported in a generated file.
  if (!hasPublicTag(statement) && Node.isModifierable(statement)) {
    const exportKeyword = statement.getFirstModifierByKind(
      SyntaxKind.ExportKeyword,
    );
    if (exportKeyword !== undefined) {
      emitUpTo(exportKeyword.getStart() - fullStart);
      cursor = exportKeyword.getEnd() - fullStart;
      while (text[cursor] === " ") cursor++;
    }
  }

  for (const id of statement.getDescendantsOfKind(SyntaxKind.Identifier)) {
    const piece = resolveIdentifier(id, declNodeToName);
    if (piece === undefined) continue;
    const start = id.getStart() - fullStart;
    if (start < cursor) continue;
    emitUpTo(start);
    pieces.push(piece);
    cursor = id.getEnd() - fullStart;
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
  id: Identifier,
  declNodeToName: ReadonlyMap<Node, string>,
): Exclude<Piece, string> | undefined {
  const parent = id.getParentOrThrow();
  if (Node.isMetaProperty(parent)) return undefined;
  const shorthand = Node.isShorthandPropertyAssignment(parent);
  const symbol = shorthand
    ? id.getProject().getTypeChecker().getShorthandAssignmentValueSymbol(parent)
    : id.getSymbol();
  // Unresolved names are globals (lib files are not loaded); type positions
  // get the checker's "unknown" symbol, which has no declarations.
  if (symbol === undefined || symbol.getDeclarations().length === 0) {
    return isNamePosition(id)
      ? undefined
      : { kind: "global", name: id.getText() };
  }
  for (const node of symbol.getDeclarations()) {
    const runtimeName = declNodeToName.get(node);
    if (runtimeName !== undefined) {
      return { kind: "runtime", name: runtimeName, shorthand };
    }
    if (Node.isImportSpecifier(node)) {
      const importDecl = node.getImportDeclaration();
      const from = importDecl.getModuleSpecifierValue();
      const importedName = node.getName();
      if (from.startsWith(".")) {
        return { kind: "runtime", name: importedName, shorthand };
      }
      return {
        kind: "import",
        name: importedName,
        from,
        typeOnly: importDecl.isTypeOnly() || node.isTypeOnly(),
        shorthand,
      };
    }
    if (Node.isNamespaceImport(node)) {
      return {
        kind: "namespace",
        local: node.getName(),
        from: node
          .getFirstAncestorByKindOrThrow(SyntaxKind.ImportDeclaration)
          .getModuleSpecifierValue(),
      };
    }
  }
  return undefined;
}

// Names of members and properties never clash with imports.
function isNamePosition(id: Identifier): boolean {
  const parent = id.getParentOrThrow();
  if (Node.isPropertyAccessExpression(parent)) {
    return parent.getNameNode() === id;
  }
  if (Node.isQualifiedName(parent)) {
    return parent.getRight() === id;
  }
  return (
    (Node.isPropertyAssignment(parent) ||
      Node.isPropertySignature(parent) ||
      Node.isPropertyDeclaration(parent) ||
      Node.isMethodDeclaration(parent) ||
      Node.isMethodSignature(parent) ||
      Node.isGetAccessorDeclaration(parent) ||
      Node.isSetAccessorDeclaration(parent)) &&
    parent.getNameNode() === id
  );
}

function hasPublicTag(statement: Statement): boolean {
  if (!Node.isJSDocable(statement)) return false;
  return statement
    .getJsDocs()
    .some((doc) => doc.getTags().some((tag) => tag.getTagName() === "public"));
}

/** Modules in dependency order (imports first), ties broken by name for determinism. */
function orderModules(sourceFiles: SourceFile[]): string[] {
  const deps = new Map<string, string[]>();
  for (const sf of sourceFiles) {
    deps.set(
      sf.getBaseName(),
      sf
        .getImportDeclarations()
        .map((d) => d.getModuleSpecifierValue())
        .filter((m) => m.startsWith("./"))
        .map((m) => m.slice(2))
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
