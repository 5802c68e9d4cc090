import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import sharp from "sharp";
import { describe, expect, it, onTestFinished } from "vitest";
import { startCliServer } from "../helpers/cli-server.js";

/**
 * The README's commands as a newcomer runs them: every `sh` block with a
 * curl in it, pasted in order into one shell against a real embedded node
 * started as `imgfleet start`, with only the values the README says come
 * from the banner (the URL's port, the admin key) filled in.
 */

const ROOT = join(import.meta.dirname, "../..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");

function shellBlocksWithCurl(): string[] {
  return [...README.matchAll(/```sh\n([\s\S]*?)```/g)]
    .map((m) => m[1] ?? "")
    .filter((block) => /^curl /m.test(block));
}

function bash(script: string, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "bash",
      ["-euo", "pipefail", "-c", script],
      { cwd, env: { PATH: process.env.PATH ?? "", HOME: cwd, PS1: "" } },
      (error, stdout, stderr) =>
        resolve({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr }),
    );
  });
}

/** Worker processes of a node: its children, from /proc. */
function childPids(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((task) =>
    readFileSync(`/proc/${pid}/task/${task}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number),
  );
}

function loadsJemalloc(pid: number): boolean {
  return readFileSync(`/proc/${pid}/maps`, "utf8").includes("libjemalloc");
}

describe("the README", () => {
  it("runs every curl it prints, as printed, from the repository root", async () => {
    const blocks = shellBlocksWithCurl();
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    const server = await startCliServer(["--workers", "1"]);
    expect(server.adminKey).toMatch(/^imf_/);
    // "From the repository root": a directory with the checkout's bin/ and examples/, so the
    // files the commands write land outside the checkout.
    const root = mkdtempSync(join(tmpdir(), "imgfleet-readme-"));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    symlinkSync(join(ROOT, "bin"), join(root, "bin"));
    symlinkSync(join(ROOT, "examples"), join(root, "examples"));
    const script = blocks
      .join("\n")
      .replaceAll("http://127.0.0.1:8080", server.url)
      .replaceAll("imf_…", server.adminKey ?? "");
    const ran = await bash(script, root);
    expect(ran.stderr.replace(/^\/etc\/bash\.bashrc.*\n/gm, "")).toBe("");
    expect(ran.code).toBe(0);

    const outputs = [...script.matchAll(/ -o (\S+)$/gm)].map((m) => m[1] ?? "");
    expect(outputs).toEqual(["sample-400.webp", "sample-square.png"]);
    for (const file of outputs) expect(existsSync(join(root, file)), file).toBe(true);
    const webp = await sharp(join(root, "sample-400.webp")).metadata();
    expect([webp.format, webp.width]).toEqual(["webp", 400]);
    // background=%23ff000080 reached the server: the padding is half-transparent red.
    const square = sharp(join(root, "sample-square.png"));
    const meta = await square.metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["png", 400, 400]);
    const { data, info } = await square.ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    const corner = [...data.subarray(0, info.channels)];
    expect(corner[0]).toBe(255);
    expect(corner[1]).toBe(0);
    expect(corner[2]).toBe(0);
    expect(Math.abs((corner[3] ?? 0) - 128)).toBeLessThanOrEqual(1);
  }, 120_000);

  it("start-up log says whether the workers preload jemalloc, and it is so", async () => {
    const installed = [
      "/usr/lib/x86_64-linux-gnu",
      "/usr/lib/aarch64-linux-gnu",
      "/usr/lib64",
      "/usr/lib",
    ].some((dir) => existsSync(join(dir, "libjemalloc.so.2")));
    const auto = await startCliServer(["--workers", "1"]);
    const line = auto.logs.find((l) => l.includes("worker pool ready")) ?? "";
    const workers = childPids(auto.child.pid ?? 0);
    expect(workers.length).toBeGreaterThanOrEqual(1);
    if (installed) {
      expect(line).toMatch(
        /worker pool ready: 1 worker processes, jemalloc in use \(workers preload \/\S+libjemalloc\.so\.2\)/,
      );
      expect(workers.every(loadsJemalloc)).toBe(true);
    } else {
      expect(line).toContain(
        "jemalloc not in use: libjemalloc.so.2 not found; install it (apt-get install libjemalloc2)",
      );
    }

    const off = await startCliServer(["--workers", "1"], { IMGFLEET_WORKERS__JEMALLOC: "off" });
    expect(off.logs.find((l) => l.includes("worker pool ready"))).toContain(
      "jemalloc not in use (workers.jemalloc is off)",
    );
    expect(childPids(off.child.pid ?? 0).some(loadsJemalloc)).toBe(false);
  }, 120_000);
});
