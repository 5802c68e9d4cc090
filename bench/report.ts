import { cpus } from "node:os";
import type { AuthResult } from "./auth-phase.js";
import type { ComparisonResult } from "./comparison.js";
import type { FleetResult } from "./fleet-phase.js";
import type { MeteringResult } from "./metering-phase.js";
import type { LatencyStats, PublishRun, QueueLatencyResult, QueueRun } from "./queue-latency.js";
import type { SamplingResult } from "./sampling-phase.js";
import { render } from "./table.js";
import {
  COMPARISON_RATIO_MIN,
  FLEET_RATIO_MIN,
  p99Ratio,
  QUEUE_P50_MAX_MS,
  QUEUE_P99_MAX_MS,
  throughputRatio,
} from "./targets.js";
import type {
  AuthExtra,
  BoundaryCost,
  Comparison,
  CpuShare,
  Measurement,
  MedianLatency,
  MeteringExtra,
  Pair,
  Percentiles,
  SamplingExtra,
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

const SAMPLING_COLUMNS: ExtraColumn<SamplingExtra>[] = [
  {
    header: "samples in runs",
    cell: (c) =>
      c.extra.samplesDuringRuns === null
        ? "?"
        : `${c.extra.samplesDuringRuns} in ${Math.round(c.extra.runSeconds)} s`,
  },
  {
    header: "every",
    cell: (c) =>
      c.extra.sampleGapMeanMs === null ? "?" : `${(c.extra.sampleGapMeanMs / 1000).toFixed(2)} s`,
  },
  {
    header: "sampled req/s",
    cell: (c) => (c.extra.sampledRateMean === null ? "?" : c.extra.sampledRateMean.toFixed(1)),
  },
  { header: "unsampled samples", cell: (c) => count(c.extra.baselineSamples) },
];

/** imgfleet sampling its metric history every second against not sampling. */
export function samplingReport(result: SamplingResult): string {
  const { sampled, unsampled, phaseSeconds } = result.samplesOverPhase;
  return [
    `sampling: throughput with the metric sampler every ${result.sampleIntervalMs / 1000} s / sampling off (target >= ${COMPARISON_RATIO_MIN.sampling.toFixed(2)});`,
    `the interval is ${result.shippedSampleIntervalMs / result.sampleIntervalMs}x the shipped rate (${result.shippedSampleIntervalMs / 1000} s), so this bounds sampling's cost from above;`,
    "samples are points of the request_rate history the sampled server wrote during its kept runs (GET /admin/v1/metrics/request_rate),",
    "their mean spacing, and their mean value (the traffic the sampler saw); the idle server is stopped while the other is",
    "measured; p50/p99 are medians over rounds",
    comparisonTable(result, SAMPLING_COLUMNS),
    "sampling: CPU per successful response, medians over rounds (API = imgfleet's main process)",
    comparisonCpuTable(result),
    `request_rate points over the whole phase (${phaseSeconds} s): imgfleet-sampled ${count(sampled)}, imgfleet-unsampled ${count(unsampled)}`,
    `both idle for ${result.idle.seconds} s side by side: imgfleet-unsampled ${result.idle.unsampledPct}% of the machine, imgfleet-sampled ${result.idle.sampledPct}%:`,
    `the sampler takes about ${result.idle.cpuMsPerSample} ms of CPU per round, ${((result.idle.cpuMsPerSample / result.sampleIntervalMs) * 100).toFixed(1)}% of one core at ${result.sampleIntervalMs / 1000} s, ${((result.idle.cpuMsPerSample / result.shippedSampleIntervalMs) * 100).toFixed(2)}% at the shipped ${result.shippedSampleIntervalMs / 1000} s`,
  ].join("\n");
}

/** The matrix's columns without the p99 ratio, which the fleet table leaves out. */
const P99_RATIO = COLUMNS.indexOf("p99 ratio");
const FLEET_COLUMNS = COLUMNS.filter((_, i) => i !== P99_RATIO);

function fleetRow(p: Pair): string[] {
  return row(p).filter((_, i) => i !== P99_RATIO);
}

/** nats-2 → nats, api-1 → api: the fleet's processes by role. */
const roleOf = (label: string) => label.replace(/-\d+$/, "");
const FLEET_ROLES = ["api", "worker", "control", "nats", "postgres", "haproxy"];

function byRole(values: Record<string, number> | undefined): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const [label, v] of Object.entries(values ?? {})) sums[roleOf(label)] = (sums[roleOf(label)] ?? 0) + v;
  return sums;
}

