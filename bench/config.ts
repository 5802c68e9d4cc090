import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Workload } from "./types.js";

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const PROJECT_ROOT = resolve(BENCH_DIR, "..");
export const RESULTS_DIR = resolve(BENCH_DIR, "results");

export const WORKLOADS: readonly Workload[] = [
  {
    id: "W1",
    file: "good/seed-256k.jpg",
    query: "w=800&q=80&format=jpeg",
    expect: { width: 800, height: 653 },
  },
  {
    id: "W2",
    file: "good/2569067123_aca715a2ee_o.jpg",
    query: "w=720&h=588&fit=cover&format=jpeg",
    expect: { width: 720, height: 588 },
  },
  {
    id: "W3",
    file: "good/seed-256k.jpg",
    query: "w=200&h=200&fit=cover&format=jpeg",
    expect: { width: 200, height: 200 },
  },
];

const DEFAULT_CONCURRENCY = [1, 4, 16];

/**
 * `ceiling`: imgfleet (auth.mode=none) against the ceiling, the process
 * boundary and sharp alone. `auth`: imgfleet with API keys against imgfleet
 * without. `metering`: imgfleet metering usage against imgfleet not metering.
 * `sampling`: imgfleet sampling its metric history every second against
 * imgfleet not sampling. `fleet`: the local fleet through HAProxy against the
 * ceiling, and the JetStream job queue's own latency.
 */
export const PHASES = ["ceiling", "auth", "metering", "sampling", "fleet"] as const;
export type Phase = (typeof PHASES)[number];
/**
 * What runs without BENCH_PHASES. Not `sampling` (it would add about a third
 * to the run's length, and only ops code changes its answer) nor `fleet`
 * (`--fleet`: it needs nats-server, PostgreSQL and HAProxy installed).
 */
export const DEFAULT_PHASES: readonly Phase[] = ["ceiling", "auth", "metering"];
/** Phases that compare a variant of imgfleet (a feature on) with a baseline (it off). */
export type ComparisonPhase = Exclude<Phase, "ceiling" | "fleet">;

/**
 * The workload of each comparison: W3, the smallest output, so that
 * per-request overhead (key check, meter record, sampler) weighs most.
 */
export const COMPARISON_WORKLOADS: Readonly<Record<ComparisonPhase, Workload>> = {
  auth: WORKLOADS[2] as Workload,
  metering: WORKLOADS[2] as Workload,
  sampling: WORKLOADS[2] as Workload,
};

/** The fleet phase's workloads: W1 (the big output) and W3 (the small one, per-request overhead). */
const FLEET_WORKLOAD_IDS = ["W1", "W3"];

export interface BenchConfig {
  corpusDir: string;
  seconds: number;
  warmupSeconds: number;
  workloads: Workload[];
  concurrencies: number[];
  strict: boolean;
  /** Sequential W1 requests for the process-boundary measurement. */
  boundaryRequests: number;
  /** Seconds of the in-process sharp rate. */
  sharpSeconds: number;
  /** CPU share (% of all cores) used outside the benchmark above which a pair is measured again. */
  maxOtherCpuPct: number;
  /** Extra attempts for a noisy pair. */
  retries: number;
  phases: Phase[];
  /** Alternations (without auth, then with) per concurrency in the auth phase. */
  authRounds: number;
  /** Alternations (unmetered, then metered) per concurrency in the metering phase. */
  meteringRounds: number;
  /** Alternations (unsampled, then sampled) per concurrency in the sampling phase. */
  samplingRounds: number;
  /** W1 and W3, or those of them BENCH_WORKLOADS names. */
  fleetWorkloads: Workload[];
  /** The queue-latency measurement of the fleet phase: messages per second, and seconds at that rate. */
  queueRate: number;
  queueSeconds: number;
}

/** Alternations (baseline, then variant) per concurrency of a comparison phase. */
export function roundsOf(config: BenchConfig, phase: ComparisonPhase): number {
  const rounds = {
    auth: config.authRounds,
    metering: config.meteringRounds,
    sampling: config.samplingRounds,
  };
  return rounds[phase];
}

