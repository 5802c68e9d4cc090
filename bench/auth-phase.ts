/**
 * What API keys cost: the same workload against imgfleet without auth and
 * with it, alternating (without, with, without, with, ...) so that drift of
 * the machine (thermal, other tenants' load) falls on both alike. Only one
 * server is under load at a time; each measurement ends with its server quiet.
 */
import type { BenchConfig } from "./config.js";
import { noisePct } from "./cpu.js";
import { describe, measure } from "./measure.js";
import { quietest } from "./quiet.js";
import type { RunningServer } from "./servers.js";
import { median } from "./stats.js";
import type { AuthComparison, AuthRound, Measurement, MedianLatency, Workload } from "./types.js";

export interface AuthServers {
  /** auth.mode=none: the server of the comparison with the ceiling. */
  withoutAuth: RunningServer;
  /** auth.mode=keys, sending a tenant's API key. */
  withAuth: RunningServer;
}

const say = (text: string) => process.stdout.write(`${text}\n`);

async function measureRound(
  config: BenchConfig,
  servers: AuthServers,
  workload: Workload,
  concurrency: number,
) {
  const withoutAuth = await measure(config, servers.withoutAuth, workload, concurrency);
  say(`  ${describe(withoutAuth)}`);
  const withAuth = await measure(config, servers.withAuth, workload, concurrency);
  say(`  ${describe(withAuth)}`);
  return { withoutAuth, withAuth, ratio: withAuth.load.okRps / withoutAuth.load.okRps };
}

const otherCpu = (r: Pick<AuthRound, "withoutAuth" | "withAuth">) =>
  Math.max(noisePct(r.withoutAuth.cpu), noisePct(r.withAuth.cpu));

/** 2xx per second over all rounds together: longer or busier rounds weigh in proportion. */
function okRps(measurements: Measurement[]): number {
  const ok = measurements.reduce((sum, m) => sum + m.load.ok2xx, 0);
  const seconds = measurements.reduce((sum, m) => sum + m.load.durationS, 0);
  return seconds > 0 ? Math.round((ok / seconds) * 10) / 10 : Number.NaN;
}

/** Medians of per-round percentiles; rounded, since an even count averages two 0.1 ms values. */
function medianOf(values: { p50: number; p99: number }[]): MedianLatency {
  const of = (pick: (v: { p50: number; p99: number }) => number) =>
    Math.round(median(values.map(pick)) * 100) / 100;
  return { p50: of((v) => v.p50), p99: of((v) => v.p99) };
}

function summarizeRounds(workload: Workload, concurrency: number, rounds: AuthRound[]): AuthComparison {
  const withoutAuth = rounds.map((r) => r.withoutAuth);
  const withAuth = rounds.map((r) => r.withAuth);
  const withoutAuthOkRps = okRps(withoutAuth);
  const withAuthOkRps = okRps(withAuth);
  const noisy = rounds.filter((r) => r.noisy).map((r) => r.noisy);
  const flagged = [...withoutAuth, ...withAuth]
    .filter((m) => m.load.flagged)
    .map((m) => `${m.server} run had ${m.load.flagged}`);
  const authStep = withAuth.flatMap((m) => (m.serverTimings ? [m.serverTimings.auth] : []));
  return {
    workload: workload.id,
    concurrency,
    rounds,
    withoutAuthOkRps,
    withAuthOkRps,
    ratio: withAuthOkRps / withoutAuthOkRps,
    withoutAuthLatencyMs: medianOf(withoutAuth.map((m) => m.load.latencyMs)),
    withAuthLatencyMs: medianOf(withAuth.map((m) => m.load.latencyMs)),
    authStepMs: medianOf(authStep),
    noisy: noisy.length > 0 ? `${noisy.length} of ${rounds.length} rounds: ${noisy.join("; ")}` : null,
    flagged: flagged.length > 0 ? flagged.join("; ") : null,
  };
}

/** `authRounds` alternations at each concurrency, each measured again while noisy like the matrix's pairs. */
export async function runAuthPhase(
  config: BenchConfig,
  servers: AuthServers,
  workload: Workload,
): Promise<AuthComparison[]> {
  const comparisons: AuthComparison[] = [];
  for (const concurrency of config.concurrencies) {
    const rounds: AuthRound[] = [];
    for (let i = 1; i <= config.authRounds; i++) {
      say(`\nauth ${workload.id} c${concurrency} round ${i}/${config.authRounds}`);
      const measureOnce = () => measureRound(config, servers, workload, concurrency);
      const { best, attempts, noisy } = await quietest(config, measureOnce, otherCpu);
      say(`  with/without ${best.ratio.toFixed(3)}`);
      rounds.push({ ...best, attempts, noisy });
    }
    comparisons.push(summarizeRounds(workload, concurrency, rounds));
  }
  return comparisons;
}
