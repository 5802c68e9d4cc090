/**
 * Issue 13, "two tenants trickling uploads": a third tenant's p99 stays
 * within 2x its value without them, and /readyz stays ready.
 *
 * An embedded node (trickle-node.ts, its own process, default upload
 * bounds) serves a victim tenant's resizes at a fixed concurrency, first
 * alone, then while two tenants hold eight connections each that declare
 * 16 MB and send one byte every 10 s, reconnecting whenever they are cut
 * off (the attack of the issue). Prints a table and one JSON line; exits 1
 * when the victim's p99 under attack is over 2x its p99 alone, when
 * /readyz said anything but 200 during the attack, or when a victim
 * request failed.
 *
 *   npx tsx bench/hostile/trickle.ts [--quick]
 *
 * Reads the corpus from IMGFLEET_CORPUS (or CORPUS_DIR, or ../shared/corpus).
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { PROJECT_ROOT } from "../config.js";
import { percentiles } from "../stats.js";

const QUICK = process.argv.includes("--quick");
const PHASE_S = QUICK ? 6 : 30;
const WARMUP_S = QUICK ? 2 : 5;
const VICTIM_CONCURRENCY = 4;
const CONNECTIONS_PER_ATTACKER = 8;
const DECLARED_BYTES = 16_000_000;
const TRICKLE_EVERY_MS = 10_000;
const MAX_RATIO = 2;
const IMAGE = "good/seed-256k.jpg";
const QUERY = "w=200&h=200&fit=cover&format=jpeg";

interface NodeUnderTest {
  url: string;
  victim: string;
  attackers: string[];
  stop(): void;
}

function startNode(): Promise<NodeUnderTest> {
  const script = resolve(PROJECT_ROOT, "bench/hostile/trickle-node.ts");
  const child = spawn(process.execPath, ["--import", "tsx", script, "{}"], {
    cwd: PROJECT_ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((done, fail) => {
    child.once("exit", (code) => fail(new Error(`the node exited (${code}) before it was ready`)));
    createInterface({ input: child.stdout }).once("line", (line) => {
      const started = JSON.parse(line) as Omit<NodeUnderTest, "stop">;
      done({ ...started, stop: () => child.kill("SIGTERM") });
    });
  });
}

/** The victim: `VICTIM_CONCURRENCY` clients resizing back to back for `seconds`; latencies of the 200s, and every other status. */
async function victimLoad(node: NodeUnderTest, image: Buffer, seconds: number) {
  const latencies: number[] = [];
  const failures: number[] = [];
  const until = performance.now() + seconds * 1000;
  const client = async () => {
    while (performance.now() < until) {
      const started = performance.now();
      const res = await fetch(`${node.url}/v1/resize?${QUERY}`, {
        method: "POST",
        headers: { "content-type": "image/jpeg", authorization: `Bearer ${node.victim}` },
        body: image,
      });
      await res.arrayBuffer();
      if (res.status === 200) latencies.push(performance.now() - started);
      else failures.push(res.status);
    }
  };
  await Promise.all(Array.from({ length: VICTIM_CONCURRENCY }, client));
  return { ...percentiles(latencies), failures };
}

/** One attacking connection, reconnecting until `attacking()` is false; returns the statuses it was answered with. */
async function trickler(node: NodeUnderTest, key: string, attacking: () => boolean): Promise<number[]> {
  const answers: number[] = [];
  const { hostname, port } = new URL(node.url);
  while (attacking()) {
    const answer = await new Promise<string>((done) => {
      const socket = connect(Number(port), hostname);
      let received = "";
      socket.on("data", (data) => {
        received += data.toString("latin1");
      });
      socket.on("error", () => {});
      socket.write(
        `POST /v1/resize?w=16 HTTP/1.1\r\nHost: ${hostname}\r\nAuthorization: Bearer ${key}\r\nContent-Type: image/jpeg\r\nContent-Length: ${DECLARED_BYTES}\r\n\r\n`,
      );
      const drip = setInterval(() => received === "" && socket.write(Buffer.alloc(1)), TRICKLE_EVERY_MS);
      const giveUp = setInterval(() => attacking() || socket.destroy(), 100);
      socket.once("close", () => {
        clearInterval(drip);
        clearInterval(giveUp);
        done(received);
      });
    });
    const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1];
    if (status) answers.push(Number(status));
  }
  return answers;
}

