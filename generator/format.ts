import { format } from "prettier";

/** prettier's defaults, written out so that a user's prettier config never changes generated output. */
const prettierOptions = {
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

// Formatted statements by their text, for the run (one plugin invocation).
const formattedStatements = new Map<string, Promise<string>>();

/** Formats generated TypeScript or JavaScript; the parser follows the file name. */
export async function formatGenerated(
  name: string,
  content: string,
): Promise<string> {
  const parser = name.endsWith(".ts") ? "typescript" : "babel";
  const options = { ...prettierOptions, parser };
  const start = content.indexOf(`${statementsStart}\n`);
  const end = content.indexOf(`${statementsEnd}\n`);
  // JavaScript is the TypeScript compiler's rewrite of the file, which keeps
  // the comments but not the statements as they were: formatted whole.
  if (parser !== "typescript" || start < 0 || end < start) {
    return format(withoutMarkers(content), options);
  }
  const statements = content
    .slice(start + statementsStart.length + 1, end)
    .split(`\n${statementsSeparator}\n`)
    .filter((s) => s.trim() !== "");
  const parts = await Promise.all([
    format(content.slice(0, start), options),
    ...statements.map((statement) => {
      let formatted = formattedStatements.get(statement);
      if (formatted === undefined) {
        formatted = format(statement, options);
        formattedStatements.set(statement, formatted);
      }
      return formatted;
    }),
    format(content.slice(end + statementsEnd.length + 1), options),
  ]);
  return parts.join("\n");
}

// JavaScript keeps the marker comments where the TypeScript compiler put
// them; blank lines it dropped anyway, so the lines go without a trace.
const markerLines =
  /^[ \t]*\/\/ @@connect-standalone:(?:statements|next|end)\n/gm;

function withoutMarkers(content: string): string {
  return content.replace(markerLines, "");
}
