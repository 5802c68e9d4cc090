import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { describeFleet } from "../../src/cli/dev-commands.js";
import { BIN, BIN_DIR } from "../../src/cli/invocation.js";
import type { FleetProcess } from "../../src/dev/fleet.js";
import { runImgfleet } from "../helpers/cli.js";

/**
 * Every command the CLI prints works as printed, pasted into a shell in any
 * directory: it names this checkout's bin/imgfleet.js by its full path (or
 * follows a line that puts bin/ on the PATH), never a bare `imgfleet` that
 * no PATH has, and never `npx imgfleet`, which outside the checkout asks the
 * public registry for someone else's package.
 */

const elsewhere = mkdtempSync(join(tmpdir(), "printed commands "));
afterAll(() => rmSync(elsewhere, { recursive: true, force: true }));

/** A pasted command, in a directory that is not the checkout, with only the system's PATH. */
async function paste(command: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "bash",
      ["-c", command],
      { cwd: elsewhere, env: { PATH: process.env.PATH ?? "", HOME: elsewhere, PS1: "" } },
      (error, stdout, stderr) => {
        resolve({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr });
      },
    );
  });
}

/** The lines of printed output that run imgfleet. */
function commandsIn(text: string): string[] {
  return text
    .split("\n")
    .map((line) => line.replace(/^\s*(\w+:\s+)?/, ""))
    .filter((line) => /^(\S*\/)?imgfleet(\.js)?\s/.test(line));
}

describe("commands the CLI prints", () => {
  it("dev fleet up: the export lines, and status, stop and nodes by the checkout's full path", async () => {
    const stateDir = join(elsewhere, "fleet state");
    const haproxy = { pid: () => 4242 } as unknown as FleetProcess;
    const printed = describeFleet({
      url: "http://127.0.0.1:9",
      adminKey: "imf_a_b",
      stateDir,
      processes: [],
      process: () => haproxy,
    });
    expect(printed).toContain("  export IMGFLEET_URL=http://127.0.0.1:9\n");
    expect(printed).toContain("  export IMGFLEET_ADMIN_KEY=imf_a_b\n");
    expect(printed).toContain(`  export PATH="${BIN_DIR}:$PATH"\n`);
    const commands = commandsIn(printed);
    expect(commands).toHaveLength(3);
    for (const command of commands) expect(command.startsWith(`${BIN} `), command).toBe(true);
    expect(printed).not.toContain("npx");

    // Pasted elsewhere, `status` runs this checkout's CLI on that fleet's directory (spaces and all).
    const status = commands.find((c) => c.includes("dev fleet status")) ?? "";
    const ran = await paste(status);
    expect(ran.stderr).toContain(`no dev fleet in ${stateDir} (no fleet.json)`);
    expect(ran.code).toBe(1);
  });

  it("a missing admin key: the hint's command runs as printed from any directory", async () => {
    const run = await runImgfleet(["tenants", "list"], { IMGFLEET_URL: "http://127.0.0.1:9" });
    expect(run.code).toBe(2);
    const hinted = /`([^`]*admin-keys create)`/.exec(run.stderr)?.[1] ?? "";
    expect(hinted).toBe(`${BIN} admin-keys create`);
    const ran = await paste(`${hinted} --url http://127.0.0.1:9`);
    // It is imgfleet answering (no key here either), not the shell failing to find a command.
    expect(ran.stderr).toContain("imgfleet: no admin key");
    expect(ran.code).toBe(2);
  });
});
