// The fuzzer (test/fuzz/fuzz.ts) on a fixed seed and a fixed number of
// cases, so that every run sends the same requests: mutated Connect (unary,
// GET, streaming), gRPC and gRPC-Web requests of every RPC kind through
// handler.node on node:http and h2c, handler.http2Stream and handler.fetch.
// Any crash, hang, wrong code or malformed response fails it with the case
// and the command that replays it (`npm run fuzz -- --seed S --case I`).
// Longer runs: `npm run fuzz -- --minutes N [--seed S]`.

import { expect, it } from "vitest";
import { formatReport, runFuzz } from "./fuzz/fuzz.ts";

/**
 * About 15 s on an idle 2-core machine (0.5 ms of CPU a case): a fixed
 * smoke of every input class in `npm test`, which must stay within CI's
 * time; the search for new failures is `npm run fuzz -- --minutes N`.
 */
const cases = 30_000;
const seed = 12;

it(
  `${cases} fuzz cases of seed ${seed}: no crash, hang, wrong code or malformed response`,
  async () => {
    const report = await runFuzz({
      seed,
      cases,
      // Not a measure of speed: long enough for a machine at a load of 10.
      hangMs: 20_000,
    });
    const failed =
      report.crashes +
      report.hangs +
      report.wrongCodes +
      report.malformed +
      report.notServing;
    expect(failed, formatReport(report)).toBe(0);
    expect(report.cases).toBe(cases);
  },
  // A safety net against a hang of the whole run, never a time limit.
  600_000,
);
