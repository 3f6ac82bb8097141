import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["test/global-setup.ts"],
    include: [
      "runtime-inline/**/*.test.ts",
      "generator/**/*.test.ts",
      "test/**/*.test.ts",
    ],
    // Safety nets against a hang, never assertions about speed: no test
    // asserts elapsed time. Long enough for a 2-core machine at a load of
    // 10 (where a file takes about five times as long as on an idle one),
    // short enough that a real hang fails in a minute. A passing run takes
    // no longer for them. Helpers that wait for an event give up after 20 s
    // (their hangMs) with a message naming it, below these.
    testTimeout: 60_000,
    // Vitest runs one file at a time on a 2-core machine by default (cores
    // less one). Many files mostly wait (servers, child processes, Deno,
    // Chromium), so two at a time shortens the run; nothing measures time,
    // and the timeouts above allow for the extra load.
    maxWorkers: 2,
    minWorkers: 1,
    hookTimeout: 180_000,
  },
});
