// npm run fuzz -- --minutes N [--seed S]     fuzz for N minutes (default 1)
// npm run fuzz -- --cases N [--seed S]       fuzz N cases
// npm run fuzz -- --seed S --case I          replay one case, printing it
//
// Runs the fuzzer of test/fuzz/fuzz.ts against a generated Eliza server in
// this process (node test/generate-for-tests.ts first), prints progress, the
// figures and every failure with the case and the command that replays it,
// and exits 1 on any crash, hang, wrong code or malformed response.

import { parseArgs } from "node:util";
import { buildCase, describeCase } from "./cases.ts";
import { formatReport, runFuzz } from "./fuzz.ts";

const { values } = parseArgs({
  options: {
    minutes: { type: "string" },
    cases: { type: "string" },
    seed: { type: "string" },
    case: { type: "string" },
    "hang-ms": { type: "string" },
  },
});
const seed =
  values.seed !== undefined
    ? Number(values.seed) >>> 0
    : (Math.random() * 0x100000000) >>> 0;
const only = values.case === undefined ? undefined : Number(values.case);
const durationMs =
  values.cases === undefined && only === undefined
    ? Number(values.minutes ?? "1") * 60_000
    : undefined;
const command = `npm run fuzz -- ${
  only !== undefined
    ? `--seed ${seed} --case ${only}`
    : values.cases !== undefined
      ? `--cases ${values.cases} --seed ${seed}`
      : `--minutes ${values.minutes ?? "1"} --seed ${seed}`
}`;
console.log(`fuzzing with seed ${seed} (${command})`);
if (only !== undefined) console.log(describeCase(buildCase(seed, only)));
// A crash that kills the process names the case it was on.
let last = -1;
process.on("exit", (code) => {
  if (code !== 0 && last >= 0)
    console.log(
      `exited during or after case ${last}: npm run fuzz -- --seed ${seed} --case ${last}`,
    );
});
const report = await runFuzz({
  seed,
  ...(durationMs === undefined ? {} : { durationMs }),
  ...(values.cases === undefined ? {} : { cases: Number(values.cases) }),
  ...(only === undefined ? {} : { only }),
  ...(values["hang-ms"] === undefined
    ? {}
    : { hangMs: Number(values["hang-ms"]) }),
  onCase: (index) => (last = index),
  log: (line) => console.log(line),
});
console.log(formatReport(report));
console.log(`command: ${command}`);
const failed =
  report.crashes +
    report.hangs +
    report.wrongCodes +
    report.malformed +
    report.notServing >
  0;
process.exitCode = failed ? 1 : 0;