function number(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name}=${raw}: expected a number >= ${min}`);
  return value;
}

const seconds = (name: string, fallback: number) => number(name, fallback, 0.5);

function list(name: string): string[] | undefined {
  const raw = process.env[name];
  if (!raw) return undefined;
  return raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function workloads(): Workload[] {
  const wanted = list("BENCH_WORKLOADS")?.map((s) => s.toUpperCase());
  if (!wanted) return [...WORKLOADS];
  const unknown = wanted.filter((id) => !WORKLOADS.some((w) => w.id === id));
  if (unknown.length > 0)
    throw new Error(`BENCH_WORKLOADS: unknown ${unknown.join(", ")} (known: W1, W2, W3)`);
  return WORKLOADS.filter((w) => wanted.includes(w.id));
}

function concurrencies(): number[] {
  const wanted = list("BENCH_CONCURRENCY");
  if (!wanted) return DEFAULT_CONCURRENCY;
  return wanted.map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_CONCURRENCY: ${s} is not a positive integer`);
    return n;
  });
}

/** BENCH_PHASES (default DEFAULT_PHASES), plus `fleet` with --fleet. */
function phases(argv: string[]): Phase[] {
  const named = list("BENCH_PHASES")?.map((s) => s.toLowerCase());
  const fleet = argv.includes("--fleet") ? ["fleet"] : [];
  const wanted = named ? [...named, ...fleet] : [...DEFAULT_PHASES, ...fleet];
  const known = (p: string): p is Phase => (PHASES as readonly string[]).includes(p);
  const unknown = wanted.filter((p) => !known(p));
  if (unknown.length > 0 || wanted.length === 0)
    throw new Error(
      `BENCH_PHASES: unknown ${unknown.join(", ") || "(none named)"} (known: ${PHASES.join(", ")})`,
    );
  return PHASES.filter((p) => wanted.includes(p));
}

/** Corpus files the chosen phases read: W1 also drives the boundary and in-process measurements. */
function neededWorkloads(config: BenchConfig): Set<Workload> {
  const needed = new Set<Workload>();
  if (config.phases.includes("ceiling"))
    for (const w of [WORKLOADS[0] as Workload, ...config.workloads]) needed.add(w);
  for (const [phase, workload] of Object.entries(COMPARISON_WORKLOADS))
    if ((config.phases as string[]).includes(phase)) needed.add(workload);
  if (config.phases.includes("fleet")) for (const w of config.fleetWorkloads) needed.add(w);
  return needed;
}

function fleetWorkloads(chosen: Workload[], phases: Phase[]): Workload[] {
  const fleet = chosen.filter((w) => FLEET_WORKLOAD_IDS.includes(w.id));
  if (phases.includes("fleet") && fleet.length === 0)
    throw new Error(
      `BENCH_WORKLOADS: the fleet phase measures ${FLEET_WORKLOAD_IDS.join(" and ")}; name one`,
    );
  return fleet;
}

export function loadConfig(argv: string[]): BenchConfig {
  const corpusDir = resolve(PROJECT_ROOT, process.env.CORPUS_DIR || "../shared/corpus");
  const chosen = workloads();
  const selected = phases(argv);
  const config: BenchConfig = {
    corpusDir,
    seconds: seconds("BENCH_SECONDS", 10),
    warmupSeconds: seconds("BENCH_WARMUP_SECONDS", 2),
    workloads: chosen,
    concurrencies: concurrencies(),
    strict: argv.includes("--strict"),
    boundaryRequests: 50,
    sharpSeconds: 4,
    maxOtherCpuPct: number("BENCH_MAX_OTHER_CPU", 10, 0),
    retries: Math.floor(number("BENCH_RETRIES", 2, 0)),
    phases: selected,
    authRounds: Math.floor(number("BENCH_AUTH_ROUNDS", 3, 1)),
    meteringRounds: Math.floor(number("BENCH_METERING_ROUNDS", 3, 1)),
    samplingRounds: Math.floor(number("BENCH_SAMPLING_ROUNDS", 3, 1)),
    fleetWorkloads: fleetWorkloads(chosen, selected),
    queueRate: number("BENCH_QUEUE_RATE", 500, 1),
    queueSeconds: seconds("BENCH_QUEUE_SECONDS", 10),
  };
  for (const w of neededWorkloads(config)) {
    const path = corpusFile(config, w);
    if (!existsSync(path)) throw new Error(`corpus file missing: ${path} (set CORPUS_DIR)`);
  }
  return config;
}

export function corpusFile(config: BenchConfig, workload: Workload): string {
  return resolve(config.corpusDir, workload.file);
}
