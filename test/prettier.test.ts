import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { format } from "prettier";
import { afterAll, describe, expect, it } from "vitest";
import { prettierOptions } from "../generator/format.ts";
import { bufGenerate, repoRoot } from "./support/generate.ts";

/**
 * The generator formats parts of a file apart (each runtime statement once
 * per run, many texts per prettier call) and joins them; the design promises
 * prettier-formatted output. prettier over whole generated files, as
 * `prettier --check` would run it, must change nothing.
 */
async function unchangedByPrettier(dir: string): Promise<string[]> {
  const changed: string[] = [];
  for (const entry of readdirSync(dir, {
    recursive: true,
    withFileTypes: true,
  })) {
    const path = join(entry.parentPath, entry.name);
    if (!entry.isFile() || !/\.(ts|js)$/.test(path) || /_pb\./.test(path)) {
      continue;
    }
    const text = readFileSync(path, "utf8");
    const formatted = await format(text, {
      ...prettierOptions,
      parser: path.endsWith(".ts") ? "typescript" : "babel",
      filepath: path,
    });
    if (formatted !== text) changed.push(relative(dir, path));
  }
  return changed;
}

const work = mkdtempSync(join(tmpdir(), "cs-prettier-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Names long enough that prettier breaks most lines that mention them.
const long = "AnExtraordinarilyLongNameThatForcesLinesToBreak";
const longProto = `syntax = "proto3";

package fixtures.${long.toLowerCase()}.v1;

// ${long}Service has names that fill a line by themselves.
service ${long}Service {
  // ${long}Unary is a unary method with a comment long enough to need more than one line of a JSDoc block in the generated file.
  rpc ${long}Unary(${long}Request) returns (${long}Response) {
    option idempotency_level = NO_SIDE_EFFECTS;
  }
  rpc ${long}ServerStream(${long}Request) returns (stream ${long}Response) {}
  rpc ${long}ClientStream(stream ${long}Request) returns (${long}Response) {}
  rpc ${long}Bidi(stream ${long}Request) returns (stream ${long}Response) {}
}

message ${long}Request {
  string ${long.replace(/[A-Z]/g, (c) => "_" + c.toLowerCase()).slice(1)} = 1;
}

message ${long}Response {
  repeated ${long}Request items = 1;
}
`;

// prettier over every snapshot, and three runs of buf generate: seconds on an
// idle machine, minutes at a load of 10. The timeout only catches a hang.
const heavy = { timeout: 300_000 };

describe("generated code", () => {
  it("is as prettier formats it: every snapshot", heavy, async () => {
    expect(await unchangedByPrettier(join(repoRoot, "snapshots"))).toEqual([]);
  });

  it(
    "is as prettier formats it: a service with very long names",
    heavy,
    async () => {
      const input = join(work, "input");
      mkdirSync(join(input, "long/v1"), { recursive: true });
      writeFileSync(join(input, "buf.yaml"), "version: v2\n");
      writeFileSync(join(input, "long/v1/long.proto"), longProto);
      for (const [name, options] of [
        ["default", ""],
        ["client-web", "server=false,platform=web"],
        ["js-dts", "target=js+dts"],
      ] as const) {
        const out = join(work, name);
        bufGenerate(out, options, input);
        const generated = readdirSync(join(out, "long/v1")).filter(
          (f) => !f.includes("_pb."),
        );
        expect(generated.length, name).toBeGreaterThan(0);
        expect(await unchangedByPrettier(out), name).toEqual([]);
      }
    },
  );
});
