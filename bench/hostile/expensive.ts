/**
 * Issue 13, item 3: "A tenant looping expensive inputs: another tenant's p99
 * within 2x its idle value; the expensive work billed."
 *
 * Starts an embedded node in this process (real worker processes, two by
 * default), then measures a victim tenant sending small resizes (a ~23 KB
 * JPEG from the corpus, one request at a time):
 *   1. idle: the victim alone;
 *   2. scan bombs: an attacker loops eight progressive JPEGs of 20,000 empty
 *      scans each (the issue's reproduction) — the target is checked here;
 *   3. heavy inputs: an attacker loops eight legitimate but expensive resizes
 *      (49 MP, blur σ=100, ~3.5 s of a core each) — reported, with billed CPU
 *      against the CPU the workers really spent.
 * The victim has limits that never refuse it; the attacker has the node's
 * default tenant limits (20 requests/s, 8 in flight) and, like any client
 * that loops, waits as `Retry-After` says on a 429 or 503
 * (`--ignore-retry-after`: it does not, which floods the API process with
 * uploads it must refuse — a bandwidth attack, not an expensive-input one).
 * Prints a table and one JSON line; exits 1 when phase 2's p99 ratio is over
 * 2 or the heavy phase's work is not billed.
 *
 *   npx tsx bench/hostile/expensive.ts [--quick] [--skip-heavy] [--ignore-retry-after]
 *
 * Corpus: IMGFLEET_CORPUS, CORPUS_DIR or ../shared/corpus (good/Landscape_1.jpg).
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import sharp from "sharp";
import { createNode, type ImgfleetNode } from "../../src/app/node.js";
import { loadConfig } from "../../src/config/load.js";
import { utcDay } from "../../src/usage/archive.js";
import { processCpuMs } from "../../src/workers/process-cpu.js";
import { scanBomb } from "../../test/helpers/scan-bomb.js";
import { PROJECT_ROOT } from "../config.js";
import { percentiles } from "../stats.js";
import { render } from "../table.js";

const QUICK = process.argv.includes("--quick");
const SKIP_HEAVY = process.argv.includes("--skip-heavy");
const HONOUR_RETRY_AFTER = !process.argv.includes("--ignore-retry-after");
const VICTIM_REQUESTS = QUICK ? 40 : 400;
const ATTACKERS = 8;
const TARGET_RATIO = 2;

interface Tenant {
  id: string;
  post(path: string, body: Buffer, headers?: Record<string, string>): Promise<Response>;
}

/** A victim request unanswered this long is reported (with its request id) instead of waiting on. */
const NO_ANSWER_MS = 60_000;

interface Phase {
  name: string;
  p50: number;
  p99: number;
  victimOk: number;
  victimTotal: number;
  attackerStatuses: Record<string, number>;
  attackerBilledCpuMs: number;
  workerCpuMs: number;
}

