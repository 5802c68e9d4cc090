import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import sharp from "sharp";
import { describe, expect, it, onTestFinished, vi } from "vitest";

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
function startImgfleet(dataDir: string): { started: Promise<Imgfleet>; exited: Promise<number | null> } {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("IMGFLEET_")));
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

/** The banner's shell commands, each as pasted: a `curl …` line and its `\` continuations. */
function bannerCommands(banner: string): { exports: string[]; curls: string[] } {
  const lines = banner.split("\n").map((l) => l.trim());
  const exports = lines.filter((l) => l.startsWith("export IMGFLEET_"));
  const curls: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]?.startsWith("curl ")) continue;
    const command = [lines[i] as string];
    while (command.at(-1)?.endsWith("\\") && i + 1 < lines.length) command.push(lines[++i] as string);
    curls.push(command.join("\n"));
  }
  return { exports, curls };
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

describe("imgfleet start on a fresh data directory", () => {
  // Three cold starts of a node from source (the first also creates the database): slow on a loaded machine.
  it("prints the admin key once, with a first example that works, and stores no secret", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "imgfleet-bootstrap-"));
    const work = mkdtempSync(join(tmpdir(), "imgfleet-paste-"));
    onTestFinished(() => {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(work, { recursive: true, force: true });
    });
    const first = await startImgfleet(dataDir).started;
    await vi.waitFor(() => expect(first.stdout()).toContain("first start: created the bootstrap admin key"), {
      timeout: 10_000,
    });
    await vi.waitFor(() => expect(first.stderr()).toContain("================\n"));

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

    // The example, pasted as printed, from a directory holding examples/sample.jpg.
    const { exports, curls } = bannerCommands(banner);
    expect(exports).toHaveLength(2);
    expect(curls).toHaveLength(3);
    mkdirSync(join(work, "examples"));
    copyFileSync(join(ROOT, "examples/sample.jpg"), join(work, "examples/sample.jpg"));
    const paste = async (command: string, env: Record<string, string> = {}) => {
      const { stdout } = await run("bash", ["-euc", `${exports.join("\n")}\n${command}`], {
        cwd: work,
        env: { PATH: process.env.PATH ?? "", ...env },
      });
      return stdout;
    };
    const tenant = JSON.parse(await paste(curls[0] as string)) as { id: string; name: string };
    expect(tenant.id).toMatch(/^ten_/);
    const key = JSON.parse(await paste(curls[1] as string, { TENANT: tenant.id })) as { secret: string };
    expect(key.secret).toMatch(/^imf_/);
    await paste(curls[2] as string, { KEY: key.secret });
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

    // A restart on the same directory prints no banner; the keys it printed still work.
    const second = await startImgfleet(dataDir).started;
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