/** CPU ms per successful response of a share of all cores. */
const msPerOk = (pct: number, m: Measurement) =>
  m.load.okRps > 0 ? ((pct / 100) * cpus().length * 1000) / m.load.okRps : Number.NaN;

/** CPU columns: each role's trees, the worker nodes split into the node process and its worker processes. */
const CPU_ROLES = ["api", "worker node", "worker procs", "control", "nats", "postgres", "haproxy"];

function cpuByRole(cpu: CpuShare): Record<string, number> {
  const trees = byRole(cpu.perRootPct);
  const own = byRole(cpu.perRootOwnPct);
  return {
    ...trees,
    "worker node": own.worker ?? 0,
    "worker procs": (trees.worker ?? 0) - (own.worker ?? 0),
  };
}

function fleetCpuRow(p: Pair): string[] {
  const { ceiling: c, imgfleet: f } = p;
  const roles = cpuByRole(f.cpu);
  const t = f.serverTimings;
  const busy = t ? (t.processSumMs / (f.load.durationS * 1000)).toFixed(2) : "?";
  return [
    p.workload,
    String(p.concurrency),
    c.cpuMsPerOk.server.toFixed(1),
    f.cpuMsPerOk.server.toFixed(1),
    ...CPU_ROLES.map((role) => cpuMs(msPerOk(roles[role] ?? 0, f))),
    `${f.cpu.busyPct}%`,
    busy,
    t ? `${t.queue.p50} ms` : "?",
    t ? `${t.process.p50} ms` : "?",
    t ? `${t.other.p50} ms` : "?",
  ];
}

function fleetRssRow(p: Pair): string[] {
  const roles = byRole(p.imgfleet.rss.perRootMb);
  return [
    p.workload,
    String(p.concurrency),
    p.imgfleet.rss.peakMb.toFixed(1),
    String(p.imgfleet.rss.processesAtPeak),
    ...FLEET_ROLES.map((role) => (roles[role] ?? 0).toFixed(1)),
    p.imgfleet.rss.pssAtEndMb?.toFixed(1) ?? "?",
  ];
}

const lat = (s: LatencyStats) => [s.p50, s.p90, s.p99, s.max].map((v) => `${v} ms`);

/** One row of the queue table: JetStreamJobQueue at one replication. */
function queueRow(r: QueueRun): string[] {
  return [
    `queue R${r.replicas}`,
    `${r.leader ?? "?"}/${r.connectedTo ?? "?"}`,
    `${r.achievedRate}/s`,
    `${r.delivered}/${r.sent}`,
    ...lat(r.deliveryMs),
    `${r.enqueueAckMs.p50} ms`,
    `${r.enqueueAckMs.p99} ms`,
    `${r.deliveryAfterAckMs.p50} ms`,
    `${r.cpu.serverPct}%`,
    `${(byRole(r.cpu.perRootPct).nats ?? 0).toFixed(1)}%`,
    `${r.client.cpuPct}%`,
    `${r.client.loopDelayMs.p99} ms`,
    `${r.sendLagMs.p99} ms`,
    [
      ...(r.failedEnqueues ? [`${r.failedEnqueues} enqueues failed`] : []),
      ...(r.redeliveries ? [`${r.redeliveries} redeliveries`] : []),
      ...(r.noisy ? [`NOISY: ${r.noisy}`] : []),
    ].join("; "),
  ];
}