async function startBenchNode(): Promise<{ node: ImgfleetNode; url: string; stop(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), "imgfleet-bench-expensive-"));
  const config = loadConfig({
    env: {},
    overrides: {
      dataDir,
      server: { port: 0, host: "127.0.0.1" },
      log: { level: (process.env.BENCH_LOG_LEVEL as "silent" | undefined) ?? "silent" },
      usage: { flushIntervalMs: 100 },
    },
  });
  const node = await createNode(config);
  const url = await node.listen();
  return {
    node,
    url,
    stop: async () => {
      await node.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The victim sends as fast as it is answered: limits that never refuse it. The attacker has the node's defaults. */
const UNLIMITED = { ratePerSecond: 10_000, burst: 10_000, maxInFlight: 1000 };

async function makeTenant(
  url: string,
  adminKey: string,
  name: string,
  limits: Partial<typeof UNLIMITED> = {},
): Promise<Tenant> {
  const call = async (path: string, body: unknown) =>
    (await fetch(`${url}/admin/v1${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }).then((r) => r.json())) as { id: string; secret: string };
  const { id } = await call("/tenants", { name, ...limits });
  const { secret } = await call(`/tenants/${id}/keys`, { name: "bench", scopes: ["resize"] });
  return {
    id,
    post: (path, body, headers = {}) =>
      fetch(`${url}${path}`, {
        method: "POST",
        body,
        headers: { authorization: `Bearer ${secret}`, "content-type": "image/jpeg", ...headers },
        signal: AbortSignal.timeout(NO_ANSWER_MS),
      }),
  };
}

function corpusImage(): Buffer {
  const dir = process.env.IMGFLEET_CORPUS || process.env.CORPUS_DIR || "../shared/corpus";
  return readFileSync(resolve(PROJECT_ROOT, dir, "good/Landscape_1.jpg"));
}

/** The victim's requests, one at a time; latency of each in ms, and how many were 200. */
async function victimRun(victim: Tenant, image: Buffer): Promise<{ ms: number[]; ok: number }> {
  const ms: number[] = [];
  let ok = 0;
  for (let i = 0; i < VICTIM_REQUESTS; i++) {
    const started = performance.now();
    const id = randomUUID();
    const res = await victim
      .post("/v1/resize?w=200&format=jpeg", image, { "x-request-id": id })
      .then(async (r) => {
        await r.arrayBuffer();
        return r;
      })
      .catch((error: unknown) => {
        console.error(`victim request ${id}: no answer (${String(error)})`);
        return undefined;
      });
    ms.push(performance.now() - started);
    if (res?.status === 200) ok++;
  }
  return { ms, ok };
}

/** `ATTACKERS` loops posting `body` until `stop` is set; counts their statuses and keeps their request ids. */
function attack(attacker: Tenant, path: string, body: Buffer) {
  const statuses: Record<string, number> = {};
  const ids: string[] = [];
  let stopped = false;
  const loop = async () => {
    while (!stopped) {
      const res = await attacker.post(path, body).catch(() => undefined);
      if (!res) continue;
      await res.arrayBuffer();
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
      ids.push(res.headers.get("x-request-id") ?? "");
      const retryAfterS = Number(res.headers.get("retry-after") ?? 0);
      if (HONOUR_RETRY_AFTER && (res.status === 429 || res.status === 503) && retryAfterS > 0)
        await new Promise((r) => setTimeout(r, retryAfterS * 1000));
    }
  };
  const loops = Array.from({ length: ATTACKERS }, loop);
  return {
    statuses,
    ids,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/**
 * CPU the node's worker processes spend while it runs, read from /proc every
 * 100 ms for every worker seen (a killed worker counts up to its last sample,
 * a new one from its first, so its start-up is left out).
 */
function trackWorkersCpu(node: ImgfleetNode): { stop(): number } {
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const sample = () => {
    for (const { pid } of node.pool?.workers() ?? []) {
      const ms = processCpuMs(pid);
      if (ms === undefined) continue;
      if (!first.has(pid)) first.set(pid, ms);
      last.set(pid, ms);
    }
  };
  sample();
  const timer = setInterval(sample, 100);
  return {
    stop: () => {
      clearInterval(timer);
      sample();
      let total = 0;
      for (const [pid, ms] of last) total += ms - (first.get(pid) ?? ms);
      return total;
    },
  };
}

async function billedCpuMs(node: ImgfleetNode, tenant: string, ids: string[]): Promise<number> {
  await node.usage.flush(30_000);
  const records = await node.usage.archive.read(tenant, utcDay(Date.now()));
  const wanted = new Set(ids);
  return records.filter((r) => wanted.has(r.id)).reduce((sum, r) => sum + (r.cpuMs ?? 0), 0);
}

async function runPhase(
  name: string,
  ctx: { node: ImgfleetNode; victim: Tenant; attacker: Tenant; image: Buffer },
  attackWith?: { path: string; body: Buffer },
): Promise<Phase> {
  const cpu = trackWorkersCpu(ctx.node);
  const running = attackWith && attack(ctx.attacker, attackWith.path, attackWith.body);
  // Let the attack fill the queue before measuring.
  if (running) await new Promise((r) => setTimeout(r, 1000));
  const { ms, ok } = await victimRun(ctx.victim, ctx.image);
  await running?.stop();
  const workerCpuMs = cpu.stop();
  const p = percentiles(ms);
  return {
    name,
    p50: p.p50,
    p99: p.p99,
    victimOk: ok,
    victimTotal: ms.length,
    attackerStatuses: running?.statuses ?? {},
    attackerBilledCpuMs: running ? await billedCpuMs(ctx.node, ctx.attacker.id, running.ids) : 0,
    workerCpuMs,
  };
}

function report(phases: Phase[]): boolean {
  const [idle, bombs, heavy] = phases as [Phase, Phase, Phase | undefined];
  const ratio = bombs.p99 / idle.p99;
  // Billed within 20% of what the workers measurably spent (sampled every 100 ms, so a little under).
  const heavyBilled =
    !heavy || Math.abs(heavy.attackerBilledCpuMs - heavy.workerCpuMs) <= 0.2 * heavy.workerCpuMs;
  const pass = ratio <= TARGET_RATIO && bombs.victimOk === bombs.victimTotal && heavyBilled;
  const rows = phases.map((p) => [
    p.name,
    p.p50.toFixed(1),
    p.p99.toFixed(1),
    (p.p99 / idle.p99).toFixed(2),
    `${p.victimOk}/${p.victimTotal}`,
    JSON.stringify(p.attackerStatuses),
    Math.round(p.attackerBilledCpuMs).toString(),
    Math.round(p.workerCpuMs).toString(),
  ]);
  console.log(
    render(
      [
        "phase",
        "victim p50 ms",
        "victim p99 ms",
        "p99/idle",
        "victim 200s",
        "attacker answers",
        "attacker billed CPU ms",
        "workers' CPU ms",
      ],
      rows,
    ),
  );
  console.log(
    `scan bombs: victim p99 ${ratio.toFixed(2)}x idle (target <= ${TARGET_RATIO}x): ${ratio <= TARGET_RATIO ? "PASS" : "FAIL"}; heavy inputs billed: ${heavy ? (heavyBilled ? "PASS" : "FAIL") : "skipped"}`,
  );
  const mode = { quick: QUICK, honourRetryAfter: HONOUR_RETRY_AFTER };
  console.log(JSON.stringify({ bench: "hostile/expensive", ...mode, ratio, pass, phases }));
  return pass;
}

async function main(): Promise<void> {
  const { node, url, stop } = await startBenchNode();
  try {
    const adminKey = node.identity.bootstrapKey?.secret;
    if (!adminKey) throw new Error("the bench node's data directory should be fresh");
    const victim = await makeTenant(url, adminKey, "victim", UNLIMITED);
    const attacker = await makeTenant(url, adminKey, "attacker");
    const image = await sharp(corpusImage()).resize(400).jpeg({ quality: 80 }).toBuffer();
    const ctx = { node, victim, attacker, image };
    const phases = [await runPhase("idle", ctx)];
    phases.push(
      await runPhase("scan bombs", ctx, { path: "/v1/resize?w=300", body: await scanBomb(4000, 20_000) }),
    );
    const heavy = await sharp({ create: { width: 7000, height: 7000, channels: 3, background: "#808080" } })
      .jpeg()
      .toBuffer();
    if (!SKIP_HEAVY)
      phases.push(await runPhase("heavy inputs", ctx, { path: "/v1/resize?blur=100", body: heavy }));
    process.exitCode = report(phases) ? 0 : 1;
  } finally {
    await stop();
  }
}

await main();
