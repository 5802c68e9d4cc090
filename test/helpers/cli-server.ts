import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { onTestFinished } from "vitest";
import { adminCall } from "./node.js";

const ROOT = join(import.meta.dirname, "../..");
const START_TIMEOUT_MS = 30_000;

export interface CliServer {
  child: ChildProcess;
  url: string;
  /** Log lines seen so far (bounded), printed when a test fails. */
  logs: string[];
  /** The admin key printed at first start (null when the data directory was not fresh). */
  adminKey: string | null;
  dataDir: string;
  exited: Promise<number | null>;
  rssBytes(): number;
  /** Makes a tenant (with these limits) and returns an API key for it, through the admin API. */
  tenantKey(limits?: Record<string, number>): Promise<string>;
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
  const given = args.indexOf("--data-dir");
  const dataDir = given >= 0 ? (args[given + 1] as string) : mkdtempSync(join(tmpdir(), "imgfleet-cli-"));
  const dirArgs = given >= 0 ? [] : ["--data-dir", dataDir];
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "start", "--port", "0", ...dirArgs, ...args],
    {
      cwd: ROOT,
      env: { ...cleanEnv, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    if (given < 0) rmSync(dataDir, { recursive: true, force: true });
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
  // The banner goes to stderr just after the URL is logged.
  const adminKey = await bannerKey(logs, exited);
  const tenantKey = async (limits: Record<string, number> = {}) => {
    if (!adminKey) throw new Error("no bootstrap admin key was printed; start with a fresh data directory");
    const tenant = await adminCall(url, adminKey, "POST", "/tenants", { name: `t-${Date.now()}`, ...limits });
    const { id } = (await tenant.json()) as { id: string };
    const key = await adminCall(url, adminKey, "POST", `/tenants/${id}/keys`, { scopes: ["resize"] });
    return ((await key.json()) as { secret: string }).secret;
  };
  return { child, url, logs, adminKey, dataDir, exited, tenantKey, rssBytes: () => rssOf(child.pid ?? 0) };
}

/** The first start logs a warning once the banner is out; a later start has neither. */
async function bannerKey(logs: string[], exited: Promise<unknown>): Promise<string | null> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const keyLine = () => logs.find((l) => l.includes("IMGFLEET_ADMIN_KEY="));
  for (let waited = 0; waited < 1000 && !gone && !keyLine(); waited += 20) {
    if (
      logs.some((l) => l.includes('"url"')) &&
      logs.some((l) => l.includes("worker pool ready")) &&
      waited >= 200
    )
      break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return /IMGFLEET_ADMIN_KEY=(\S+)/.exec(keyLine() ?? "")?.[1] ?? null;
}

/** Resident memory of one process, from /proc. */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return Number(kb ?? 0) * 1024;
}
