import type { AuthComparison, Pair, TargetCheck } from "./types.js";

const RSS_LIMIT_MB = 400;
const P99_FACTOR = 1.5;
const THROUGHPUT_TARGETS = [
  { workload: "W1", concurrency: 4, min: 0.95 },
  { workload: "W1", concurrency: 16, min: 0.9 },
  { workload: "W3", concurrency: 4, min: 0.9 },
];
/** API keys (hash, lookup, tenant limiter) must cost at most 3% of throughput. */
export const AUTH_RATIO_MIN = 0.97;

export const throughputRatio = (p: Pair) => p.imgfleet.load.okRps / p.ceiling.load.okRps;
export const p99Ratio = (p: Pair) => p.imgfleet.load.latencyMs.p99 / p.ceiling.load.latencyMs.p99;

/** A run with failed requests never passes: its numbers do not describe the service working. */
function failures(pair: Pair): string | null {
  const bad = [pair.ceiling, pair.imgfleet].filter((m) => m.load.flagged);
  return bad.length ? bad.map((m) => `${m.server} run had ${m.load.flagged}`).join("; ") : null;
}

function check(name: string, pair: Pair, pass: boolean, measured: string): TargetCheck {
  const failed = failures(pair);
  const detail = pair.noisy ? `${measured} (NOISY: ${pair.noisy})` : measured;
  if (failed) return { name, status: "MISS", detail: `${detail}; ${failed}` };
  return { name, status: pass ? "PASS" : "MISS", detail };
}

function throughputChecks(pairs: Pair[]): TargetCheck[] {
  return THROUGHPUT_TARGETS.map(({ workload, concurrency, min }) => {
    const name = `${workload} c${concurrency} throughput ratio >= ${min.toFixed(2)}`;
    const pair = pairs.find((p) => p.workload === workload && p.concurrency === concurrency);
    if (!pair) return { name, status: "SKIP", detail: "not measured in this run" };
    const ratio = throughputRatio(pair);
    return check(name, pair, ratio >= min, `ratio ${ratio.toFixed(3)}`);
  });
}

function latencyChecks(pairs: Pair[]): TargetCheck[] {
  return pairs.map((pair) => {
    const ratio = p99Ratio(pair);
    const { ceiling, imgfleet } = pair;
    return check(
      `${pair.workload} c${pair.concurrency} imgfleet p99 <= ${P99_FACTOR}x ceiling p99`,
      pair,
      ratio <= P99_FACTOR,
      `${imgfleet.load.latencyMs.p99} ms vs ${ceiling.load.latencyMs.p99} ms (${ratio.toFixed(2)}x)`,
    );
  });
}

function rssChecks(pairs: Pair[]): TargetCheck[] {
  const c16 = pairs.filter((p) => p.concurrency === 16);
  const name = (w: string) => `${w} c16 imgfleet peak RSS <= ${RSS_LIMIT_MB} MB`;
  if (c16.length === 0) return [{ name: name("any"), status: "SKIP", detail: "no 16-connection run" }];
  return c16.map((pair) => {
    const { rss } = pair.imgfleet;
    const detail = `${rss.peakMb} MB over ${rss.processesAtPeak} processes`;
    return check(name(pair.workload), pair, rss.peakMb <= RSS_LIMIT_MB, detail);
  });
}

/** Every concurrency of the auth phase: with/without auth, 2xx per second over all rounds. */
function authChecks(comparisons: AuthComparison[] | null): TargetCheck[] {
  const name = (c: string) => `${c} throughput with auth / without >= ${AUTH_RATIO_MIN.toFixed(2)}`;
  if (!comparisons?.length) return [{ name: name("W3"), status: "SKIP", detail: "auth phase not run" }];
  return comparisons.map((c) => {
    const rounds = c.rounds.map((r) => r.ratio.toFixed(3)).join(", ");
    const measured = `ratio ${c.ratio.toFixed(3)} (rounds ${rounds})`;
    const detail = c.noisy ? `${measured} (NOISY: ${c.noisy})` : measured;
    const what = name(`${c.workload} c${c.concurrency}`);
    if (c.flagged) return { name: what, status: "MISS", detail: `${detail}; ${c.flagged}` };
    return { name: what, status: c.ratio >= AUTH_RATIO_MIN ? "PASS" : "MISS", detail };
  });
}

export function checkTargets(pairs: Pair[], auth: AuthComparison[] | null): TargetCheck[] {
  return [...throughputChecks(pairs), ...latencyChecks(pairs), ...rssChecks(pairs), ...authChecks(auth)];
}
