import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isCI } from "../helpers/ci.js";

/**
 * deploy/prometheus/imgfleet-alerts.yml through Prometheus's own tool: the
 * rules must load, and its unit tests (imgfleet-alerts.test.yml: synthetic
 * series, the alerts that must and must not fire, their labels and words)
 * must pass. promtool comes with Debian's `prometheus` package.
 */

const DIR = join(import.meta.dirname, "../../deploy/prometheus");
const MISSING = "promtool not found; install the Debian package 'prometheus'";

const hasPromtool = spawnSync("promtool", ["--version"], { stdio: "ignore" }).status === 0;
if (!hasPromtool) {
  if (isCI()) throw new Error(`${MISSING} (required in CI)`);
  console.warn(`\n*** SKIPPED: Prometheus rule tests — ${MISSING} ***\n`);
}

const promtool = (...args: string[]) => execFileSync("promtool", args, { cwd: DIR, encoding: "utf8" });

describe.runIf(hasPromtool)("deploy/prometheus with promtool", () => {
  it("loads every recording and alerting rule", () => {
    expect(promtool("check", "rules", "imgfleet-alerts.yml")).toMatch(/SUCCESS: \d+ rules found/);
  });

  it("fires, stays quiet and words its alerts as the rule file's unit tests expect", {
    timeout: 60_000,
  }, () => {
    // A failing case makes promtool exit 1 (execFileSync throws with its report).
    expect(promtool("test", "rules", "imgfleet-alerts.test.yml")).toContain("SUCCESS");
  });
});
