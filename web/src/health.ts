import type { Alert, FleetNode, MetricsOverview } from "../../src/contract/admin.js";
import { duration } from "./format.js";

type Summary = MetricsOverview["items"][number];

/**
 * How long after the sampler's node starts a missing request rate is
 * expected rather than a fault: the server's own freshness window for a
 * "latest" value (3 sample intervals, at least 30 s). The sampler's first
 * round runs at start (gauges), its second one interval later (rates).
 */
export function freshWindowMs(sampleIntervalMs: number): number {
  return Math.max(30_000, 3 * sampleIntervalMs);
}

export interface Health {
  tone: "green" | "amber" | "red";
  headline: string;
  reasons: string[];
  /** Worth knowing, not a fault (outliers, first samples): shown, but the tone stays as the alerts say. */
  notes: string[];
}

export interface HealthInput {
  nodes: FleetNode[];
  firing: Alert[];
  overview: MetricsOverview;
  /** Epoch ms. */
  now: number;
}

/**
 * Green, amber or red from what `imgfleet status` and the alerts page see:
 * registered nodes and firing alerts. Missing samples turn it amber only
 * once the sampler has had time to take them; before, the overview says it
 * is collecting its first samples.
 */
export function healthOf({ nodes, firing, overview, now }: HealthInput): Health {
  const reasons: string[] = [];
  const notes: string[] = [];
  let tone: Health["tone"] = "green";
  const worse = (t: Health["tone"]) => {
    if (t === "red" || (t === "amber" && tone === "green")) tone = t;
  };
  if (nodes.length === 0) {
    worse("red");
    reasons.push("no node has registered in discovery");
  }
  const critical = firing.filter((a) => a.severity === "critical");
  for (const a of critical) reasons.push(`critical: ${a.summary}`);
  if (critical.length > 0) worse("red");
  const warnings = firing.filter((a) => a.severity !== "critical");
  for (const a of warnings) reasons.push(`warning: ${a.summary}`);
  if (warnings.length > 0) worse("amber");
  const sampling = samplingState(nodes, overview, now);
  if (sampling === "collecting") notes.push(collectingNote(overview.sampleIntervalMs));
  if (sampling === "missing") {
    worse("amber");
    reasons.push("no recent metric sample: is a control node (metrics-sampler) running?");
  }
  const outliers = outlierNames(overview.items);
  if (outliers.length > 0) notes.push(`outliers: ${outliers.join(", ")}`);
  return { tone, headline: headlineOf(tone, nodes.length, sampling === "collecting"), reasons, notes };
}

/** Why the rates are not there yet, and when they will be. */
export function collectingNote(sampleIntervalMs: number): string {
  return `rates and latencies need two samples: they appear about ${duration(sampleIntervalMs)} after start`;
}

/** "sampled", or why not: the sampler's node is too young to have rates yet, or it has stopped. */
export function samplingState(
  nodes: FleetNode[],
  overview: MetricsOverview,
  now: number,
): "sampled" | "collecting" | "missing" {
  const requests = overview.items.find((s) => s.name === "request_rate");
  if (!requests || requests.fleet.value !== null) return "sampled";
  const samplers = nodes.filter((n) => n.roles.includes("control"));
  const oldest = Math.min(...samplers.map((n) => n.startedAt));
  return samplers.length > 0 && now - oldest < freshWindowMs(overview.sampleIntervalMs)
    ? "collecting"
    : "missing";
}

function outlierNames(summaries: Summary[]): string[] {
  return summaries.flatMap((s) =>
    s.nodes.filter((n) => n.outlier).map((n) => `${n.node} (${s.title.toLowerCase()})`),
  );
}

function headlineOf(tone: Health["tone"], nodeCount: number, collecting: boolean): string {
  if (tone === "amber") return "Degraded: something needs a look";
  if (tone === "red") return "Unhealthy: act now";
  const reporting = `${nodeCount} node${nodeCount === 1 ? "" : "s"} reporting`;
  return collecting
    ? `Starting: ${reporting}, collecting first samples`
    : `Healthy: ${reporting}, no alert firing`;
}
