import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import {
  type DevFleet,
  devFleetStatus,
  findFleetBinaries,
  startDevFleet,
  stopDevFleet,
} from "../../src/dev/fleet.js";
import { readFleetFile, writeFleetFile } from "../../src/dev/fleet-state.js";
import {
  apiServerStates,
  productionHaproxyConfig,
  renderHaproxyConfig,
} from "../../src/dev/haproxy-config.js";
import { isAlive, MissingBinaryError, processStartTime } from "../../src/dev/processes.js";
import { delay } from "../../src/util/time.js";
import { isCI } from "../helpers/ci.js";

/**
 * The dev fleet's infrastructure for real — 3 clustered nats-server,
 * PostgreSQL, HAProxy — with tiny `node -e` HTTP servers in place of the
 * imgfleet nodes (the launcher runs them with the same command line and
 * environment), so it needs nothing of the fleet runtime.
 */

const ROOT = join(import.meta.dirname, "../..");
const missing = (() => {
  try {
    findFleetBinaries();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
})();
if (missing) {
  if (isCI()) throw new Error(`${missing} (required in CI)`);
  console.warn(`\n*** SKIPPED: dev fleet suites — ${missing} ***\n`);
}

/**
 * Stands in for `imgfleet start`: answers /healthz and /readyz, reports its
 * command line and IMGFLEET_* environment on /env and the paths it was asked
 * for on /seen, counts body bytes, and prints the admin key line once (api-2).
 */
const DUMMY_NODE = `
const http = require("node:http");
const args = process.argv.slice(1);
const port = Number(args[args.indexOf("--port") + 1]);
const id = process.env.IMGFLEET_FLEET__NODE_ID;
const seen = [];
http.createServer((req, res) => {
  let bytes = 0;
  req.on("data", (chunk) => { bytes += chunk.length; });
  req.on("end", () => {
    if (req.url === "/env") {
      const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("IMGFLEET_")));
      return res.end(JSON.stringify({ args, env }));
    }
    if (req.url === "/seen") return res.end(JSON.stringify(seen));
    if (req.url !== "/healthz" && req.url !== "/readyz") seen.push(req.url);
    res.setHeader("content-type", "application/json");
    const delay = Number(new URL(req.url, "http://x").searchParams.get("delay") ?? 0);
    setTimeout(() => res.end(JSON.stringify({ node: id, bytes })), delay);
  });
}).listen(port, "127.0.0.1", () => {
  if (id === "api-2") process.stderr.write("   export IMGFLEET_ADMIN_KEY=imf_dummy_bootstrap_key\\n");
});
process.on("SIGTERM", () => process.exit(0));
`;

const dummyFleetOptions = (stateDir: string) => ({
  stateDir,
  entry: ["-e", DUMMY_NODE],
  readyTimeoutMs: 60_000,
  env: { IMGFLEET_QUEUE__DEADLINE_MS: "5000" },
  roleEnv: { worker: { IMGFLEET_WORKERS__MAX_RSS_MB: "200" } },
});

async function getJson<T>(url: string, init?: RequestInit): Promise<T> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return (await response.json()) as T;
}

/** Polls `check` until it holds or `timeoutMs` passes (then fails with `what`). */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await delay(100);
  }
}

/** Which nodes answer 6 concurrent slow requests: leastconn spreads them over every server in rotation. */
async function nodesServing(url: string): Promise<string[]> {
  const answers = await Promise.all(
    Array.from({ length: 6 }, () => getJson<{ node: string }>(`${url}/v1/x?delay=200`)),
  );
  return [...new Set(answers.map((a) => a.node))].sort();
}

/** Process group of a pid (field 5 of /proc/<pid>/stat). */
function processGroup(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}

describe("missing binaries", () => {
  it("make one error naming every Debian package to install", () => {
    const error = new MissingBinaryError([
      { binary: "nats-server", debianPackage: "nats-server" },
      { binary: "haproxy", debianPackage: "haproxy" },
    ]);
    expect(error.message).toBe(
      "nats-server, haproxy not found (looked on PATH, in /usr/sbin and /usr/lib/postgresql/*/bin); install the Debian packages: apt-get install nats-server haproxy",
    );
  });
});

