import { format } from "prettier";
import { garbageCollector } from "./memory.ts";

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

type Parser = "typescript" | "babel";

/** A generated file: its name, and its content, formatted in place. */
export interface GeneratedFile {
  readonly name: string;
  content: string;
}

/**
 * Formats generated TypeScript or JavaScript files in place; the parser
 * follows the file name. All files of a run are formatted together: each
 * distinct text (a runtime statement, the head or the service code of a
 * file) once, texts batched into few prettier calls (see formatAll).
 */
export async function formatGeneratedFiles(
  files: readonly GeneratedFile[],
): Promise<void> {
  const batches = {
    typescript: new TextSet(),
    babel: new TextSet(),
  } satisfies Record<Parser, TextSet>;
  // Per file, the indexes of its texts in its parser's set, in file order.
  const plans = files.map((file) => {
    const { parser, texts } = split(file);
    const set = batches[parser];
    return { parser, indexes: texts.map((t) => set.add(t)) };
  });
  const formatted = {
    typescript: await formatAll(batches.typescript.texts, "typescript"),
    babel: await formatAll(batches.babel.texts, "babel"),
  };
  files.forEach((file, i) => {
    const { parser, indexes } = plans[i]!;
    file.content = indexes.map((n) => formatted[parser][n]).join("\n");
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
      this.texts.push(text);
      this.index.set(text, n);
    }
    return n;
  }
}

/**
 * The texts a file's formatted content is joined from (with newlines):
 * the head, each runtime statement and the service's own code of a
 * TypeScript file, or the whole file.
 */
function split(file: GeneratedFile): { parser: Parser; texts: string[] } {
  const { content } = file;
  const parser = file.name.endsWith(".ts") ? "typescript" : "babel";
  const start = content.indexOf(`${statementsStart}\n`);
  const end = content.indexOf(`${statementsEnd}\n`);
  // JavaScript is the TypeScript compiler's rewrite of the file, which keeps
  // the comments but not the statements as they were: formatted whole.
  if (parser !== "typescript" || start < 0 || end < start) {
    return { parser, texts: [withoutMarkers(content)] };
  }
  const statements = content
    .slice(start + statementsStart.length + 1, end)
    .split(`\n${statementsSeparator}\n`)
    .filter((s) => s.trim() !== "");
  return {
    parser,
    texts: [
      content.slice(0, start),
      ...statements,
      content.slice(end + statementsEnd.length + 1),
    ],
  };
}

/**
 * Texts joined into one prettier call, with this comment line between them.
 * Each prettier call costs a few milliseconds whatever its size (options,
 * plugins, parser set-up): called for each of some 500 texts of a
 * 100-service run, that was half of the formatting time.
 */
const batchSeparator = "// @@connect-standalone:batch";

/**
 * Large enough that the cost per call does not matter, small enough that
 * prettier's syntax tree and documents of one batch stay a few tens of MB.
 */
const batchChars = 64 * 1024;

/**
 * A file name tells prettier what it formats, as it does when it formats a
 * file on disk. Without one it looks for JSX in the text with a regular
 * expression that takes time growing with the square of the text's length
 * on code with few quotes, and prints a generic arrow function's type
 * parameter as `<T,>`, as in a .tsx file.
 */
const filepaths = {
  typescript: "generated.ts",
  babel: "generated.js",
} as const satisfies Record<Parser, string>;

/** Formats each text as prettier would format it alone. */
async function formatAll(texts: string[], parser: Parser): Promise<string[]> {
  const options = { ...prettierOptions, parser, filepath: filepaths[parser] };
  const result: string[] = new Array<string>(texts.length);
  const collect = garbageCollector();
  let batch: number[] = [];
  let size = 0;
  const flush = async () => {
    const formatted = await formatBatch(
      batch.map((n) => texts[n]!),
      options,
    );
    batch.forEach((n, i) => (result[n] = formatted[i]!));
    batch = [];
    size = 0;
    collect();
  };
  for (let n = 0; n < texts.length; n++) {
    const text = texts[n]!;
    // prettier makes nothing of blank text, and a batch needs a statement.
    if (text.trim() === "") {
      result[n] = await format(text, options);
      continue;
    }
    batch.push(n);
    size += text.length;
    if (size >= batchChars) await flush();
  }
  if (batch.length > 0) await flush();
  return result;
}

/**
 * Formats texts in one call. prettier prints top-level statements and
 * comments apart, keeping blank lines only where the input had them: with
 * the texts trimmed and a comment line between them, each comes out as it
 * would alone. Should a text hold the separator line itself, the pieces
 * would not add up, and the texts are formatted one by one instead.
 */
async function formatBatch(
  texts: string[],
  options: typeof prettierOptions & { parser: Parser; filepath: string },
): Promise<string[]> {
  if (texts.length === 1) return [await format(texts[0]!, options)];
  const joined = texts.map((t) => t.trim()).join(`\n${batchSeparator}\n`);
  const parts = (await format(joined, options)).split(`\n${batchSeparator}\n`);
  if (parts.length !== texts.length) {
    return Promise.all(texts.map((t) => format(t, options)));
  }
  // Every part but the last lost its final newline to the separator.
  return parts.map((p, i) => (i < parts.length - 1 ? `${p}\n` : p));
}

// JavaScript keeps the marker comments where the TypeScript compiler put
// them; blank lines it dropped anyway, so the lines go without a trace.
const markerLines =
  /^[ \t]*\/\/ @@connect-standalone:(?:statements|next|end)\n/gm;

function withoutMarkers(content: string): string {
  return content.replace(markerLines, "");
}
