// Runs the official Connect conformance suite (connectconformance) against
// the programs in this folder, server and client modes at once, and fails on
// any failed case: part of `npm test` and so of CI. No known-failing or
// known-flaky lists.
//
//   node conformance/run.ts [server|client|both] [-- extra runner flags]
//
// The runner is a Go program (github.com/connectrpc/conformance), not an npm
// package. It is taken from ../shared/tools/connectconformance beside the
// repository when that exists, else from PATH (CONNECTCONFORMANCE names
// another). Without one, a CI run fails and a local run says it skipped.
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

// Chosen for a 2-core machine that is busy with other work. Server mode
// starts one server process per set of server properties and sends it
// `parallel` calls at a time; client mode runs our client program against
// up to `maxServers` reference servers (Go, cheap). Each of our processes
// must answer within the runner's fixed start-up window; fewer concurrent
// calls keep that and every call's own deadline far from the limit when the
// machine is loaded, at a cost of about a minute on an idle one (see README).
const parallel = 2;
const maxServers = 2;

const [modeArg = "both", ...rest] = process.argv.slice(2);
const extra = rest[0] === "--" ? rest.slice(1) : rest;
if (!["server", "client", "both"].includes(modeArg)) {
  console.error(
    `usage: node conformance/run.ts [server|client|both] [-- runner flags]`,
  );
  process.exit(2);
}
const modes = modeArg === "both" ? ["server", "client"] : [modeArg];

const runner = findRunner();
if (runner === undefined) {
  const message =
    "connectconformance not found (looked for ../shared/tools/connectconformance, $CONNECTCONFORMANCE and PATH)";
  if (process.env["CI"]) {
    console.error(`conformance: ${message}: CI must run the official suite`);
    process.exit(1);
  }
  console.log(`conformance: SKIPPED, ${message}`);
  process.exit(0);
}

// Both modes at once: each keeps about one core busy, mostly with the
// runner itself, so on two cores together they take about 4m50s against
// 6m50s one after the other, with no failure, also with a busy loop on
// one core (6m20s). Each line of output names its mode.
const outcomes = await Promise.all(
  modes.map(async (mode) => {
    const args = [
      "--mode",
      mode,
      "--conf",
      join(root, "conformance/config.yaml"),
      ...(mode === "server"
        ? ["--parallel", String(parallel)]
        : ["--max-servers", String(maxServers)]),
      ...extra,
      "--",
      join(root, `conformance/bin/${mode}`),
    ];
    const prefix = modes.length > 1 ? `[${mode}] ` : "";
    console.log(
      `${prefix}conformance: ${mode} mode: connectconformance ${args.join(" ")}`,
    );
    const started = performance.now();
    const { code, totals } = await run(runner, args, prefix);
    const took = formatDuration(performance.now() - started);
    return {
      line: `${mode} mode: ${totals ?? "no totals printed"} (${took})`,
      failed: code !== 0 || totals === undefined || !/ 0 failed$/.test(totals),
    };
  }),
);
for (const { line } of outcomes) console.log(`conformance: ${line}`);
process.exit(outcomes.some((o) => o.failed) ? 1 : 0);

function findRunner(): string | undefined {
  const candidates = [
    process.env["CONNECTCONFORMANCE"],
    join(root, "../shared/tools/connectconformance"),
    ...(process.env["PATH"] ?? "")
      .split(delimiter)
      .filter((dir) => dir !== "")
      .map((dir) => join(dir, "connectconformance")),
  ];
  return candidates.find((path) => {
    if (path === undefined || path === "") return false;
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Runs the runner with its output passed through, each line after `prefix`;
 * returns its exit code and its "N passed, M failed" line.
 */
function run(
  command: string,
  args: string[],
  prefix: string,
): Promise<{ code: number | null; totals: string | undefined }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let totals: string | undefined;
    let pending = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        process.stdout.write(`${prefix}${line}\n`);
        if (/^\d+ passed, \d+ failed$/.test(line.trim())) totals = line.trim();
      }
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (pending !== "") process.stdout.write(`${prefix}${pending}\n`);
      if (/^\d+ passed, \d+ failed$/.test(pending.trim())) {
        totals = pending.trim();
      }
      resolvePromise({ code, totals });
    });
  });
}

function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
}