describe("the HAProxy template", () => {
  it("renders deploy/haproxy/haproxy.cfg (regenerate with -u after changing the template)", async () => {
    await expect(productionHaproxyConfig()).toMatchFileSnapshot("../../deploy/haproxy/haproxy.cfg");
  });

  it.skipIf(missing !== undefined)("is valid for haproxy -c, in both renderings", async () => {
    const dir = mkdtempSync(join(tmpdir(), "imgfleet-haproxy-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const dev = renderHaproxyConfig({
      target: "dev",
      bind: "127.0.0.1:8080",
      backends: [{ name: "api-1", address: "127.0.0.1:1" }],
    });
    for (const [name, text] of [
      ["dev.cfg", dev],
      ["production.cfg", productionHaproxyConfig()],
    ] as const) {
      writeFileSync(join(dir, name), text);
      const child = spawn(findFleetBinaries().haproxy, ["-c", "-f", join(dir, name)], { stdio: "pipe" });
      let output = "";
      child.stderr.on("data", (c: Buffer) => {
        output += c.toString();
      });
      child.stdout.on("data", (c: Buffer) => {
        output += c.toString();
      });
      const [code] = (await once(child, "exit")) as [number | null];
      expect(code, `${name}:\n${output}`).toBe(0);
    }
  });
});

