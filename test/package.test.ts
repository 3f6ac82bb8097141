import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bufGenerate, repoRoot } from "./support/generate.ts";

/**
 * The plugin as a user gets it: packed (`npm pack`, which builds dist/ and
 * the runtime's manifest), installed into a project of its own, and run by
 * buf. Its output must be this checkout's to the byte, with no ts-morph
 * installed and no runtime-inline/ in the package. The packages come from
 * npm's cache (`npm ci` put them there), else from the registry.
 */
describe("the packed plugin, installed", () => {
  const work = mkdtempSync(join(tmpdir(), "cs-package-"));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const project = join(work, "project");
  const installed = join(project, "node_modules/protoc-gen-connect-standalone");
  const npm = (args: string[], cwd: string) =>
    execFileSync("npm", args, {
      cwd,
      env: {
        ...process.env,
        PATH: `${join(repoRoot, "node_modules/.bin")}:${process.env["PATH"] ?? ""}`,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });

  it("installs from the tarball npm pack makes", () => {
    npm(["pack", "--pack-destination", work], repoRoot);
    const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
    expect(tarball).toBeDefined();
    execFileSync("mkdir", ["-p", project]);
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "consumer", private: true }),
    );
    const install = ["install", "--no-audit", "--no-fund"];
    try {
      npm([...install, "--offline", join(work, tarball!)], project);
    } catch {
      npm([...install, "--prefer-offline", join(work, tarball!)], project);
    }
    expect(existsSync(join(installed, "dist/runtime-manifest.json"))).toBe(
      true,
    );
  }, 240_000);

  it("ships no runtime sources and installs no ts-morph", () => {
    expect(existsSync(join(installed, "runtime-inline"))).toBe(false);
    expect(existsSync(join(installed, "dist/runtime-inline"))).toBe(false);
    expect(existsSync(join(installed, "dist/generator/build"))).toBe(false);
    const modules = join(project, "node_modules");
    expect(existsSync(join(modules, "ts-morph"))).toBe(false);
    expect(existsSync(join(modules, "@ts-morph"))).toBe(false);
  });

  it("generates what the checkout generates, byte for byte", () => {
    const fromPackage = join(work, "out-package");
    const fromCheckout = join(work, "out-checkout");
    // With the health and reflection protos, which the package embeds.
    const options = "health=true,reflection=true";
    bufGenerate(
      fromPackage,
      options,
      undefined,
      join(project, "node_modules/.bin/protoc-gen-connect-standalone"),
    );
    bufGenerate(fromCheckout, options);
    const files = readdirSync(fromCheckout, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith(".ts"))
      .sort();
    expect(files.some((f) => f.endsWith(".ElizaService.ts"))).toBe(true);
    expect(files).toContain("grpc/health/v1/health_pb.ts");
    expect(
      readdirSync(fromPackage, { recursive: true })
        .map(String)
        .filter((f) => f.endsWith(".ts"))
        .sort(),
    ).toEqual(files);
    for (const file of files) {
      expect(readFileSync(join(fromPackage, file), "utf8"), file).toBe(
        readFileSync(join(fromCheckout, file), "utf8"),
      );
    }
  }, 120_000);
});
