import { format, type Options } from "prettier";
import { garbageCollector } from "./memory.ts";

/**
 * Texts joined into one prettier call, with this comment line between them.
 * Each prettier call costs a few milliseconds whatever its size (options,
 * plugins, parser set-up): called for each of some 500 texts of a
 * 100-service run, that was about half of the formatting time.
 */
const batchSeparator = "// @@connect-standalone:batch";

/**
 * Large enough that the cost per call does not matter, small enough that
 * prettier's syntax tree and documents of one batch stay a few tens of MB.
 */
const batchChars = 64 * 1024;

/**
 * Formats each text as prettier would format it alone, with the first of
 * `options` that parses it (see formatBatch).
 */
export async function formatAll(
  texts: string[],
  options: readonly Options[],
): Promise<string[]> {
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
    // prettier makes nothing of blank text (and a batch needs statements).
    if (text.trim() === "") {
      result[n] = "";
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
 * would not add up, and the texts are formatted one by one instead. What
 * the parser of the first options cannot parse goes to the next.
 */
async function formatBatch(
  texts: string[],
  [options, ...fallbacks]: readonly Options[],
): Promise<string[]> {
  try {
    if (texts.length === 1) return [await format(texts[0]!, options)];
    const joined = texts.map((t) => t.trim()).join(`\n${batchSeparator}\n`);
    const parts = (await format(joined, options)).split(
      `\n${batchSeparator}\n`,
    );
    if (parts.length !== texts.length) {
      return await Promise.all(texts.map((t) => format(t, options)));
    }
    // Every part but the last lost its final newline to the separator.
    return parts.map((p, i) => (i < parts.length - 1 ? `${p}\n` : p));
  } catch (e) {
    if (fallbacks.length === 0) throw e;
    return formatBatch(texts, fallbacks);
  }
}
