import { execFile } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { CONSOLE_DIR } from "../../src/api/routes/console.js";

const ROOT = join(import.meta.dirname, "../..");
const SOURCES = [join(ROOT, "web"), join(ROOT, "src/ops/units.ts"), join(ROOT, "src/ops/series.ts")];
const LOCK = join(ROOT, "dist", ".console-build.lock");
const LOCK_WAIT_MS = 120_000;

export interface ConsoleBuild {
  dir: string;
  /** Milliseconds `vite build` took; null when the bundle was already up to date. */
  buildMs: number | null;
}

/**
 * Builds the console (`vite build`) once for the suites that need it, and
 * only when a source is newer than the bundle. Test files run two at a
 * time: a lock directory makes the second wait for the first's build
 * rather than write the same files at once.
 */
export async function ensureConsoleBuilt(): Promise<ConsoleBuild> {
  mkdirSync(join(ROOT, "dist"), { recursive: true });
  await acquireLock();
  try {
    if (isFresh()) return { dir: CONSOLE_DIR, buildMs: null };
    const started = performance.now();
    await promisify(execFile)(
      process.execPath,
      [join(ROOT, "node_modules/vite/bin/vite.js"), "build", "--config", "web/vite.config.ts"],
      // Vitest sets NODE_ENV=test, which would make Vite build the libraries' development code.
      { cwd: ROOT, timeout: 120_000, env: { ...process.env, NODE_ENV: "production" } },
    );
    return { dir: CONSOLE_DIR, buildMs: Math.round(performance.now() - started) };
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

function isFresh(): boolean {
  let built: number;
  try {
    built = statSync(join(CONSOLE_DIR, "index.html")).mtimeMs;
  } catch {
    return false;
  }
  return newest(SOURCES) < built;
}

function newest(paths: string[]): number {
  let latest = 0;
  for (const path of paths) {
    const s = statSync(path);
    if (s.isDirectory()) {
      latest = Math.max(latest, newest(readdirSync(path).map((name) => join(path, name))));
    } else {
      latest = Math.max(latest, s.mtimeMs);
    }
  }
  return latest;
}

async function acquireLock(): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, "pid"), String(process.pid));
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    if (lockHolderIsGone()) {
      rmSync(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(`another test process has held ${LOCK} for ${LOCK_WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A lock whose process died (a killed test run) is stale; one being written (no pid yet) is not. */
function lockHolderIsGone(): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(LOCK, "pid"), "utf8"));
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}
