import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bufGenerate } from "./support/generate.ts";

const work = mkdtempSync(join(tmpdir(), "cs-plugin-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function generationError(options: string): string {
  try {
    bufGenerate(work, options);
  } catch (e) {
    return String((e as { stderr?: Buffer }).stderr ?? e);
  }
  throw new Error(`generation with "${options}" succeeded`);
}

describe("the plugin under buf generate", () => {
  it("fails on an unknown option, naming it", () => {
    expect(generationError("transport=grpc")).toContain(
      'unknown option "transport"',
    );
  });

  it("fails on a bad value, naming the accepted ones", () => {
    expect(generationError("platform=deno")).toContain(
      'invalid value "deno" for option "platform": accepted values are node, web',
    );
    expect(generationError("target=wasm")).toContain(
      'invalid value "wasm" for option "target"',
    );
  });
});
