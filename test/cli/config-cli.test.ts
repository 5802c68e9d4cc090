import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runImgfleet as imgfleet } from "../helpers/cli.js";

const dir = mkdtempSync(join(tmpdir(), "imgfleet-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe("imgfleet config check", () => {
  it("exits 0 and says a valid file is valid", async () => {
    const path = file("good.yaml", "server:\n  port: 9100\nlimits:\n  inputFormats: [jpeg, png]\n");
    const run = await imgfleet(["config", "check", path]);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("configuration is valid");
    expect(run.stdout).toContain(path);
  });

  it("exits 2 and names the key, value and rule of every problem in an invalid file", async () => {
    const path = file("bad.yaml", "server:\n  port: 70000\nlog:\n  level: loud\nlimits:\n  maxFrame: 3\n");
    const run = await imgfleet(["config", "check", path]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toContain("invalid configuration");
    expect(run.stderr).toMatch(/server\.port: got 70000 \(from file [^)]*bad\.yaml\): .*65535/);
    expect(run.stderr).toMatch(/log\.level: got "loud" .*"debug"/);
    expect(run.stderr).toContain("limits.maxFrame: unknown key");
    // A config error is the operator's to fix: no stack trace.
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it("exits 2 for a missing file and names it", async () => {
    const path = join(dir, "missing.yaml");
    const run = await imgfleet(["config", "check", path]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`config file ${path}: cannot be read`);
  });

  it("checks the environment and flags too, with their origins", async () => {
    const path = file("ok.json", JSON.stringify({ server: { port: 9000 } }));
    const run = await imgfleet(["config", "check", path, "--port", "abc"], { IMGFLEET_QUEUE__CAPACITY: "0" });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('server.port: got "abc" (from flag)');
    expect(run.stderr).toContain("queue.capacity: got 0 (from env IMGFLEET_QUEUE__CAPACITY)");
  });
});

describe("imgfleet start and IMGFLEET_* variables", () => {
  it("refuses a misspelt variable before starting anything, naming it and the one it was meant to be", async () => {
    const dataDir = join(dir, "never-made");
    const run = await imgfleet(["start", "--port", "0", "--data-dir", dataDir], {
      IMGFLEET_URL: "http://127.0.0.1:8080",
      IMGFLEET_ADMIN_KEY: "imf_from_the_banner",
      IMGFLEET_SERVER_PORT: "9000",
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("env IMGFLEET_SERVER_PORT");
    expect(run.stderr).toContain("did you mean IMGFLEET_SERVER__PORT?");
    expect(run.stderr).toContain("unset IMGFLEET_SERVER_PORT");
    // Only the misspelt one: the CLI's own variables beside it are no configuration.
    expect(run.stderr).not.toContain("IMGFLEET_ADMIN_KEY");
    expect(run.stderr).not.toContain("env IMGFLEET_URL");
    expect(existsSync(dataDir)).toBe(false);
  });
});

describe("imgfleet config print", () => {
  it("prints the effective config as JSON with flags and env applied over defaults", async () => {
    const run = await imgfleet(["config", "print", "--port", "9001"], { IMGFLEET_LOG__LEVEL: "debug" });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const config = JSON.parse(run.stdout) as {
      server: { host: string; port: number };
      log: { level: string };
      limits: { maxInputPixels: number; inputFormats: string[] };
      dataDir: string;
    };
    expect(config.server).toMatchObject({ host: "127.0.0.1", port: 9001 });
    expect(config.log.level).toBe("debug");
    expect(config.limits.maxInputPixels).toBe(50_000_000);
    expect(config.dataDir).toBe("./data");
  });

  it("applies a --config file under env and flags", async () => {
    const path = file(
      "print.yaml",
      "server:\n  host: 0.0.0.0\n  port: 7000\nworkers:\n  count: 3\nlog:\n  level: warn\n",
    );
    const run = await imgfleet(
      ["config", "print", "--config", path, "--workers", "5", "--data-dir", "/srv/x"],
      {
        IMGFLEET_SERVER__PORT: "7001",
      },
    );
    expect(run.code).toBe(0);
    const config = JSON.parse(run.stdout) as {
      server: { host: string; port: number };
      workers: { count: number };
      log: { level: string };
      dataDir: string;
    };
    expect(config.server).toMatchObject({ host: "0.0.0.0", port: 7001 });
    expect(config.workers.count).toBe(5);
    expect(config.log.level).toBe("warn");
    expect(config.dataDir).toBe("/srv/x");
  });
});