/** /readyz every 250 ms and the staging gauge every second, until `stopped()`. */
async function watchNode(node: NodeUnderTest, stopped: () => boolean) {
  const readiness: number[] = [];
  let peakStagingBytes = 0;
  for (let tick = 0; !stopped(); tick++) {
    readiness.push((await fetch(`${node.url}/readyz`)).status);
    if (tick % 4 === 0) {
      const text = await (await fetch(`${node.url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith("imgfleet_staging_bytes "));
      peakStagingBytes = Math.max(peakStagingBytes, Number(line?.split(" ")[1] ?? 0));
    }
    await new Promise((done) => setTimeout(done, 250));
  }
  return { readiness, peakStagingBytes };
}

function countBy(values: number[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

async function main(): Promise<number> {
  const corpus = resolve(
    PROJECT_ROOT,
    process.env.IMGFLEET_CORPUS || process.env.CORPUS_DIR || "../shared/corpus",
  );
  const image = readFileSync(resolve(corpus, IMAGE));
  const node = await startNode();
  try {
    await victimLoad(node, image, WARMUP_S);
    const alone = await victimLoad(node, image, PHASE_S);

    let attacking = true;
    const attack = node.attackers.flatMap((key) =>
      Array.from({ length: CONNECTIONS_PER_ATTACKER }, () => trickler(node, key, () => attacking)),
    );
    const watching = watchNode(node, () => !attacking);
    const attacked = await victimLoad(node, image, PHASE_S);
    attacking = false;
    const attackAnswers = (await Promise.all(attack)).flat();
    const { readiness, peakStagingBytes } = await watching;
    return report({ alone, attacked, readiness, attackAnswers, peakStagingBytes });
  } finally {
    node.stop();
  }
}

function report(r: {
  alone: Awaited<ReturnType<typeof victimLoad>>;
  attacked: Awaited<ReturnType<typeof victimLoad>>;
  readiness: number[];
  attackAnswers: number[];
  peakStagingBytes: number;
}): number {
  const ratio = r.attacked.p99 / r.alone.p99;
  const notReady = r.readiness.filter((s) => s !== 200).length;
  const checks = {
    p99Ratio: ratio <= MAX_RATIO,
    readyzStayedReady: notReady === 0 && r.readiness.length > 0,
    victimAllServed: r.alone.failures.length === 0 && r.attacked.failures.length === 0,
  };
  const pass = Object.values(checks).every(Boolean);
  console.log(
    `trickle${QUICK ? " (quick)" : ""}: ${PHASE_S} s per phase, victim concurrency ${VICTIM_CONCURRENCY}`,
  );
  console.table({
    "victim alone": {
      n: r.alone.n,
      p50_ms: r.alone.p50,
      p99_ms: r.alone.p99,
      failed: r.alone.failures.length,
    },
    "victim under attack": {
      n: r.attacked.n,
      p50_ms: r.attacked.p50,
      p99_ms: r.attacked.p99,
      failed: r.attacked.failures.length,
    },
  });
  console.log(
    `p99 ratio ${ratio.toFixed(2)} (target <= ${MAX_RATIO}); /readyz not 200 in ${notReady} of ${r.readiness.length} samples; ` +
      `attack answers ${JSON.stringify(countBy(r.attackAnswers))}; peak staging ${r.peakStagingBytes} bytes; ${pass ? "PASS" : "FAIL"}`,
  );
  console.log(
    JSON.stringify({
      bench: "hostile/trickle",
      quick: QUICK,
      phaseSeconds: PHASE_S,
      alone: r.alone,
      attacked: r.attacked,
      p99Ratio: Number(ratio.toFixed(3)),
      readyzSamples: r.readiness.length,
      readyzNotReady: notReady,
      attackAnswers: countBy(r.attackAnswers),
      peakStagingBytes: r.peakStagingBytes,
      checks,
      pass,
    }),
  );
  return pass ? 0 : 1;
}

process.exitCode = await main();
