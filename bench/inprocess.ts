import { resolve } from "node:path";
import { BENCH_DIR } from "./config.js";
import { drainLines, spawnTs } from "./procs.js";
import type { SharpRate } from "./types.js";

const SCRIPT = resolve(BENCH_DIR, "sharp-rate.ts");

/** Runs the resize in a loop in a separate process with no HTTP (sharp-rate.ts). */
export async function sharpRate(
  file: string,
  query: string,
  concurrency: number,
  seconds: number,
  maxOps?: number,
): Promise<SharpRate> {
  const args = [file, query, String(concurrency), String(seconds), ...(maxOps ? [String(maxOps)] : [])];
  const child = spawnTs(SCRIPT, args);
  const stdout = drainLines(child.stdout);
  const stderr = drainLines(child.stderr);
  const code = await new Promise<number | null>((done) => child.once("exit", done));
  const line = stdout().at(-1);
  if (code !== 0 || !line) throw new Error(`sharp-rate exited with ${code}: ${stderr().join("\n")}`);
  return JSON.parse(line) as SharpRate;
}
