import { FLEET_NODE, SERIES, type SeriesName } from "../series.js";
import { round, seriesValue } from "./format.js";
import type { Finding } from "./model.js";
import { coversWindow, finding, freshMs, type Rule, type RuleContext } from "./rule.js";

/**
 * Anomalies: a series beyond k standard deviations of its baseline (mean ±
 * stddev, by hour of day once there is enough history) for every sample of
 * the last `ops.alerts.anomalyMinutes`.
 *
 * A flat baseline has a stddev near zero, and then any wobble would be "3
 * sigma": the stddev is floored at a share of the mean and at an absolute
 * amount per series, below which a change is not worth a page.
 */
interface AnomalySpec {
  series: SeriesName;
  /** `above`: a rise is the problem; `below`: a drop (traffic vanishing). */
  direction: "above" | "below";
  /** The smallest stddev used, in the series' unit, */
  floorAbs: number;
  /** and as a share of the baseline's mean. */
  floorRel: number;
  runbook: string;
}

const SPECS: readonly AnomalySpec[] = [
  {
    series: "latency_p99",
    direction: "above",
    floorAbs: 20,
    floorRel: 0.1,
    runbook:
      "Compare this node with the others in the console: if only it is slow, drain and restart it; if all are, look for large or effect-heavy inputs in the request log and add workers.",
  },
  {
    series: "error_rate",
    direction: "above",
    floorAbs: 0.01,
    floorRel: 0.1,
    runbook:
      "Read the node's log for the 5xx causes (worker crashes, database or NATS errors); `imgfleet events` shows what the system did meanwhile.",
  },
  {
    series: "queue_oldest_age",
    direction: "above",
    floorAbs: 1,
    floorRel: 0.1,
    runbook:
      "Jobs wait longer than usual: add workers (workers.count, or another worker node), or find the tenant sending slow images (`imgfleet usage --by-outcome`).",
  },
  {
    series: "event_loop_delay",
    direction: "above",
    floorAbs: 10,
    floorRel: 0.1,
    runbook:
      "The node's main process is starved: check the machine's CPU (another process?) and for very large uploads; restart the node if it persists.",
  },
  {
    series: "request_rate",
    direction: "below",
    floorAbs: 0.5,
    floorRel: 0.1,
    runbook:
      "Traffic fell far below its usual level: check the load balancer, DNS and TLS certificate from outside, and whether clients are being refused (rejection rate, `imgfleet events`).",
  },
];

function anomalyRule(spec: AnomalySpec): Rule {
  const { series, direction } = spec;
  return {
    id: `anomaly.${series}`,
    severity: "warning",
    condition: `${SERIES[series].label} ${direction} its baseline mean ${direction === "above" ? "+" : "−"} ops.alerts.anomalyK × stddev for every sample of the last ops.alerts.anomalyMinutes`,
    runbook: spec.runbook,
    async evaluate(ctx) {
      const latest = await ctx.history.latest(series, freshMs(ctx));
      // The queue is shared: judge the fleet's value where there is one; other series per node.
      const subjects = [...latest.keys()].filter((n) =>
        series === "queue_oldest_age" && latest.has(FLEET_NODE) ? n === FLEET_NODE : n !== FLEET_NODE,
      );
      const findings: Finding[] = [];
      for (const node of subjects) {
        const found = await judge(this, spec, node, ctx);
        if (found) findings.push(found);
      }
      return findings;
    },
  };
}

async function judge(rule: Rule, spec: AnomalySpec, node: string, ctx: RuleContext): Promise<Finding | null> {
  const { series, direction } = spec;
  const { anomalyK: k, anomalyMinutes } = ctx.settings;
  const windowMs = anomalyMinutes * 60_000;
  const points = await ctx.history.points(series, { node, since: ctx.now - windowMs, until: ctx.now });
  if (!coversWindow(points, ctx, windowMs)) return null;
  const baseline = await ctx.history.baseline(series, { node, at: ctx.now });
  if (!baseline) return null;
  const spread = Math.max(baseline.stddev, spec.floorAbs, spec.floorRel * Math.abs(baseline.mean));
  const threshold = direction === "above" ? baseline.mean + k * spread : baseline.mean - k * spread;
  // A drop below zero cannot happen: a low baseline has no "far below".
  if (direction === "below" && threshold <= 0) return null;
  const beyond = (v: number) => (direction === "above" ? v > threshold : v < threshold);
  if (!points.every((p) => beyond(p.value))) return null;
  const now = points.at(-1)?.value ?? 0;
  const subject = node === FLEET_NODE ? "fleet" : node;
  const where = node === FLEET_NODE ? "across the fleet" : `on ${node}`;
  const fmt = (v: number) => seriesValue(series, v);
  return finding(
    rule,
    subject,
    `${SERIES[series].label} ${where} has stayed ${direction} ${fmt(threshold)} for ${anomalyMinutes} min (now ${fmt(now)}; usually ${fmt(baseline.mean)} ± ${fmt(baseline.stddev)}, ${baseline.basis === "hour-of-day" ? "at this hour" : "over the baseline window"})`,
    {
      series,
      value: round(now, 4),
      mean: round(baseline.mean, 4),
      stddev: round(baseline.stddev, 4),
      threshold: round(threshold, 4),
      k,
      minutes: anomalyMinutes,
      basis: baseline.basis,
    },
  );
}

export const ANOMALY_RULES: readonly Rule[] = SPECS.map(anomalyRule);
