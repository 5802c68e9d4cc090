import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { onTestFinished } from "vitest";

const ROOT = join(import.meta.dirname, "../..");
const START_TIMEOUT_MS = 30_000;

export interface CliServer {
  child: ChildProcess;
  url: string;
  /** Log lines seen so far (bounded), printed when a test fails. */
  logs: string[];
  exited: Promise<number | null>;
  rssBytes(): number;
}

/**
 * Runs `imgfleet start` as its own process, as an operator would, from
 * source. Resolves once it logs its URL; killed when the test ends.
 */
export async function startCliServer(
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<CliServer> {
  const cleanEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("IMGFLEET_")),
  );
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "start", "--port", "0", ...args],
    {
      cwd: ROOT,
      env: { ...cleanEnv, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const logs: string[] = [];
  const keep = (line: string) => {
    logs.push(line);
    if (logs.length > 500) logs.shift();
  };
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", keep);
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start:\n${logs.join("\n")}`)),
      START_TIMEOUT_MS,
    );
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      keep(line);
      const match = /"url":"(http:[^"]+)"/.exec(line);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    void exited.then((code) =>
      reject(new Error(`server exited with ${code} before listening:\n${logs.join("\n")}`)),
    );
  });
  return { child, url, logs, exited, rssBytes: () => rssOf(child.pid ?? 0) };
}

/** Resident memory of one process, from /proc. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}
