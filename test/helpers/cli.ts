import { execFile } from "node:child_process";
import { join } from "node:path";
import { expect } from "vitest";

const ROOT = join(import.meta.dirname, "../..");

/** How a CLI run ended: its exit code (null when killed), and what it wrote. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * `imgfleet <args>` from source, as an operator runs it: the test process's
 * IMGFLEET_* variables are left out, so only `env` configures it. Resolves
 * on any exit code; the test asserts on it.
 */
export function runImgfleet(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<CliRun> {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("IMGFLEET_")),
  );
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", ...args],
      { cwd: ROOT, env: { ...inherited, ...env }, timeout: timeoutMs },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** `runImgfleet` against a node, with its URL and admin key in the environment as documented. */
export function runAgainst(
  node: { url: string; adminKey: string },
  args: string[],
  timeoutMs?: number,
): Promise<CliRun> {
  return runImgfleet(args, { IMGFLEET_URL: node.url, IMGFLEET_ADMIN_KEY: node.adminKey }, timeoutMs);
}

/** A successful run's standard output: exit code 0 and nothing on standard error. */
export function ok(run: CliRun): string {
  expect(run.stderr, run.stderr).toBe("");
  expect(run.code).toBe(0);
  return run.stdout;
}

/** A successful run's JSON output. */
export function jsonOutput<T>(run: CliRun): T {
  return JSON.parse(ok(run)) as T;
}
