import { collectGarbage } from "./performance/memory.ts";
import { formatAll } from "./performance/prettier-batches.ts";

/** prettier's defaults, written out so that a user's prettier config never changes generated output. */
export const prettierOptions = {
  printWidth: 80,
  tabWidth: 2,
  useTabs: false,
  semi: true,
  singleQuote: false,
  trailingComma: "all",
  bracketSpacing: true,
  arrowParens: "always",
  endOfLine: "lf",
} as const;

/**
 * Marker lines around and between the runtime statements of a generated
 * file. Service files share most of those statements; marked, each is
 * formatted once per run instead of once per file (formatting took most of
 * the generation's time and memory). prettier formats top-level statements
 * independently, so the result is the same as formatting the whole file.
 */
export const statementsStart = "// @@connect-standalone:statements";
export const statementsSeparator = "// @@connect-standalone:next";
export const statementsEnd = "// @@connect-standalone:end";

type Language = "typescript" | "javascript";

/** A generated file: its name, and its content, formatted in place. */
export interface GeneratedFile {
  readonly name: string;
  content: string;
}

/**
 * Formats generated TypeScript or JavaScript files in place; the language
 * follows the file name. All files of a run are formatted together: each
 * distinct text (a runtime statement, an import, the service's own code)
 * once, texts batched into few prettier calls (see
 * performance/prettier-batches.ts).
 */
export async function formatGeneratedFiles(
  files: readonly GeneratedFile[],
): Promise<void> {
  const sets = {
    typescript: new TextSet(),
    javascript: new TextSet(),
  } satisfies Record<Language, TextSet>;
  // Per file, its parts as indexes in its language's set of texts.
  const plans = files.map((file) => {
    const { language, parts } = split(file);
    const set = sets[language];
    const plan = {
      language,
      parts: parts.map((p) => ({ index: set.add(p.text), then: p.then })),
    };
    // Its distinct texts are copies (see TextSet.add): the file's whole
    // text, 170 KB a service, can go now rather than after formatting.
    file.content = "";
    return plan;
  });
  // The files' texts are garbage now.
  collectGarbage();
  const formatted = {
    typescript: await formatAll(
      sets.typescript.texts,
      optionsFor("typescript"),
    ),
    javascript: await formatAll(
      sets.javascript.texts,
      optionsFor("javascript"),
    ),
  };
  files.forEach((file, i) => {
    const { language, parts } = plans[i]!;
    file.content = parts
      .map((p) => formatted[language][p.index] + p.then)
      .join("");
  });
}

/** Distinct texts, numbered in the order they were first added. */
class TextSet {
  readonly texts: string[] = [];
  private readonly index = new Map<string, number>();

  add(text: string): number {
    let n = this.index.get(text);
    if (n === undefined) {
      n = this.texts.length;
      // A part of a larger string keeps all of it alive; a copy does not.
      const copy = structuredClone(text);
      this.texts.push(copy);
      this.index.set(copy, n);
    }
    return n;
  }
}

/** A text to format apart, and what follows it, formatted, in the file. */
interface Part {
  readonly text: string;
  readonly then: string;
}

/**
 * The parts of a file: the head (see headParts), each runtime statement and
 * the service's own code of a TypeScript file, with a blank line between
 * them; or the whole file.
 */
function split(file: GeneratedFile): { language: Language; parts: Part[] } {
  const { content } = file;
  const language = file.name.endsWith(".ts") ? "typescript" : "javascript";
  const start = content.indexOf(`${statementsStart}\n`);
  const end = content.indexOf(`${statementsEnd}\n`);
  // JavaScript is the TypeScript compiler's rewrite of the file, which keeps
  // the comments but not the statements as they were: formatted whole.
  if (language !== "typescript" || start < 0 || end < start) {
    return { language, parts: [{ text: withoutMarkers(content), then: "" }] };
  }
  const statements = content
    .slice(start + statementsStart.length + 1, end)
    .split(`\n${statementsSeparator}\n`)
    .filter((s) => s.trim() !== "");
  // protoplugin ends a file with a newline: a tail of nothing else is no
  // part, and the last statement then ends the file without a blank line.
  const tail = content.slice(end + statementsEnd.length + 1);
  const parts = [
    ...headParts(content.slice(0, start)),
    ...statements.map((text) => ({ text, then: "\n" })),
  ];
  if (tail.trim() !== "") parts.push({ text: tail, then: "" });
  else parts[parts.length - 1] = { ...parts.at(-1)!, then: "" };
  return { language, parts };
}

/**
 * The head of a file: comments, then imports one a line, as protoplugin and
 * emitService write them. Most imports recur from file to file; apart, each
 * is formatted once per run. prettier prints them one after the other, with
 * a blank line where the head had one, and the comments before them as they
 * are: the parts join the same way. A head of another shape is one part.
 */
function headParts(head: string): Part[] {
  const lines = head.split("\n");
  const first = lines.findIndex((line) => line.startsWith("import "));
  const imports = lines.slice(first);
  if (
    first < 0 ||
    !imports.every((line) => line === "" || /^import .*;$/.test(line))
  ) {
    return [{ text: head, then: "\n" }];
  }
  const parts: Part[] = [];
  const comments = lines.slice(0, first);
  while (comments.at(-1) === "") comments.pop();
  if (comments.length > 0) {
    parts.push({
      text: comments.join("\n"),
      then: comments.length < first ? "\n" : "",
    });
  }
  for (const line of imports) {
    const last = parts.at(-1);
    if (line !== "") parts.push({ text: line, then: "" });
    else if (last !== undefined)
      parts[parts.length - 1] = { ...last, then: "\n" };
  }
  // The blank line between the head and the statements.
  const last = parts.at(-1)!;
  parts[parts.length - 1] = { ...last, then: "\n" };
  return parts;
}

type Options = typeof prettierOptions & { parser: string; filepath: string };

/**
 * prettier's options for a language, first choice first. TypeScript goes to
 * prettier's Babel parser: a quarter to a third faster than its TypeScript
 * parser on generated code, with the same output there
 * (test/prettier.test.ts checks generated files against prettier's default
 * for .ts, the TypeScript parser); what Babel cannot parse goes to the
 * TypeScript parser.
 *
 * The file name tells prettier what it formats, as when it formats a file
 * on disk. Without one it looks for JSX in the text with a regular
 * expression that scans from every line start to the next quote (0.1 to
 * 0.3 s of a 100-service run, the more the larger the texts), and prints a
 * generic arrow function's type parameter as `<T,>`, as in a .tsx file.
 */
function optionsFor(language: Language): Options[] {
  switch (language) {
    case "typescript":
      return [
        { ...prettierOptions, parser: "babel-ts", filepath: "generated.ts" },
        { ...prettierOptions, parser: "typescript", filepath: "generated.ts" },
      ];
    case "javascript":
      return [
        { ...prettierOptions, parser: "babel", filepath: "generated.js" },
      ];
  }
}

// JavaScript keeps the marker comments where the TypeScript compiler put
// them; blank lines it dropped anyway, so the lines go without a trace.
const markerLines =
  /^[ \t]*\/\/ @@connect-standalone:(?:statements|next|end)\n/gm;

function withoutMarkers(content: string): string {
  return content.replace(markerLines, "");
}
