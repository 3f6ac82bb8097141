import { posix } from "node:path";
// ts-morph: a devDependency, so this module runs only where the package is
// built or checked out (see build-manifest.ts), never where it is installed.
import { Project, ts } from "ts-morph";
import {
  declarationId,
  entryPointsModule,
  RuntimeLibrary,
  type Piece,
  type RuntimeDeclaration,
  type Sources,
} from "../runtime-library.ts";
import { readSources } from "../runtime-manifest.ts";

/**
 * The analysis of runtime-inline/ (see its README for the rules it enforces,
 * each with an error naming the file and line): the modules cut into
 * top-level declarations, with the identifiers that refer to other runtime
 * declarations, to imports or to globals resolved by the type checker.
 *
 * It runs at build time (build-manifest.ts writes what it finds into
 * dist/runtime-manifest.json, which the plugin reads) and, in a checkout,
 * whenever that manifest is missing or older than the runtime's sources.
 */
export function analyseRuntime(sources: Sources): RuntimeLibrary {
  const { declarations, entryPoints } = analyse(createProgram(sources));
  return new RuntimeLibrary(declarations, entryPoints);
}

/** Reads and analyses the modules of `dir`. */
export function analyseRuntimeDir(dir: string): RuntimeLibrary {
  return analyseRuntime(readSources(dir));
}

/**
 * A program of the runtime's modules alone, in ts-morph's in-memory file
 * system: no lib files and no imported modules outside it, so that globals
 * and packages stay unresolved.
 */
function createProgram(files: Sources): {
  checker: ts.TypeChecker;
  sourceFiles: ts.SourceFile[];
} {
  const project = new Project({
    useInMemoryFileSystem: true,
    skipAddingFilesFromTsConfig: true,
    skipFileDependencyResolution: true,
    skipLoadingLibFiles: true,
    compilerOptions: {
      allowImportingTsExtensions: true,
      noResolve: true,
      noLib: true,
      target: ts.ScriptTarget.Latest,
    },
  });
  const paths = files.map(([name, text]) => {
    const path = `/${name}`;
    project.createSourceFile(path, text);
    return path;
  });
  // The compiler's own objects from here on: ts-morph's wrappers around
  // every node took most of the analysis's second.
  const program = project.getProgram().compilerObject;
  return {
    checker: program.getTypeChecker(),
    sourceFiles: paths.map((path) => program.getSourceFile(path)!),
  };
}

interface TopLevel {
  readonly name: string;
  readonly statement: ts.Statement;
  readonly nameNode: ts.Node;
}

/** What resolving identifiers needs. */
interface Context {
  readonly checker: ts.TypeChecker;
  readonly sourceFile: ts.SourceFile;
  /** The ids of the runtime's top-level declarations, by their name's parent node. */
  readonly declNodeToName: ReadonlyMap<ts.Node, string>;
}

/** A module's path relative to the runtime's folder, as sources() names it. */
function baseName(sf: ts.SourceFile): string {
  return sf.fileName.slice(1);
}

function analyse(program: {
  checker: ts.TypeChecker;
  sourceFiles: ts.SourceFile[];
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
  const declNodeToName = new Map<ts.Node, string>();
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
    (s): s is ts.InterfaceDeclaration =>
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

function lineOf(statement: ts.Statement, sf: ts.SourceFile): string {
  const { line } = sf.getLineAndCharacterOfPosition(statement.getStart(sf));
  return `${baseName(sf)}:${line + 1}`;
}

// Runtime modules, protobuf-es (a generated file's _pb imports need it
// anyway) and Node's built-ins: nothing a user would have to install.
const allowedImport = /^(\.{1,2}\/|@bufbuild\/protobuf(\/|$)|node:)/;

function topLevelOf(
  statement: ts.Statement,
  sf: ts.SourceFile,
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
function identifiersOf(node: ts.Node): ts.Identifier[] {
  const found: ts.Identifier[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isIdentifier(n)) found.push(n);
    for (const doc of jsDocsOf(n)) visit(doc);
    ts.forEachChild(n, visit);
  };
  visit(node);
  return found;
}

// `jsDoc` is the parser's own list of a node's JSDoc comments; the public
// ts.getJSDocCommentsAndTags also walks up to parents', which is not wanted.
function jsDocsOf(node: ts.Node): readonly ts.JSDoc[] {
  return (node as { jsDoc?: readonly ts.JSDoc[] }).jsDoc ?? [];
}

/** Turns a statement into pieces: text, plus the identifiers that refer to runtime or imported names. */
function cutStatement(
  statement: ts.Statement,
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

  const exportKeyword = ts.canHaveModifiers(statement)
    ? ts
        .getModifiers(statement)
        ?.find((m) => m.kind === ts.SyntaxKind.ExportKeyword)
    : undefined;
  let exportPending = exportKeyword !== undefined;
  const emitExport = (): void => {
    exportPending = false;
    emitUpTo(exportKeyword!.getStart(sf) - fullStart);
    pieces.push({ kind: "export" });
    cursor = exportKeyword!.end - fullStart;
    while (text[cursor] === " ") cursor++;
  };

  // The JSDoc's identifiers (`{@link Name}`) come before the export keyword.
  for (const id of identifiersOf(statement)) {
    const piece = resolveIdentifier(id, context);
    if (piece === undefined) continue;
    const start = id.getStart(sf) - fullStart;
    if (exportPending && start >= exportKeyword!.getStart(sf) - fullStart) {
      emitExport();
    }
    if (start < cursor) continue;
    emitUpTo(start);
    pieces.push(piece);
    cursor = id.end - fullStart;
    if (piece.kind === "runtime") dependencies.add(piece.id);
  }
  if (exportPending) emitExport();
  emitUpTo(text.length);
  // Drop the blank lines that separated this statement from the previous one.
  if (typeof pieces[0] === "string") {
    pieces[0] = pieces[0].replace(/^\s*\n/, "");
    if (pieces[0] === "") pieces.shift();
  }
  return pieces;
}

function resolveIdentifier(
  id: ts.Identifier,
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
  decl: ts.ImportDeclaration | ts.JSDocImportTag,
): string {
  return (decl.moduleSpecifier as ts.StringLiteral).text;
}

// Names of members and properties never clash with imports.
function isNamePosition(id: ts.Identifier): boolean {
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

function hasPublicTag(statement: ts.Statement): boolean {
  return jsDocsOf(statement).some(
    (doc) => doc.tags?.some((tag) => tag.tagName.text === "public") === true,
  );
}

/** Modules in dependency order (imports first), ties broken by name for determinism. */
function orderModules(sourceFiles: ts.SourceFile[]): string[] {
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
