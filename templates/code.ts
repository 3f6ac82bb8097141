import type { DescMessage, DescService } from "@bufbuild/protobuf";
import type { EntryPoints } from "../runtime-inline/entry-points.ts";

/**
 * Generated code before names are settled: text, plus references that the
 * emitter resolves to final identifiers and imports.
 */
export type Ref =
  | { readonly kind: "runtime"; readonly name: EntryPoint }
  | { readonly kind: "local"; readonly name: string }
  | { readonly kind: "schema"; readonly desc: DescMessage | DescService }
  | { readonly kind: "shape"; readonly desc: DescMessage }
  | {
      readonly kind: "import";
      readonly name: string;
      readonly from: string;
      readonly typeOnly: boolean;
    };

export type Code = readonly (string | Ref | Code)[];

/** A tagged template that keeps references apart from text. */
export function code(
  strings: TemplateStringsArray,
  ...values: (string | Ref | Code)[]
): Code {
  const out: (string | Ref | Code)[] = [];
  strings.forEach((s, i) => {
    out.push(s);
    if (i < values.length) out.push(values[i]!);
  });
  return out;
}

/** A name templates may use for a runtime declaration (runtime-inline/entry-points.ts). */
export type EntryPoint = keyof EntryPoints;

/** A declaration of the runtime, copied into the file if the template uses it. */
export const rt = <K extends EntryPoint>(name: K): Ref => ({
  kind: "runtime",
  name,
});
/** A name the template declares itself. */
export const local = (name: string): Ref => ({ kind: "local", name });
/** A message's or a service's descriptor, as its protoc-gen-es file exports it. */
export const schema = (desc: DescMessage | DescService): Ref => ({
  kind: "schema",
  desc,
});
export const shape = (desc: DescMessage): Ref => ({ kind: "shape", desc });
export const protobufType = (name: string): Ref => ({
  kind: "import",
  name,
  from: "@bufbuild/protobuf",
  typeOnly: true,
});

export function joinCode(parts: readonly Code[], separator: string): Code {
  const out: Code[] = [];
  parts.forEach((p, i) => {
    if (i > 0) out.push([separator]);
    out.push(p);
  });
  return out;
}

/** Every reference in a piece of code, depth first. */
export function* refsOf(c: Code): Generator<Ref> {
  for (const item of c) {
    if (typeof item === "string") continue;
    if (Array.isArray(item)) {
      yield* refsOf(item as Code);
    } else {
      yield item as Ref;
    }
  }
}
