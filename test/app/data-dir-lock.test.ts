import { type ChildProcess, execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { lockDataDir } from "../../src/app/data-dir-lock.js";
import { startCliServer } from "../helpers/cli-server.js";

const ROOT = join(import.meta.dirname, "../..");
/** Starting a node with its worker process takes seconds on a loaded two-core machine. */
const START_WITHIN_MS = 60_000;
const TEST_TIMEOUT_MS = 3 * START_WITHIN_MS;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function tempDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "imgfleet-lock-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function kill(pid: number | undefined): void {
  try {
    if (pid) process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/**
 * `imgfleet start` under a parent that never reaps it (a shell that execs
 * `sleep`), as a supervisor that has not waited for it yet: once killed, the
 * process stays a zombie, its pid "alive" to kill(pid, 0), while the kernel
 * has already closed everything it held.
 */
async function startUnreaped(dataDir: string): Promise<{ pid: number; url: string; shell: ChildProcess }> {
  const node = `'${process.execPath}' --import tsx src/cli/main.ts start --port 0 --workers 1 --data-dir '${dataDir}'`;
  const shell = spawn("/bin/sh", ["-c", `${node} 2>/dev/null & echo "child-pid $!"; exec sleep 600`], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "ignore"],
  });
  cleanups.push(() => kill(shell.pid));
  let pid = 0;
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("imgfleet start did not listen")), START_WITHIN_MS);
    createInterface({ input: shell.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const child = /^child-pid (\d+)/.exec(line)?.[1];
      if (child) {
        pid = Number(child);
        cleanups.push(() => kill(pid));
      }
      const match = /"url":"(http:[^"]+)"/.exec(line);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
  });
  return { pid, url, shell };
}

/** A second `imgfleet start` on the data directory, to its exit or to its URL (then it is killed). */
function tryStart(dataDir: string): Promise<{ listened: boolean; code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ["--import", "tsx", "src/cli/main.ts", "start", "--port", "0", "--workers", "1", "--data-dir", dataDir],
      { cwd: ROOT, timeout: START_WITHIN_MS, killSignal: "SIGKILL" },
      (error, _stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ listened, code, stderr });
      },
    );
    let listened = false;
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      if (!line.includes('"url":"http')) return;
      listened = true;
      child.kill("SIGKILL");
    });
  });
}

function zombie(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("the data directory lock", () => {
  it(
    "lets a restart 0.5 s after a SIGKILL start, while the killed process is not yet reaped",
    async () => {
      const dataDir = tempDataDir();
      const first = await startUnreaped(dataDir);
      expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
      process.kill(first.pid, "SIGKILL");
      await new Promise((r) => setTimeout(r, 500));
      // Its pid still answers kill(pid, 0): the old pid-file check refused here.
      expect(zombie(first.pid)).toBe(true);
      const second = await startCliServer(["--data-dir", dataDir, "--workers", "1"]);
      expect((await fetch(`${second.url}/healthz`)).status).toBe(200);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "is never blocked by a stale pid file naming an unrelated live process",
    async () => {
      const dataDir = tempDataDir();
      const unrelated = spawn("sleep", ["600"], { stdio: "ignore" });
      cleanups.push(() => kill(unrelated.pid));
      writeFileSync(join(dataDir, "imgfleet.pid"), String(unrelated.pid));
      const started = await tryStart(dataDir);
      expect(started.stderr).not.toMatch(/in use by another imgfleet/);
      expect(started.listened, started.stderr).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "refuses a second live node on the same data directory, naming the holder's pid",
    async () => {
      const dataDir = tempDataDir();
      const first = await startCliServer(["--data-dir", dataDir, "--workers", "1"]);
      const second = await tryStart(dataDir);
      expect(second.listened).toBe(false);
      expect(second.code).not.toBe(0);
      expect(second.stderr).toContain(
        `the data directory ${dataDir} is in use by another imgfleet (pid ${first.child.pid})`,
      );
      // The first one is untouched.
      expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
      first.child.kill("SIGKILL");
      await once(first.child, "exit");
    },
    TEST_TIMEOUT_MS,
  );

  it("is taken again at once after its holder releases it", async () => {
    const dataDir = tempDataDir();
    const release = await lockDataDir(dataDir);
    await release();
    const again = await lockDataDir(dataDir);
    await again();
  });

  describe("as a socket file in the directory (platforms without abstract sockets)", () => {
    /** Holds the lock from another process, as another imgfleet would. */
    async function holdInChild(dataDir: string): Promise<ChildProcess> {
      const script = `import("${join(ROOT, "src/app/data-dir-lock.ts")}").then(async (m) => { await m.lockDataDir(${JSON.stringify(dataDir)}, "darwin"); console.log("held"); setInterval(() => {}, 1000); })`;
      const child = spawn(process.execPath, ["--import", "tsx", "-e", script], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "inherit"],
      });
      cleanups.push(() => kill(child.pid));
      const [line] = (await once(
        createInterface({ input: child.stdout as NodeJS.ReadableStream }),
        "line",
      )) as [string];
      expect(line).toBe("held");
      return child;
    }

    it(
      "refuses while its holder lives and takes over the file a killed holder left",
      async () => {
        const dataDir = tempDataDir();
        const holder = await holdInChild(dataDir);
        await expect(lockDataDir(dataDir, "darwin")).rejects.toThrow(
          `the data directory ${dataDir} is in use by another imgfleet (pid ${holder.pid})`,
        );
        holder.kill("SIGKILL");
        await once(holder, "exit");
        const release = await lockDataDir(dataDir, "darwin");
        await release();
      },
      TEST_TIMEOUT_MS,
    );
  });
});