describe.skipIf(missing !== undefined)("dev fleet infrastructure, with stand-in nodes", () => {
  let fleet: DevFleet;
  let stateDir: string;

  beforeAll(async () => {
    stateDir = mkdtempSync(join(tmpdir(), "imgfleet-fleet-"));
    // Registered before the start, so a start that fails half-way leaves nothing behind.
    const cleanup = async () => {
      await stopDevFleet(stateDir);
      rmSync(stateDir, { recursive: true, force: true });
    };
    // Inherited IMGFLEET_* variables must not reach the nodes.
    process.env.IMGFLEET_INHERITED_JUNK = "1";
    try {
      fleet = await startDevFleet(dummyFleetOptions(stateDir));
    } catch (error) {
      await cleanup();
      throw error;
    } finally {
      delete process.env.IMGFLEET_INHERITED_JUNK;
    }
    return async () => {
      await fleet.stop();
      await cleanup();
    };
  });

  it("records every process in fleet.json, with the admin key one API node printed", () => {
    const file = readFleetFile(stateDir);
    expect(file?.status).toBe("running");
    expect(file?.url).toBe(fleet.url);
    expect(file?.adminKey).toBe("imf_dummy_bootstrap_key");
    expect(file?.clusterSecret).toMatch(/^[A-Za-z0-9+/]{48}$/);
    expect(file?.processes.map((p) => `${p.role}:${p.name}`).sort()).toEqual(
      [
        "api:api-1",
        "api:api-2",
        "control:control-1",
        "haproxy:haproxy",
        "nats:nats-1",
        "nats:nats-2",
        "nats:nats-3",
        "postgres:postgres",
        "worker:worker-1",
        "worker:worker-2",
      ].sort(),
    );
    for (const p of file?.processes ?? []) {
      expect(isAlive(p.pid, p.startTime), p.name).toBe(true);
      // Detached: each leads its own process group, so a terminal's Ctrl-C does not reach it.
      expect(processGroup(p.pid), p.name).toBe(p.pid);
      expect(p.logFile.startsWith(join(stateDir, "logs")), p.name).toBe(true);
      expect(Object.values(p.ports).length, p.name).toBeGreaterThan(0);
    }
    const ports = file?.processes.flatMap((p) => Object.values(p.ports)) ?? [];
    expect(new Set(ports).size).toBe(ports.length);
  });

  it("runs 3 clustered NATS servers with JetStream and a meta leader", async () => {
    for (const server of fleet.byRole("nats")) {
      const jsz = await getJson<{ meta_cluster?: { leader?: string; cluster_size?: number } }>(
        `http://127.0.0.1:${server.ports.monitor}/jsz`,
      );
      expect(jsz.meta_cluster?.leader, server.name).toMatch(/^nats-[123]$/);
      expect(jsz.meta_cluster?.cluster_size, server.name).toBe(3);
      const routez = await getJson<{ num_routes: number }>(`http://127.0.0.1:${server.ports.monitor}/routez`);
      expect(routez.num_routes, server.name).toBe(2);
    }
  });

  it("runs PostgreSQL that accepts the URL the nodes get, as the postgres user when we are root", async () => {
    const client = new pg.Client({ connectionString: fleet.databaseUrl });
    await client.connect();
    onTestFinished(() => client.end());
    const { rows } = await client.query<{ user: string }>("SELECT current_user AS user");
    expect(rows[0]?.user).toBe("imgfleet");
    if (process.getuid?.() === 0) {
      const status = readFileSync(`/proc/${fleet.process("postgres").pid()}/status`, "utf8");
      expect(/^Uid:\s+(\d+)/m.exec(status)?.[1]).not.toBe("0");
    }
  });

  it("starts each node with its role, port, data dir and the fleet's environment, nothing inherited", async () => {
    const nats = fleet.natsUrls.join(",");
    for (const node of [...fleet.byRole("api"), ...fleet.byRole("worker"), ...fleet.byRole("control")]) {
      const { args, env } = await getJson<{ args: string[]; env: Record<string, string> }>(`${node.url}/env`);
      expect(args, node.name).toEqual([
        "start",
        "--role",
        node.role,
        "--port",
        String(node.ports.http),
        "--data-dir",
        join(stateDir, "nodes", node.name),
        "--workers",
        "1",
      ]);
      expect(env, node.name).toEqual({
        IMGFLEET_FLEET__NATS__SERVERS: nats,
        IMGFLEET_DATABASE__URL: fleet.databaseUrl,
        IMGFLEET_FLEET__CLUSTER_SECRET: fleet.clusterSecret,
        IMGFLEET_FLEET__NODE_ID: node.name,
        IMGFLEET_FLEET__ADVERTISE_URL: node.url,
        IMGFLEET_LOG__LEVEL: "info",
        IMGFLEET_SERVER__TRUST_PROXY: "127.0.0.1",
        IMGFLEET_QUEUE__DEADLINE_MS: "5000",
        ...(node.role === "worker" ? { IMGFLEET_WORKERS__MAX_RSS_MB: "200" } : {}),
      });
    }
  });

  it("balances over both API nodes, passes a 25 MB upload, and refuses /internal/ in every spelling", async () => {
    expect(await nodesServing(fleet.url)).toEqual(["api-1", "api-2"]);

    const upload = Buffer.alloc(25 * 1024 * 1024, 7);
    const answer = await getJson<{ bytes: number }>(`${fleet.url}/v1/resize`, {
      method: "POST",
      body: upload,
    });
    expect(answer.bytes).toBe(upload.length);

    for (const path of ["/internal/staging/x", "/internal", "/%69nternal/x", "//internal/x", "/INTERNAL/x"]) {
      const response = await fetch(`${fleet.url}${path}`, { method: "POST", body: "x" });
      expect(response.status, path).toBe(403);
    }
    for (const node of fleet.byRole("api")) {
      const seen = await getJson<string[]>(`${node.url}/seen`);
      expect(
        seen.some((p) => /internal/i.test(decodeURIComponent(p))),
        node.name,
      ).toBe(false);
    }
  });

  it("routes around a killed API node at once, and back to it after a restart", async () => {
    const api1 = fleet.process("api-1");
    await api1.kill("SIGKILL");
    expect(api1.running()).toBe(false);
    // Straight after the crash, before any health check noticed: redispatch and retry-on conn-failure.
    for (let i = 0; i < 10; i++) {
      expect((await getJson<{ node: string }>(`${fleet.url}/v1/x`)).node).toBe("api-2");
    }
    // Its health checks (inter 1s, fall 2) take it out of rotation.
    const socket = join(stateDir, "haproxy.sock");
    await eventually(
      "HAProxy marks api-1 DOWN",
      async () => (await apiServerStates(socket)).get("api-1")?.startsWith("DOWN") === true,
    );
    const status = await devFleetStatus(stateDir);
    expect(status?.processes.find((p) => p.name === "api-1")).toMatchObject({ alive: false, ready: false });
    expect(status?.processes.find((p) => p.name === "api-2")).toMatchObject({ alive: true, ready: true });

    const oldPid = api1.pid();
    await api1.restart();
    expect(api1.pid()).not.toBe(oldPid);
    expect(readFleetFile(stateDir)?.processes.find((p) => p.name === "api-1")?.pid).toBe(api1.pid());
    // rise 2 × inter 1s: back in rotation within a few seconds.
    await eventually(
      "HAProxy marks api-1 UP",
      async () => (await apiServerStates(socket)).get("api-1") === "UP",
    );
    await eventually("HAProxy sends requests to the restarted api-1 again", async () =>
      (await nodesServing(fleet.url)).includes("api-1"),
    );
  });

  it("restarts a killed NATS server and PostgreSQL on the same ports", async () => {
    const nats2 = fleet.process("nats-2");
    await nats2.kill("SIGKILL");
    await nats2.restart();
    expect(await nats2.ready()).toBe(true);

    const postgres = fleet.process("postgres");
    await postgres.kill("SIGKILL");
    expect(await postgres.ready()).toBe(false);
    await postgres.restart();
    expect(await postgres.ready()).toBe(true);
    expect(readFleetFile(stateDir)?.processes.find((p) => p.name === "postgres")?.pid).toBe(postgres.pid());
  });
});

