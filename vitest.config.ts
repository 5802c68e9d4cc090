import { defineConfig } from "vitest/config";
import { isCI } from "./test/helpers/ci.js";

/**
 * One config for every suite. Suites start real servers and worker
 * processes, so on a 2-core machine two files run at a time.
 */
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    // expect.poll's own default (1 s) is no bound for a loaded 2-core CI machine; a poll that
    // names its timeout keeps it.
    expect: { poll: { timeout: 15_000 } },
    hookTimeout: 60_000,
    // Leak tests force a full collection before measuring.
    execArgv: ["--expose-gc"],
    // The JUnit report is what .ci/run counts its closing line from.
    reporters: isCI() ? ["default", "junit"] : ["default"],
    outputFile: { junit: "test-results/junit.xml" },
  },
});
