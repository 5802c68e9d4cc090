import type { AuthResult } from "./auth-phase.js";
import type { ComparisonResult } from "./comparison.js";
import type { MeteringResult } from "./metering-phase.js";
import { render } from "./table.js";
import { COMPARISON_RATIO_MIN, p99Ratio, throughputRatio } from "./targets.js";
import type {
  AuthExtra,
  BoundaryCost,
  Comparison,
  MedianLatency,
  MeteringExtra,
  Pair,
  Percentiles,
  SharpRate,
  TargetCheck,
} from "./types.js";
import { usageHealth } from "./usage.js";

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

/** A column only one feature's comparison has. */
interface ExtraColumn<X> {
  header: string;
  cell(c: Comparison<X>): string;
}

const ms = (v: number) => `${Number.isNaN(v) ? "?" : Math.round(v * 10) / 10} ms`;
const p50p99 = (l: MedianLatency) => [ms(l.p50), ms(l.p99)];

function comparisonRow<X>(c: Comparison<X>, extra: ExtraColumn<X>[]): string[] {
  const note = [...(c.flagged ? [`FLAGGED: ${c.flagged}`] : []), ...(c.noisy ? [`NOISY: ${c.noisy}`] : [])];
  return [
    c.workload,
    String(c.concurrency),
    String(c.rounds.length),
    c.baselineOkRps.toFixed(1),
    c.variantOkRps.toFixed(1),
    c.ratio.toFixed(3),
    c.rounds.map((r) => r.ratio.toFixed(3)).join(" "),
    ...p50p99(c.baselineLatencyMs),
    ...p50p99(c.variantLatencyMs),
    ...extra.map((x) => x.cell(c)),
    note.join("; "),
  ];
}

/** Variant against baseline: ratio of 2xx/s over all rounds, round ratios, medians over rounds, feature columns. */
function comparisonTable<X>(result: ComparisonResult<X>, extra: ExtraColumn<X>[]): string {
  const { baseline: b, variant: v } = result.labels;
  const columns = [
    "workload",
    "conc",
    "rounds",
    `${b} ops/s`,
    `${v} ops/s`,
    "ratio",
    "round ratios",
    `${b} p50`,
    `${b} p99`,
    `${v} p50`,
    `${v} p99`,
    ...extra.map((x) => x.header),
    "note",
  ];
  return render(
    columns,
    result.perConcurrency.map((c) => comparisonRow(c, extra)),
  );
}

const cpuMs = (v: number) => (Number.isNaN(v) ? "?" : v.toFixed(1));
const delta = (from: number, to: number) => (Number.isNaN(from - to) ? "?" : (to - from).toFixed(1));

/** CPU per successful response of both sides (medians over rounds): where a feature's cost goes. */
function comparisonCpuTable(result: ComparisonResult<unknown>): string {
  const { baseline: b, variant: v } = result.labels;
  const columns = [
    "workload",
    "conc",
    `${b} cpu ms/req`,
    `${v} cpu ms/req`,
    "delta",
    `${b} API ms/req`,
    `${v} API ms/req`,
    "API delta",
    `${b} workers ms/req`,
    `${v} workers ms/req`,
  ];
  const rows = result.perConcurrency.map((c) => {
    const base = c.baselineCpuMsPerOk;
    const variant = c.variantCpuMsPerOk;
    return [
      c.workload,
      String(c.concurrency),
      cpuMs(base.server),
      cpuMs(variant.server),
      delta(base.server, variant.server),
      cpuMs(base.serverMain),
      cpuMs(variant.serverMain),
      delta(base.serverMain, variant.serverMain),
      cpuMs(base.server - base.serverMain),
      cpuMs(variant.server - variant.serverMain),
    ];
  });
  return render(columns, rows);
}

const AUTH_COLUMNS: ExtraColumn<AuthExtra>[] = [
  { header: "auth step p50", cell: (c) => ms(c.extra.authStepMs.p50) },
  { header: "auth step p99", cell: (c) => ms(c.extra.authStepMs.p99) },
];

/** imgfleet with API keys against without; latencies are medians over the rounds. */
export function authReport(result: AuthResult): string {
  return [
    `auth: throughput with API keys / without (target >= ${COMPARISON_RATIO_MIN.auth.toFixed(2)}); p50/p99 are medians over rounds;`,
    "the auth step is Server-Timing's `auth` (key check and tenant limits) of the authenticated server",
    comparisonTable(result, AUTH_COLUMNS),
    "auth: CPU per successful response, medians over rounds (API = imgfleet's main process)",
    comparisonCpuTable(result),
  ].join("\n");
}

const kb = (bytes: number | null) => (bytes === null ? "?" : (bytes / 1024).toFixed(1));
const count = (n: number | null) => (n === null ? "?" : String(n));

const METERING_COLUMNS: ExtraColumn<MeteringExtra>[] = [
  { header: "spool KB at end", cell: (c) => kb(c.extra.spoolBytesAtEndMax) },
  { header: "unsealed at end", cell: (c) => count(c.extra.recordsUnsealedAtEndMax) },
  {
    header: "drained in",
    cell: (c) =>
      c.extra.undrainedRounds > 0
        ? `NOT (${c.extra.undrainedRounds} rounds)`
        : c.extra.drainMsMax === null
          ? "?"
          : `${(c.extra.drainMsMax / 1000).toFixed(1)} s`,
  },
  { header: "sealed", cell: (c) => count(c.extra.batchesSealed) },
  { header: "dropped", cell: (c) => count(c.extra.recordsDropped) },
  { header: "dups", cell: (c) => count(c.extra.duplicateBatches) },
];

/** imgfleet metering against not metering, then the metered server's usage pipeline at the end. */
export function meteringReport(result: MeteringResult): string {
  const { lastRun, metered, unmetered } = result.usageAtEnd;
  const drain = lastRun?.drainMs;
  const health = [
    lastRun
      ? usageHealth("imgfleet-metered", "as its last kept run ended", lastRun.atEnd)
      : "imgfleet-metered: no usage metrics",
    ...(lastRun
      ? [`  drained ${drain === null || drain === undefined ? "NOT within 20 s" : `${drain} ms`} later`]
      : []),
    ...(metered ? [usageHealth("imgfleet-metered", "after all its runs, drained", metered)] : []),
    unmetered
      ? `imgfleet-unmetered (usage.enabled=false) after all its runs: ${unmetered.batchesSealed} batches sealed, spool ${unmetered.spoolBytes} B`
      : "imgfleet-unmetered: no usage metrics",
  ];
  return [
    `metering: throughput metered / unmetered (target >= ${COMPARISON_RATIO_MIN.metering.toFixed(2)}); p50/p99 are medians over rounds;`,
    "spool and unsealed records as a run ended and the slowest drain after a run (open batch sealed, every batch",
    "committed) are the worst of the rounds; sealed batches, dropped records and duplicate batches of the metered",
    "server are its counters after the last round",
    comparisonTable(result, METERING_COLUMNS),
    "metering: CPU per successful response, medians over rounds (API = imgfleet's main process)",
    comparisonCpuTable(result),
    ...health,
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
