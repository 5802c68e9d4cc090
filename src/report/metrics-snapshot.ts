import type { MetricObjectWithValues, MetricValue, Registry } from "prom-client";
import { num, table } from "./markdown.js";

/** Process metrics worth a line in a report; the rest of prom-client's defaults are noise there. */
const PROCESS_METRICS = new Set([
  "imgfleet_process_process_cpu_seconds_total",
  "imgfleet_process_process_resident_memory_bytes",
  "imgfleet_process_process_open_fds",
  "imgfleet_process_nodejs_eventloop_lag_p99_seconds",
  "imgfleet_process_nodejs_heap_size_used_bytes",
]);

/**
 * This node's counters and gauges as they stand (since its start), and its
 * histograms as count and mean. None of imgfleet's metrics carries a tenant
 * label, so nothing here names a customer.
 */
export async function metricsSnapshot(registry: Registry): Promise<string> {
  const families = await registry.getMetricsAsJSON();
  const rows: (string | number)[][] = [];
  for (const family of families) {
    const { name } = family;
    if (!name.startsWith("imgfleet_")) continue;
    if (name.startsWith("imgfleet_process_") && !PROCESS_METRICS.has(name)) continue;
    // prom-client types `type` as a numeric enum but sets the text ("histogram") at run time.
    if (String(family.type) === "histogram") rows.push(...histogramRows(family));
    else for (const v of family.values) rows.push([name, labelText(v.labels), num(v.value)]);
  }
  return `Since this node started. Histograms as \`count\` and mean.\n\n${table(["metric", "labels", "value"], rows)}`;
}

function histogramRows(family: MetricObjectWithValues<MetricValue<string>>): (string | number)[][] {
  const byLabels = new Map<string, { count: number; sum: number }>();
  for (const v of family.values as (MetricValue<string> & { metricName?: string })[]) {
    const suffix = v.metricName?.slice(family.name.length);
    if (suffix !== "_count" && suffix !== "_sum") continue;
    const key = labelText(v.labels);
    const entry = byLabels.get(key) ?? { count: 0, sum: 0 };
    if (suffix === "_count") entry.count = v.value;
    else entry.sum = v.value;
    byLabels.set(key, entry);
  }
  return [...byLabels].map(([labels, { count, sum }]) => [
    family.name,
    labels,
    `count ${count}, mean ${count > 0 ? num(sum / count) : "-"}`,
  ]);
}

function labelText(labels: Partial<Record<string, string | number>>): string {
  return Object.entries(labels)
    .filter(([k]) => k !== "le")
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}
