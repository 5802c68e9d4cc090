import { render } from "./table.js";
import { AUTH_RATIO_MIN, p99Ratio, throughputRatio } from "./targets.js";
import type {
  AuthComparison,
  BoundaryCost,
  MedianLatency,
  Pair,
  Percentiles,
  SharpRate,
  TargetCheck,
} from "./types.js";

const COLUMNS = [
  "workload",
  "conc",
  "ceil ops/s",
  "fleet ops/s",
  "ratio",
  "ceil p50",
  "ceil p99",
  "fleet p50",
  "fleet p99",
  "p99 ratio",
  "fleet RSS MB",
  "ceil RSS MB",
  "note",
];

function row(p: Pair): string[] {
  const { ceiling: c, imgfleet: f } = p;
  const note = [
    ...[c, f].filter((m) => m.load.flagged).map((m) => `FLAGGED ${m.server}: ${m.load.flagged}`),
    ...(p.noisy ? [`NOISY: ${p.noisy}`] : []),
  ].join("; ");
  return [
    p.workload,
    String(p.concurrency),
    c.load.okRps.toFixed(1),
    f.load.okRps.toFixed(1),
    throughputRatio(p).toFixed(3),
    `${c.load.latencyMs.p50} ms`,
    `${c.load.latencyMs.p99} ms`,
    `${f.load.latencyMs.p50} ms`,
    `${f.load.latencyMs.p99} ms`,
    p99Ratio(p).toFixed(2),
    f.rss.peakMb.toFixed(1),
    c.rss.peakMb.toFixed(1),
    note,
  ];
}

export function table(pairs: Pair[]): string {
  return render(COLUMNS, pairs.map(row));
}

const CPU_COLUMNS = [
  "workload",
  "conc",
  "ceil cpu ms/req",
  "fleet cpu ms/req",
  "fleet API ms/req",
  "fleet workers ms/req",
  "workers busy",
  "fleet queue p50",
  "fleet process p50",
];

function cpuRow(p: Pair): string[] {
  const { ceiling: c, imgfleet: f } = p;
  const t = f.serverTimings;
  const busy = t ? (t.processSumMs / (f.load.durationS * 1000)).toFixed(2) : "?";
  return [
    p.workload,
    String(p.concurrency),
    c.cpuMsPerOk.server.toFixed(1),
    f.cpuMsPerOk.server.toFixed(1),
    f.cpuMsPerOk.serverMain.toFixed(1),
    (f.cpuMsPerOk.server - f.cpuMsPerOk.serverMain).toFixed(1),
    busy,
    t ? `${t.queue.p50} ms` : "?",
    t ? `${t.process.p50} ms` : "?",
  ];
}

/** Where the CPU went: per successful response, the ceiling against imgfleet's API process and workers. */
export function cpuTable(pairs: Pair[]): string {
  return render(CPU_COLUMNS, pairs.map(cpuRow));
}

const AUTH_COLUMNS = [
  "workload",
  "conc",
  "rounds",
  "no-auth ops/s",
  "auth ops/s",
  "ratio",
  "round ratios",
  "no-auth p50",
  "no-auth p99",
  "auth p50",
  "auth p99",
  "auth step p50",
  "auth step p99",
  "note",
];

const ms = (v: number) => `${Number.isNaN(v) ? "?" : Math.round(v * 10) / 10} ms`;
const p50p99 = (l: MedianLatency) => [ms(l.p50), ms(l.p99)];

function authRow(c: AuthComparison): string[] {
  const note = [...(c.flagged ? [`FLAGGED: ${c.flagged}`] : []), ...(c.noisy ? [`NOISY: ${c.noisy}`] : [])];
  return [
    c.workload,
    String(c.concurrency),
    String(c.rounds.length),
    c.withoutAuthOkRps.toFixed(1),
    c.withAuthOkRps.toFixed(1),
    c.ratio.toFixed(3),
    c.rounds.map((r) => r.ratio.toFixed(3)).join(" "),
    ...p50p99(c.withoutAuthLatencyMs),
    ...p50p99(c.withAuthLatencyMs),
    ...p50p99(c.authStepMs),
    note.join("; "),
  ];
}

/** imgfleet with API keys against without; latencies are medians over the rounds. */
export function authTable(comparisons: AuthComparison[]): string {
  return [
    `auth: throughput with API keys / without (target >= ${AUTH_RATIO_MIN.toFixed(2)}); p50/p99 are medians over rounds;`,
    "the auth step is Server-Timing's `auth` (key check and tenant limits) of the authenticated server",
    render(AUTH_COLUMNS, comparisons.map(authRow)),
  ].join("\n");
}

const fmt = (p: Percentiles) => `p50 ${p.p50} ms  p99 ${p.p99} ms`;

export function boundaryReport(b: BoundaryCost): string {
  return [
    `process boundary, W1 at concurrency 1 (${b.requests} sequential requests, Server-Timing):`,
    `  total      ${fmt(b.total)}`,
    `  process    ${fmt(b.process)}   (the resize in the worker)`,
    `  queue      ${fmt(b.queue)}`,
    `  probe      ${fmt(b.probe)}`,
    `  overhead   ${fmt(b.overhead)}   (total - process - probe)`,
    `  client     ${fmt(b.clientMs)}   (fetch, send to last byte)`,
    `  in-process sharp, same op, c1: ${fmt(b.inProcessMs)} (n=${b.inProcessMs.n})`,
  ].join("\n");
}

export function sharpRateReport(r: SharpRate): string {
  return `sharp in-process, W1 op, concurrency ${r.concurrency}, no HTTP: ${r.opsPerSec} ops/s (${r.ops} ops in ${r.seconds} s, latency ${fmt(r.latencyMs)}, sharp.concurrency()=${r.sharpConcurrency})`;
}

export function targetsReport(checks: TargetCheck[]): string {
  const misses = checks.filter((c) => c.status === "MISS").length;
  const lines = checks.map(
    (c) => `  ${c.status === "MISS" ? "MISS !!" : c.status.padEnd(7)} ${c.name}: ${c.detail}`,
  );
  const verdict =
    misses > 0 ? `!!!!!! ${misses} TARGET${misses > 1 ? "S" : ""} MISSED !!!!!!` : "all measured targets met";
  return ["targets:", ...lines, verdict].join("\n");
}
