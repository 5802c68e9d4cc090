import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import sharp from "sharp";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import { firstSteps } from "../../src/cli/bootstrap-banner.js";
import { CI_POLL } from "../helpers/ci.js";

const ROOT = join(import.meta.dirname, "../..");
const run = promisify(execFile);

interface Imgfleet {
  child: ChildProcess;
  url: string;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** `imgfleet start` on this data directory, as an operator runs it; stdout and stderr kept apart. */
function startImgfleet(
  dataDir: string,
  exported: Record<string, string> = {},
): { started: Promise<Imgfleet>; exited: Promise<number | null> } {
  const inherited = Object.entries(process.env).filter(([k]) => !k.startsWith("IMGFLEET_"));
  const env = { ...Object.fromEntries(inherited), ...exported };
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "start", "--port", "0", "--workers", "1", "--data-dir", dataDir],
    { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const started = new Promise<Imgfleet>((resolve, reject) => {
    const check = setInterval(() => {
      const url = /"url":"(http:[^"]+)"/.exec(out)?.[1];
      if (url) {
        clearInterval(check);
        resolve({ child, url, stdout: () => out, stderr: () => err, exited });
      }
    }, 20);
    void exited.then((code) => {
      clearInterval(check);
      reject(new Error(`imgfleet exited with ${code} before listening:\n${out}\n${err}`));
    });
  });
  return { started, exited };
}

async function stop(server: Imgfleet): Promise<number | null> {
  server.child.kill("SIGTERM");
  return server.exited;
}

/** The banner's shell lines, as a person selects them: indented three spaces, not its prose. */
function bannerCommands(banner: string): { exports: string[]; steps: string[] } {
  const lines = banner
    .split("\n")
    .filter((l) => l.startsWith("   "))
    .map((l) => l.slice(3));
  return {
    exports: lines.filter((l) => l.startsWith("export ")),
    steps: lines.filter((l) => !l.startsWith("export ")),
  };
}

/** The variables the banner's `export` lines set, as a shell that pasted them has them. */
async function exportedBy(exports: string[]): Promise<Record<string, string>> {
  const { stdout } = await run("bash", ["-euc", `${exports.join("\n")}\nenv -0`], {
    env: { PATH: process.env.PATH ?? "" },
  });
  const names = exports.map((line) => /^export ([A-Z_]+)=/.exec(line)?.[1]);
  return Object.fromEntries(
    stdout
      .split("\0")
      .map((entry) => [entry.slice(0, entry.indexOf("=")), entry.slice(entry.indexOf("=") + 1)])
      .filter(([name]) => names.includes(name)),
  );
}

/** Every regular file under a directory, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(entry.parentPath, entry.name);
    if (entry.isDirectory()) return filesUnder(path);
    return entry.isFile() ? [path] : [];
  });
}

/** The files under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const bytes = Buffer.from(needle);
  return filesUnder(dir).filter((file) => readFileSync(file).includes(bytes));
}

/** `imf_<key id>_<secret><checksum>`: the secret part, the only part that is hashed. */
function secretPart(token: string): string {
  return token.split("_")[2]?.slice(0, 43) ?? "";
}

