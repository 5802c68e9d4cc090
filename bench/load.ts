import { resolve } from "node:path";
import type { Result } from "autocannon";
import { BENCH_DIR } from "./config.js";
import { drainLines, spawnTs } from "./procs.js";
import type { LoadSummary } from "./types.js";

const LOADGEN = resolve(BENCH_DIR, "loadgen.ts");

/** Runs the load generator process against `url` and waits for its verdict; `headers` go with every request. */
export async function runLoad(
  url: string,
  file: string,
  connections: number,
  seconds: number,
  headers: Record<string, string> = {},
): Promise<Result> {
  const env = { BENCH_LOADGEN_HEADERS: JSON.stringify(headers) };
  const child = spawnTs(LOADGEN, [url, file, String(connections), String(seconds)], env);
  const stdout = drainLines(child.stdout);
  const stderr = drainLines(child.stderr);
  const code = await new Promise<number | null>((done) => child.once("exit", done));
  const line = stdout().at(-1);
  if (code !== 0 || !line) {
    throw new Error(`load generator exited with ${code}: ${stderr().join("\n") || "no output"}`);
  }
  return JSON.parse(line) as Result;
}

function flag(result: Result): string | null {
  const problems: string[] = [];
  if (result.non2xx > 0) problems.push(`${result.non2xx} non-2xx`);
  if (result.errors > 0) problems.push(`${result.errors} errors`);
  if (result.timeouts > 0) problems.push(`${result.timeouts} timeouts`);
  if (result["2xx"] === 0) problems.push("no successful response");
  return problems.length > 0 ? problems.join(", ") : null;
}

export function summarize(result: Result): LoadSummary {
  const codes = Object.fromEntries(
    Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count]),
  );
  const { latency } = result;
  return {
    connections: result.connections,
    durationS: result.duration,
    okRps: Math.round((result["2xx"] / result.duration) * 10) / 10,
    rpsAverage: result.requests.average,
    latencyMs: { p50: latency.p50, p90: latency.p90, p99: latency.p99, max: latency.max },
    responses: result.requests.total,
    ok2xx: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: codes,
    flagged: flag(result),
  };
}
