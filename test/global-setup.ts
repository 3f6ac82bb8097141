import { generateTestFixtures } from "./support/generate.ts";

/** Generates test/gen for a plain `vitest` run; `npm test` has done it already, before tsc. */
export default function setup(): void {
  if (process.env["npm_lifecycle_event"] !== "test") generateTestFixtures();
}
