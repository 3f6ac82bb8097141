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

/** Formats generated TypeScript or JavaScript; the parser follows the file name. */
export async function formatGenerated(
  name: string,
  content: string,
): Promise<string> {
  const parser = name.endsWith(".ts") ? "typescript" : "babel";
  return format(content, { ...prettierOptions, parser });
}