describe("the README's quick start", () => {
  it("is the banner's steps, with $PWD (the repository root) where the banner prints the checkout's path", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const block = /```sh\n(export IMGFLEET_URL=[\s\S]*?)```/.exec(readme)?.[1] ?? "";
    // Comments at the ends of lines say where a value comes from; they are not steps.
    const lines = block
      .trimEnd()
      .split("\n")
      .map((line) => line.replace(/\s+# .*$/, ""));
    expect(lines).toEqual(firstSteps({ url: "http://127.0.0.1:8080", adminKey: "imf_…", root: "$PWD" }));
    // npx outside the checkout would fetch someone else's package: no command of the README runs it.
    expect(readme).not.toMatch(/(^|\$\()npx imgfleet/m);
  });
});

describe("imgfleet start on a fresh data directory", () => {
  // Three cold starts of a node from source (the first also creates the database): slow on a loaded machine.
  it("prints the admin key once, with a first example that works, and stores no secret", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "imgfleet-bootstrap-"));
    const work = mkdtempSync(join(tmpdir(), "imgfleet-paste-"));
    onTestFinished(() => {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    });
    // The steps run bin/imgfleet.js, which runs the build (`npm install` and `npm start` make it).
    expect(existsSync(join(ROOT, "dist/cli/main.js")), "dist/ is missing: run npm run build").toBe(true);
    const first = await startImgfleet(dataDir).started;
    await vi.waitFor(() => expect(first.stdout()).toContain("first start: created the bootstrap admin key"), {
      timeout: 10_000,
    });
    await vi.waitFor(() => expect(first.stderr()).toContain("================\n"), CI_POLL);

    // The banner: on stderr, once, naming this node's URL and a working admin key.
    const banner = first.stderr();
    expect(banner.match(/IMGFLEET_ADMIN_KEY=/g)).toHaveLength(1);
    expect(first.stdout()).not.toContain("IMGFLEET_ADMIN_KEY=");
    const adminKey = /export IMGFLEET_ADMIN_KEY=(\S+)/.exec(banner)?.[1] ?? "";
    expect(adminKey).toMatch(/^imf_/);
    expect(banner).toContain(`export IMGFLEET_URL=${first.url}\n`);
    const tenants = await fetch(`${first.url}/admin/v1/tenants`, {
      headers: { authorization: `Bearer ${adminKey}` },
    });
    expect(tenants.status).toBe(200);

    // The steps, pasted as printed into a shell in a directory that is not the checkout, with no
    // imgfleet on the PATH: the export lines make `imgfleet` this checkout's, never npx's.
    const { exports, steps } = bannerCommands(banner);
    expect(exports).toHaveLength(3);
    expect(steps.join("\n")).not.toContain("npx");
    const { stdout: pasted } = await run(
      "bash",
      ["-euc", `${exports.join("\n")}\n${steps.join("\n")}\necho "$TENANT $KEY"`],
      { cwd: work, env: { PATH: process.env.PATH ?? "", HOME: work } },
    );
    const [tenantId = "", keySecret = ""] = pasted.trim().split(" ");
    expect(tenantId).toMatch(/^ten_/);
    expect(keySecret).toMatch(/^imf_/);
    const tenant = { id: tenantId };
    const key = { secret: keySecret };
    const image = await sharp(readFileSync(join(work, "sample-400.webp"))).metadata();
    expect([image.format, image.width]).toEqual(["webp", 400]);

    // The secrets were shown once and are stored nowhere: not in the data directory, not in the logs.
    expect(await stop(first)).toBe(0);
    const secrets = [adminKey, secretPart(adminKey), key.secret, secretPart(key.secret)];
    for (const secret of secrets) {
      expect(filesContaining(dataDir, secret), "files holding a secret").toEqual([]);
      expect(first.stdout()).not.toContain(secret);
    }
    // The search does see what is stored: the tenant's name and each key's hash.
    const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
    expect(filesContaining(dataDir, tenant.id).length).toBeGreaterThan(0);
    expect(filesContaining(dataDir, sha256(secretPart(adminKey))).length).toBeGreaterThan(0);
    expect(filesContaining(dataDir, sha256(secretPart(key.secret))).length).toBeGreaterThan(0);

    // A restart on the same directory, from the shell that pasted the banner's export lines (the
    // CLI's own variables are no server configuration), prints no banner; the keys it printed still work.
    const shell = await exportedBy(exports);
    expect(Object.keys(shell).sort()).toEqual(["IMGFLEET_ADMIN_KEY", "IMGFLEET_URL", "PATH"]);
    const second = await startImgfleet(dataDir, shell).started;
    const listed = await fetch(`${second.url}/admin/v1/tenants`, {
      headers: { authorization: `Bearer ${adminKey}` },
    });
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { items: { id: string }[] }).items.map((t) => t.id)).toEqual([
      tenant.id,
    ]);
    const resized = await fetch(`${second.url}/v1/resize?w=40`, {
      method: "POST",
      body: readFileSync(join(ROOT, "examples/sample.jpg")),
      headers: { authorization: `Bearer ${key.secret}`, "content-type": "image/jpeg" },
    });
    expect(resized.status).toBe(200);
    expect(second.stderr()).not.toContain("IMGFLEET_ADMIN_KEY");
    expect(second.stdout()).not.toContain("first start");

    // A second process on the same directory while this one runs refuses to start.
    const intruder = startImgfleet(dataDir);
    intruder.started.catch(() => {});
    const code = await intruder.exited;
    expect(code).not.toBe(0);
    await expect(intruder.started).rejects.toThrow(/in use/);
    // ...and leaves the running one alone.
    expect(
      (await fetch(`${second.url}/admin/v1/tenants`, { headers: { authorization: `Bearer ${adminKey}` } }))
        .status,
    ).toBe(200);
    expect(await stop(second)).toBe(0);
  }, 120_000);
});
