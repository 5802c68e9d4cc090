import { type ChildProcess, fork } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const JEMALLOC_PATHS = [
  "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
  "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
  "/usr/lib64/libjemalloc.so.2",
  "/usr/lib/libjemalloc.so.2",
];

/** The jemalloc library to preload into workers, per the `workers.jemalloc` setting. */
export function findJemalloc(mode: "auto" | "on" | "off"): string | undefined {
  if (mode === "off") return undefined;
  const found = JEMALLOC_PATHS.find((p) => existsSync(p));
  if (!found && mode === "on") {
    throw new Error(
      "workers.jemalloc is 'on' but libjemalloc.so.2 was not found; install it (apt-get install libjemalloc2) or set workers.jemalloc to 'auto'",
    );
  }
  return found;
}

/** For the start-up log: whether the workers preload jemalloc, and if not, why and what to do. */
export function describeJemalloc(mode: "auto" | "on" | "off", found: string | undefined): string {
  if (found) return `jemalloc in use (workers preload ${found})`;
  if (mode === "off") return "jemalloc not in use (workers.jemalloc is off)";
  return "jemalloc not in use: libjemalloc.so.2 not found; install it (apt-get install libjemalloc2) to keep worker memory flat";
}

/**
 * Forks the worker entry beside this file: compiled JavaScript in
 * production, TypeScript through tsx when running from source (tests).
 */
export function forkWorker(jemalloc: string | undefined): ChildProcess {
  const fromSource = import.meta.url.endsWith(".ts");
  const entry = fileURLToPath(new URL(fromSource ? "./child.ts" : "./child.js", import.meta.url));
  const env = { ...process.env };
  if (jemalloc) env.LD_PRELOAD = [jemalloc, env.LD_PRELOAD].filter(Boolean).join(" ");
  return fork(entry, [], {
    serialization: "advanced",
    env,
    execArgv: fromSource ? ["--import", "tsx"] : [],
    // fd 3: the data socket for frames (protocol.ts); Node requires an IPC channel for fork.
    stdio: ["ignore", "ignore", "pipe", "pipe", "ipc"],
  });
}
