/**
 * sharp with no HTTP, as its own process: runs one workload's resize in a loop
 * at a fixed concurrency, for `seconds` or until `maxOps`, and prints one JSON line.
 *   node --import tsx bench/sharp-rate.ts <file> <query> <concurrency> <seconds> [maxOps]
 */
import { readFileSync } from "node:fs";
import sharp from "sharp";
import { resizeOp } from "./resize-op.js";
import { percentiles } from "./stats.js";
import type { SharpRate } from "./types.js";

const [file, query, conc, secs, max] = process.argv.slice(2);
if (!file || query === undefined || !conc || !secs) {
  process.stderr.write("usage: sharp-rate.ts <file> <query> <concurrency> <seconds> [maxOps]\n");
  process.exit(2);
}
const input = readFileSync(file);
const params = new URLSearchParams(query);
const concurrency = Number(conc);
const maxOps = max ? Number(max) : Number.POSITIVE_INFINITY;

async function loop(until: number, latencies: number[], limit: number): Promise<void> {
  while (performance.now() < until && latencies.length < limit) {
    const started = performance.now();
    await resizeOp(input, params);
    latencies.push(performance.now() - started);
  }
}

async function run(seconds: number, limit: number): Promise<{ latencies: number[]; elapsedS: number }> {
  const latencies: number[] = [];
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, () => loop(until, latencies, limit)));
  return { latencies, elapsedS: (performance.now() - started) / 1000 };
}

await run(1, concurrency * 4); // warm-up: load libvips and the decoders
const { latencies, elapsedS } = await run(Number(secs), maxOps);
const result: SharpRate = {
  concurrency,
  ops: latencies.length,
  seconds: Math.round(elapsedS * 100) / 100,
  opsPerSec: Math.round((latencies.length / elapsedS) * 10) / 10,
  latencyMs: percentiles(latencies),
  sharpConcurrency: sharp.concurrency(),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
