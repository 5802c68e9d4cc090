import { readFileSync } from "node:fs";
import { post, resizeUrl } from "./http.js";
import type { RunningServer } from "./servers.js";
import { percentiles } from "./stats.js";
import type { BoundaryCost, Percentiles, Workload } from "./types.js";

const WARMUP_REQUESTS = 5;

/** `probe;dur=2.4, queue;dur=1, ...` → { probe: 2.4, queue: 1, ... } */
export function parseServerTiming(header: string | null): Record<string, number> {
  const timings: Record<string, number> = {};
  for (const entry of (header ?? "").split(",")) {
    const [name, ...params] = entry.trim().split(";");
    const dur = params.map((p) => /^\s*dur=([\d.]+)\s*$/.exec(p)).find(Boolean);
    if (name && dur?.[1]) timings[name] = Number(dur[1]);
  }
  return timings;
}

interface Sample {
  client: number;
  timing: Record<string, number>;
}

async function sequential(url: string, body: Buffer, count: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (let i = 0; i < count; i++) {
    const res = await post(url, body);
    if (res.status !== 200) throw new Error(`boundary request ${i}: HTTP ${res.status}`);
    samples.push({ client: res.ms, timing: parseServerTiming(res.headers.get("server-timing")) });
  }
  return samples;
}

function of(samples: Sample[], pick: (s: Sample) => number): Percentiles {
  return percentiles(samples.map(pick));
}

/**
 * What the process boundary costs at concurrency 1: sequential W1 requests,
 * Server-Timing split into the work (process) and everything around it.
 */
export async function boundaryCost(
  imgfleet: RunningServer,
  workload: Workload,
  file: string,
  count: number,
  inProcessMs: Percentiles,
): Promise<BoundaryCost> {
  const url = resizeUrl(imgfleet, workload);
  const body = readFileSync(file);
  await sequential(url, body, WARMUP_REQUESTS);
  const samples = await sequential(url, body, count);
  const t = (s: Sample, key: string) => s.timing[key] ?? Number.NaN;
  return {
    requests: samples.length,
    clientMs: of(samples, (s) => s.client),
    total: of(samples, (s) => t(s, "total")),
    process: of(samples, (s) => t(s, "process")),
    queue: of(samples, (s) => t(s, "queue")),
    probe: of(samples, (s) => t(s, "probe")),
    overhead: of(samples, (s) => t(s, "total") - t(s, "process") - t(s, "probe")),
    inProcessMs,
  };
}
