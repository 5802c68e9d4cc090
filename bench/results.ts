import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { resolve } from "node:path";
import sharp from "sharp";
import { type BenchConfig, PROJECT_ROOT, RESULTS_DIR } from "./config.js";
import { FLEET_OVERRIDES } from "./fleet.js";
import { IMGFLEET_OVERRIDES } from "./servers.js";

function packageVersion(name: string): string {
  const path = resolve(PROJECT_ROOT, "node_modules", name, "package.json");
  return (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version;
}

/** IMGFLEET_* variables change the server's config; a result must say which were set. */
function imgfleetEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[0].startsWith("IMGFLEET_") && !!e[1]),
  );
}

function git(args: string[]): string {
  try {
    return execFileSync("git", args, { cwd: PROJECT_ROOT, encoding: "utf8" }).trim();
  } catch {
    return "unknown";
  }
}

/** Which imgfleet was measured: the commit, and source files changed on top of it. */
export function sourceInfo() {
  const dirty = git(["status", "--porcelain", "--", "src", "package.json", "package-lock.json"]);
  return { commit: git(["rev-parse", "HEAD"]), uncommitted: dirty ? dirty.split("\n") : [] };
}

export function machineInfo() {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model ?? "unknown",
    totalMemMb: Math.round(totalmem() / 2 ** 20),
    loadAvgAtStart: loadavg().map((v) => Math.round(v * 100) / 100),
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
    sharp: sharp.versions,
    autocannon: packageVersion("autocannon"),
  };
}

export function settings(config: BenchConfig) {
  return {
    seconds: config.seconds,
    warmupSeconds: config.warmupSeconds,
    workloads: config.workloads,
    concurrencies: config.concurrencies,
    corpusDir: config.corpusDir,
    boundaryRequests: config.boundaryRequests,
    sharpSeconds: config.sharpSeconds,
    strict: config.strict,
    maxOtherCpuPct: config.maxOtherCpuPct,
    retries: config.retries,
    phases: config.phases,
    authRounds: config.authRounds,
    meteringRounds: config.meteringRounds,
    samplingRounds: config.samplingRounds,
    fleetWorkloads: config.fleetWorkloads.map((w) => w.id),
    queueRate: config.queueRate,
    queueSeconds: config.queueSeconds,
    imgfleetEnv: imgfleetEnv(),
    /**
     * Set by the harness per server, over imgfleetEnv; each also gets its own empty temporary --data-dir.
     * Every server's effective configuration (`imgfleet config print`) is kept with it (`config`).
     */
    imgfleetOverrides: IMGFLEET_OVERRIDES,
    /** On every node of the fleet phase's fleet (the fleet's own IMGFLEET_* aside; see fleet.nodeEnv). */
    fleetOverrides: FLEET_OVERRIDES,
  };
}

/** Writes bench-<timestamp>.json and latest.json; returns the timestamped path. */
export function writeResults(report: object, startedAt: Date): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  const path = resolve(RESULTS_DIR, `bench-${stamp}.json`);
  const text = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(path, text);
  writeFileSync(resolve(RESULTS_DIR, "latest.json"), text);
  return path;
}