/** One row of the queue table: a plain publish's ack round trip, no consumer. */
function publishRow(r: PublishRun): string[] {
  return [
    `js.publish R${r.replicas}`,
    `${r.leader ?? "?"}/${r.connectedTo ?? "?"}`,
    `${r.targetRate}/s`,
    `${r.sent - r.failed}/${r.sent}`,
    "",
    "",
    "",
    "",
    `${r.ackMs.p50} ms`,
    `${r.ackMs.p99} ms`,
    "",
    `${r.cpu.serverPct}%`,
    `${(byRole(r.cpu.perRootPct).nats ?? 0).toFixed(1)}%`,
    `${r.client.cpuPct}%`,
    `${r.client.loopDelayMs.p99} ms`,
    "",
    [...(r.failed ? [`${r.failed} failed`] : []), ...(r.noisy ? [`NOISY: ${r.noisy}`] : [])].join("; "),
  ];
}

const QUEUE_COLUMNS = [
  "what",
  "leader/conn",
  "rate",
  "delivered",
  "p50",
  "p90",
  "p99",
  "max",
  "ack p50",
  "ack p99",
  "dlv-ack p50",
  "fleet cpu",
  "nats cpu",
  "client cpu",
  "client loop p99",
  "send lag p99",
  "note",
];

const FLEET_CPU_COLUMNS = [
  "workload",
  "conc",
  "ceil ms/req",
  "fleet ms/req",
  ...CPU_ROLES,
  "machine busy",
  "workers busy",
  "queue p50",
  "process p50",
  "other p50",
];

/** The job queue's own latency on the fleet's NATS, with what it costs. */
function queueSection(q: QueueLatencyResult): string[] {
  return [
    `queue: JetStreamJobQueue on the fleet's NATS ${q.natsVersion ?? "?"}, ${q.rate} messages/s for ${q.seconds} s (after ${q.warmupSeconds} s not counted),`,
    `the fleet idle; delivery = enqueue() called to pull() returning it, one clock (targets, R3: p50 < ${QUEUE_P50_MAX_MS} ms, p99 < ${QUEUE_P99_MAX_MS} ms);`,
    "ack = enqueue() to the stream's ack; dlv-ack = delivery minus that ack, per message; client = this harness (publisher and",
    "pull loops, one Node process): its CPU, event-loop delay and how late its timer sent; R1 (1 replica) shows what Raft",
    "replication costs; js.publish is a plain publish's ack round trip at the same rate, no consumer",
    render(QUEUE_COLUMNS, [...q.queue.map(queueRow), ...q.publish.map(publishRow)]),
    ...(q.warnings.length > 0 ? [`queue warnings: ${q.warnings.slice(0, 5).join(" | ")}`] : []),
  ];
}

/** The fleet against the ceiling, where its CPU and memory go, and the job queue's own latency. */
export function fleetReport(result: FleetResult): string {
  const { fleet, pairs } = result;
  const idle = fleet.idle.cpu;
  const idleRoles = byRole(idle.perRootPct);
  const layout = `${fleet.layout.apiNodes} API, ${fleet.layout.workerNodes} worker (${fleet.layout.workersPerNode} worker process each), ${fleet.layout.controlNodes} control node(s), 3 NATS, PostgreSQL, HAProxy`;
  return [
    `fleet: ${layout}; ${[...new Set(pairs.map((p) => p.workload))].join(" and ")} through HAProxy with an API key,`,
    `against the ceiling (target fleet/ceiling >= ${FLEET_RATIO_MIN.toFixed(2)}); p50/p99 are autocannon's.`,
    `The idle fleet takes ${idle.serverPct}% of the machine (${FLEET_ROLES.map((r) => `${r} ${(idleRoles[r] ?? 0).toFixed(1)}%`).join(", ")}): the ceiling runs beside it.`,
    "Fleet RSS is the peak of the sum over every fleet process (nodes with their workers, NATS, PostgreSQL with its backends, HAProxy).",
    render(FLEET_COLUMNS, pairs.map(fleetRow)),
    "fleet: CPU ms per successful response (all cores), by role (each node with its workers); busy = the whole machine;",
    "workers busy, queue, process and other (HTTP, data path, IPC) p50 from the API nodes' request logs",
    render(FLEET_CPU_COLUMNS, pairs.map(fleetCpuRow)),
    "fleet: RSS MB at the peak sample, by role; PSS (shared pages split between the processes using them) of all as the run ended",
    render(["workload", "conc", "fleet MB", "processes", ...FLEET_ROLES, "PSS MB"], pairs.map(fleetRssRow)),
    ...queueSection(result.queueLatency),
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