describe.skipIf(missing !== undefined)("stopDevFleet", () => {
  it("stops exactly the pids fleet.json lists, of a fleet that outlived the process that started it", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "imgfleet-fleet-"));
    const bystander = spawn("sleep", ["300"], { detached: true, stdio: "ignore" });
    onTestFinished(async () => {
      await stopDevFleet(stateDir);
      bystander.kill("SIGKILL");
      rmSync(stateDir, { recursive: true, force: true });
    });

    // Another process starts the fleet and exits.
    const launcher = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "--input-type=module",
        "-e",
        `const { startDevFleet } = await import(${JSON.stringify(join(ROOT, "src/dev/fleet.ts"))});
         await startDevFleet(JSON.parse(process.env.FLEET_OPTIONS));`,
      ],
      {
        cwd: ROOT,
        env: { ...process.env, FLEET_OPTIONS: JSON.stringify(dummyFleetOptions(stateDir)) },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    let stderr = "";
    launcher.stderr.on("data", (c: Buffer) => {
      stderr += c.toString();
    });
    const [code] = (await once(launcher, "exit")) as [number | null];
    expect(code, stderr).toBe(0);

    const status = await devFleetStatus(stateDir);
    expect(status?.processes).toHaveLength(10);
    expect(status?.processes.every((p) => p.alive && p.ready)).toBe(true);

    // A record whose pid now belongs to another process (same pid, other start time) is left alone.
    const file = readFleetFile(stateDir);
    if (!file || bystander.pid === undefined) throw new Error("no fleet.json or no bystander");
    const bystanderStart = processStartTime(bystander.pid) ?? 0;
    await writeFleetFile({
      ...file,
      processes: [
        ...file.processes,
        {
          name: "reused-pid",
          role: "worker",
          pid: bystander.pid,
          startTime: bystanderStart + 1,
          ports: { http: 1 },
          url: "http://127.0.0.1:1",
          logFile: join(stateDir, "logs", "none.log"),
        },
      ],
    });

    const stopped = await stopDevFleet(stateDir);
    expect(stopped.find((s) => s.name === "reused-pid")?.outcome).toBe("not-running");
    expect(stopped.filter((s) => s.name !== "reused-pid").map((s) => s.outcome)).toEqual(
      Array(10).fill("stopped"),
    );
    for (const p of file.processes) expect(isAlive(p.pid), `${p.name} pid ${p.pid}`).toBe(false);
    expect(isAlive(bystander.pid)).toBe(true);
    expect(readFleetFile(stateDir)?.status).toBe("stopped");
  });

  it("refuses to start a second fleet in a directory whose fleet is alive", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "imgfleet-fleet-"));
    const sleeper = spawn("sleep", ["300"], { stdio: "ignore" });
    onTestFinished(() => {
      sleeper.kill("SIGKILL");
      rmSync(stateDir, { recursive: true, force: true });
    });
    const pid = sleeper.pid ?? 0;
    await writeFleetFile({
      version: 1,
      status: "running",
      stateDir,
      launcherPid: process.pid,
      createdAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
      url: "http://127.0.0.1:1",
      adminKey: null,
      clusterSecret: "x".repeat(48),
      natsUrls: [],
      databaseUrl: "",
      processes: [
        {
          name: "api-1",
          role: "api",
          pid,
          startTime: processStartTime(pid),
          ports: { http: 1 },
          url: "http://127.0.0.1:1",
          logFile: "/dev/null",
        },
      ],
    });
    await expect(startDevFleet(dummyFleetOptions(stateDir))).rejects.toThrow(
      /already running from .*api-1 pid \d+.*imgfleet\.js dev fleet down --dir/,
    );
    expect(isAlive(pid)).toBe(true);
  });

  it("fails with the tail of the failing process's log and stops what it started", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "imgfleet-fleet-"));
    onTestFinished(async () => {
      await stopDevFleet(stateDir);
      rmSync(stateDir, { recursive: true, force: true });
    });
    const error = await startDevFleet({
      ...dummyFleetOptions(stateDir),
      roleEnv: { worker: { DUMMY_FAIL: "1" } },
      entry: [
        "-e",
        `if (process.env.DUMMY_FAIL) { console.error("worker cannot start: boom"); process.exit(3); }\n${DUMMY_NODE}`,
      ],
    }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.message).toMatch(
      /^worker-[12] \(pid \d+\) exited while starting; last lines of .*worker-[12]\.log:\nworker cannot start: boom/,
    );
    const file = readFleetFile(stateDir);
    expect(file?.status).toBe("failed");
    expect(file?.processes.length).toBeGreaterThan(0);
    for (const p of file?.processes ?? []) expect(isAlive(p.pid, p.startTime), p.name).toBe(false);
  });
});
