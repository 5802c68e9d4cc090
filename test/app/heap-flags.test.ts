import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SERVER_HEAP_FLAGS, withServerHeapFlags } from "../../src/app/heap-flags.js";
import { nodeSpec } from "../../src/dev/fleet-plan.js";

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), "utf8");

describe("server heap flags", () => {
  it("are on every command line that starts a server: npm start, the installed binary, the systemd unit", () => {
    const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;
    for (const flag of SERVER_HEAP_FLAGS) {
      expect(scripts.start).toContain(`node ${flag} `);
      expect(read("bin/imgfleet.js").split("\n")[0]).toContain(flag);
      expect(read("deploy/systemd/imgfleet@.service")).toMatch(new RegExp(`ExecStart=\\S*node ${flag} `));
    }
  });

  it("are accepted by this Node, and the installed binary starts with them", () => {
    // Node refuses an unknown flag with exit code 9, which makes execFileSync throw.
    expect(() => execFileSync(process.execPath, [...SERVER_HEAP_FLAGS, "-e", ""])).not.toThrow();
    expect(() =>
      execFileSync(process.execPath, ["--no-such-heap-flag=1", "-e", ""], { stdio: "ignore" }),
    ).toThrow();
    // The shebang's `env -S` splits the flags off the interpreter's name.
    const version = execFileSync(
      fileURLToPath(new URL("../../bin/imgfleet.js", import.meta.url)),
      ["--version"],
      {
        encoding: "utf8",
      },
    );
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("are added to a dev fleet node's command line, unless the entry sets its own value", () => {
    const spec = (entry: string[]) =>
      nodeSpec(
        { name: "api-1", role: "api", port: 1 },
        {
          entry,
          cwd: undefined,
          nodesDir: "/n",
          logs: "/l",
          workersPerNode: 1,
          natsUrls: [],
          databaseUrl: "postgres://x",
          clusterSecret: "s",
          logLevel: "info",
          env: {},
          roleEnv: {},
        },
      ).args;
    expect(spec(["main.js"]).slice(0, 2)).toEqual([...SERVER_HEAP_FLAGS, "main.js"]);
    expect(spec(["--initial-old-space-size=256", "main.js"]).slice(0, 2)).toEqual([
      "--initial-old-space-size=256",
      "main.js",
    ]);
    expect(withServerHeapFlags([])).toEqual(SERVER_HEAP_FLAGS);
  });
});
